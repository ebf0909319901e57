"""The neck ``transformer_fpn``: X-Decoder's pixel decoder, as the released FIND models use it.

Facts from ``find-official/README.md`` §4:

* res5 → ``input_proj`` (1×1 conv with bias) → a DETR post-norm transformer encoder on that grid
  (queries and keys get the sine positions, values do not; no final norm) → ``layer_4`` (3×3 conv,
  GroupNorm(32), ReLU): the stride-32 level;
* top-down for res4, res3, res2: ``layer_k(adapter_k(x) + nearest_upsample(previous level))`` with
  1×1 adapters (GroupNorm) and 3×3 layers (GroupNorm, ReLU), none with a bias;
* ``mask_features``, a 3×3 conv with bias on the stride-4 result: the pixel embeddings M_I.

Module and parameter names follow the released state dict (under ``sem_seg_head.pixel_decoder.``).
The call signature is that of our trained neck (:class:`find_ros.model.neck.PixelDecoder`), so the
two are interchangeable under :class:`~find_ros.model.find.FindModel`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NECK_NAME = "transformer_fpn"
GROUPS = 32


def detr_sine_positions(height: int, width: int, channels: int, *, device: torch.device | None = None,
                        dtype: torch.dtype = torch.float32) -> Tensor:
    """The authors' 2-D sine embedding, (channels, height, width); ``channels`` is even.

    Row r and column c count from 1 and are normalised by (size + 1e-6) to [0, 2π] (no half-cell
    offset); each axis takes channels/2 values [sin(p/t_0), cos(p/t_1), sin(p/t_2), ...] with
    t_i = 10000^(2·⌊i/2⌋/(channels/2)); the y values come first, then the x values.
    """
    if channels % 2:
        raise ValueError(f"sine positions need an even channel count, got {channels}")
    half = channels // 2
    scale = 2 * math.pi
    ys = torch.arange(1, height + 1, device=device, dtype=torch.float32) / (height + 1e-6) * scale
    xs = torch.arange(1, width + 1, device=device, dtype=torch.float32) / (width + 1e-6) * scale
    periods = 10000 ** (2 * (torch.arange(half, device=device) // 2).float() / half)

    def encode(values: Tensor) -> Tensor:  # (n,) → (n, half), sines at even, cosines at odd channels
        phase = values[:, None] / periods
        return torch.stack([phase[:, 0::2].sin(), phase[:, 1::2].cos()], dim=2).flatten(1)

    pos_y = encode(ys)[:, None, :].expand(height, width, half)
    pos_x = encode(xs)[None, :, :].expand(height, width, half)
    return torch.cat([pos_y, pos_x], dim=-1).permute(2, 0, 1).to(dtype)


class ConvNorm(nn.Conv2d):
    """A bias-free conv whose ``.norm`` (GroupNorm) and optional ReLU follow it; its parameters are
    ``weight`` and ``norm.{weight,bias}``, the layout of the released keys."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, relu: bool) -> None:
        super().__init__(in_dim, out_dim, kernel, padding=kernel // 2, bias=False)
        self.norm = nn.GroupNorm(GROUPS, out_dim)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(super().forward(x))
        return F.relu(x) if self.relu else x


class EncoderLayer(nn.Module):
    """DETR's post-norm encoder layer with positions added to queries and keys only."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """``x`` and ``pos`` (sequence, batch, dim)."""
        qk = x + pos
        x = self.norm1(x + self.dropout(self.self_attn(qk, qk, x, need_weights=False)[0]))
        return self.norm2(x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x))))))


class _Encoder(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, ffn_dim, dropout) for _ in range(layers))


class _Transformer(nn.Module):
    """Holds ``encoder`` only, so parameter names read ``transformer.encoder.layers.N.*``."""

    def __init__(self, layers: int, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.encoder = _Encoder(layers, dim, heads, ffn_dim, dropout)


class TransformerFPN(nn.Module):
    def __init__(self, in_channels: Sequence[int], conv_dim: int, mask_dim: int, encoder_layers: int,
                 heads: int, ffn_dim: int, dropout: float = 0.0, num_levels: int = 3) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f"transformer_fpn needs the four backbone maps res2..res5, got {len(in_channels)}")
        if conv_dim % GROUPS:
            raise ValueError(f"transformer_fpn: conv_dim {conv_dim} is not a multiple of {GROUPS} (GroupNorm groups)")
        if conv_dim % heads:
            raise ValueError(f"transformer_fpn: conv_dim {conv_dim} is not divisible by {heads} heads")
        self.num_levels = num_levels
        self.conv_dim = conv_dim
        self.input_proj = nn.Conv2d(in_channels[3], conv_dim, 1)
        self.transformer = _Transformer(encoder_layers, conv_dim, heads, ffn_dim, dropout)
        self.layer_4 = ConvNorm(conv_dim, conv_dim, 3, relu=True)
        for k in (3, 2, 1):  # adapter_k / layer_k take res(k+1)
            self.add_module(f"adapter_{k}", ConvNorm(in_channels[k - 1], conv_dim, 1, relu=False))
            self.add_module(f"layer_{k}", ConvNorm(conv_dim, conv_dim, 3, relu=True))
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, 3, padding=1)

    def encode_coarsest(self, res5: Tensor) -> Tensor:
        x = self.input_proj(res5)
        batch, channels, height, width = x.shape
        pos = detr_sine_positions(height, width, channels, device=x.device, dtype=x.dtype)
        pos = pos.flatten(1).T[:, None, :].expand(-1, batch, -1)
        seq = x.flatten(2).permute(2, 0, 1)  # (HW, B, C)
        for layer in self.transformer.encoder.layers:
            seq = layer(seq, pos)
        return seq.permute(1, 2, 0).reshape(batch, channels, height, width)

    def forward(self, maps: Sequence[Tensor], input_size: tuple[int, int] | None = None) -> tuple[list[Tensor], Tensor]:
        """``maps`` = [res2, res3, res4, res5]; ``input_size`` is unused (the maps fix every grid) and
        kept for the neck interface. Returns (levels at strides 32, 16, 8 — the first
        ``num_levels``—, pixel embeddings at stride 4)."""
        y = self.layer_4(self.encode_coarsest(maps[3]))
        outputs = [y]
        for k in (3, 2, 1):
            lateral = getattr(self, f"adapter_{k}")(maps[k - 1])
            y = getattr(self, f"layer_{k}")(lateral + F.interpolate(y, size=lateral.shape[-2:], mode="nearest"))
            outputs.append(y)
        return outputs[: self.num_levels], self.mask_features(outputs[3])
