"""The FIND interface (paper 3.2.2, Fig. 4c): L layers of content attention → conditional attention →
FFN, cycling over the feature levels (strides 32, 16, 8) Mask2Former-style.

* Content attention: every query attends to the prompts its task lets it see — the current level's
  image features (mask-guided for queries that predict masks: only where the previous layer's mask
  for that query is on, i.e. sigmoid ≥ 0.5; everywhere if that mask is empty) and the token prompts.
* Conditional attention: self-attention over the token prompts and queries, under the task's mask.
* FFN over the token prompts and queries.

Masks are applied as boolean attention masks, so a disallowed input contributes an exact zero: a
query's output is bit-identical whatever happens to inputs it may not see. The module has no
task-specific code: the :class:`~find_ros.model.prototypes.Layout` says who sees whom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from find_ros.model.decoder_style import DecoderSettings
from find_ros.model.prototypes import Layout
from find_ros.model.transformer_fpn import detr_sine_positions


class Attention(nn.Module):
    """Multi-head attention with a boolean ``allowed`` mask (B, Q, K). Rows with nothing allowed
    get a zero update (Mask2Former would see NaNs there)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, empty_rows: str = "zero") -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.empty_rows = empty_rows  # DecoderSettings.empty_rows: "zero" or "bias"
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, allowed: Tensor) -> Tensor:
        return self.attend(query, *self.keys_values([key], [value]), allowed)

    def keys_values(self, keys: Sequence[Tensor], values: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Projected keys and values (B, heads, K, D/heads) of inputs given in parts along the key
        axis, each part of batch B or 1. A part of batch 1 (one image shared by every row of a stack
        of instructions) is projected once and then expanded: the rows differ only in their tokens."""
        batch = max(part.shape[0] for part in (*keys, *values))

        def project(linear: nn.Linear, parts: Sequence[Tensor]) -> Tensor:
            out = [linear(part).expand(batch, -1, -1) for part in parts]
            x = out[0] if len(out) == 1 else torch.cat(out, dim=1)
            return x.view(batch, x.shape[1], self.heads, -1).transpose(1, 2)

        return project(self.k, keys), project(self.v, values)

    def attend(self, query: Tensor, key: Tensor, value: Tensor, allowed: Tensor) -> Tensor:
        """``key``/``value`` from :meth:`keys_values`; ``allowed`` (B, Q, K)."""
        b, nq, d = query.shape
        if key.shape[2] == 0:
            return self._empty(query)
        has_any = allowed.any(-1, keepdim=True)  # (B, Q, 1)
        # Let empty rows attend everywhere (no NaN in forward or backward), then zero their result.
        safe = allowed | ~has_any
        out = F.scaled_dot_product_attention(
            self.q(query).view(b, nq, self.heads, d // self.heads).transpose(1, 2), key, value,
            attn_mask=safe.unsqueeze(1), dropout_p=self.dropout if self.training else 0.0,
        )
        out = self.out(out.transpose(1, 2).reshape(b, nq, d))
        return torch.where(has_any, out, self._empty(out))

    def _empty(self, like: Tensor) -> Tensor:
        """The result of a row with nothing to attend."""
        if self.empty_rows == "bias":
            return self.out.bias.expand_as(like)
        return torch.zeros_like(like)


class InterfaceLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float, empty_rows: str = "zero",
                 value_positions: bool = False) -> None:
        super().__init__()
        self.value_positions = value_positions  # DecoderSettings.value_positions
        self.content = Attention(dim, heads, dropout, empty_rows)
        self.conditional = Attention(dim, heads, dropout, empty_rows)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.norm_content = nn.LayerNorm(dim)
        self.norm_conditional = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, queries: Tensor, query_pos: Tensor, tokens: Tensor, image: Tensor, image_pos: Tensor,
                content_mask: Tensor, conditional_mask: Tensor, token_pos: Tensor | None = None,
                token_rows: Tensor | None = None, token_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``token_pos``: the tokens' positional part (None: zero). ``token_rows`` (n,) long: tokens
        that take part in content attention as rows, under ``token_mask`` (B, n, image + T).
        ``image`` and ``image_pos`` may have batch 1 under tokens of batch B: one image shared by
        every row, whose image-only work is then done once."""
        placed = image + image_pos
        keys, values = self.content.keys_values(
            [placed, tokens if token_pos is None else tokens + token_pos],
            [placed if self.value_positions else image, tokens])
        if token_rows is not None:  # from the same states as the queries' attention, then both update
            rows = tokens[:, token_rows]
            rows_pos = rows if token_pos is None else rows + token_pos[:, token_rows]
            rows = self.norm_content(rows + self.drop(self.content.attend(rows_pos, keys, values, token_mask)))
        queries = self.norm_content(queries + self.drop(self.content.attend(queries + query_pos, keys, values, content_mask)))
        if token_rows is not None:
            tokens = tokens.clone()
            tokens[:, token_rows] = rows
        seq = torch.cat([tokens, queries], dim=1)
        pos = torch.cat([torch.zeros_like(tokens) if token_pos is None else token_pos, query_pos], dim=1)
        # (S, S) shared by the batch, or (B, S, S): one mask per row (many instructions in one pass).
        mask = conditional_mask if conditional_mask.dim() == 3 else conditional_mask.unsqueeze(0).expand(seq.shape[0], -1, -1)
        seq = self.norm_conditional(seq + self.drop(self.conditional(seq + pos, seq + pos, seq, mask)))
        seq = self.norm_ffn(seq + self.drop(self.ffn(seq)))
        t = tokens.shape[1]
        return seq[:, t:], seq[:, :t]


def sine_positions(height: int, width: int, dim: int, device: torch.device, dtype: torch.dtype,
                   style: str = "centred") -> Tensor:
    """2-D sine position embedding (DETR, normalised), (height*width, dim). ``style``
    (DecoderSettings.sine_positions): "centred" rows at (k + 0.5) / H, "one_based" the authors'
    (k + 1) / (H + 1e-6)."""
    if style == "one_based":
        return detr_sine_positions(height, width, dim, device=device, dtype=dtype).flatten(1).T
    half = (dim + 3) // 4 * 2  # even, so sines and cosines pair up; sliced to dim at the end
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * 2 * math.pi
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * 2 * math.pi
    freqs = 10000 ** (2 * (torch.arange(half, device=device) // 2) / half)
    py = ys[:, None] / freqs
    px = xs[:, None] / freqs
    py = torch.stack([py[:, 0::2].sin(), py[:, 1::2].cos()], dim=2).flatten(1)
    px = torch.stack([px[:, 0::2].sin(), px[:, 1::2].cos()], dim=2).flatten(1)
    pos = torch.cat([py[:, None, :].expand(-1, width, -1), px[None, :, :].expand(height, -1, -1)], dim=-1)
    return pos.reshape(height * width, -1)[:, :dim].to(dtype)


@dataclass
class InterfaceState:
    """What the interface leaves for the heads: final query (and token) states and, when deep
    supervision was asked for, the earlier query states to supervise too (Mask2Former): the initial
    queries and the output of every layer but the last — ``num_layers`` entries."""

    layout: Layout
    queries: Tensor  # (B, Q, D)
    tokens: Tensor  # (B, T, D)
    intermediate: list[Tensor]


class FindInterface(nn.Module):
    def __init__(self, hidden_dim: int, num_heads: int, ffn_dim: int, num_layers: int, num_queries: int,
                 dropout: float = 0.0, settings: DecoderSettings | None = None) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.settings = settings or DecoderSettings()
        self.layers = nn.ModuleList(InterfaceLayer(hidden_dim, num_heads, ffn_dim, dropout, self.settings.empty_rows,
                                                   self.settings.value_positions)
                                    for _ in range(num_layers))
        # The learned query pool (object queries, then global ones): content and position parts.
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_pos = nn.Embedding(num_queries, hidden_dim)

    def forward(self, layout: Layout, image_prompts: list[Tensor] | None, level_sizes: list[tuple[int, int]],
                pooled_pixel: list[Tensor] | None, tokens: Tensor, pixel_embed: nn.Module,
                deep_supervision: bool = False, pixel: Tensor | None = None,
                level_tokens: Sequence[tuple[slice, Sequence[Tensor]]] = (),
                token_positions: Tensor | None = None) -> InterfaceState:
        """``image_prompts[l]`` (B, h_l*w_l, D) and ``pooled_pixel[l]`` (B, mask_dim, h_l*w_l) — the
        pixel embeddings averaged onto level l, for mask-guided attention; None without an image.
        ``pixel`` (B, mask_dim, H/4, W/4): the stride-4 pixel embeddings, which the "bilinear"
        attention-mask setting resizes mask logits from. ``tokens`` (B or 1, T, D); ``pixel_embed``
        maps query states to pixel embeddings. ``level_tokens``: (token slice, one (B, n, D) tensor
        per level) for tokens re-read at every layer from its level (value and position);
        ``token_positions`` (B, T, D): the tokens' positional part when the "initial" setting is
        on (default: their initial value).

        Image inputs of batch 1 under ``tokens`` of batch B are one image shared by B rows (many
        instructions against one frame, :meth:`FindModel.ground_many`): what depends on the image
        alone (its positions added, its key and value projections) is computed once, not per row."""
        settings = self.settings
        batch = max(image_prompts[0].shape[0], tokens.shape[0]) if image_prompts else tokens.shape[0]
        tokens = tokens.expand(batch, -1, -1)
        token_pos = None
        if settings.token_positions == "initial":
            token_pos = tokens if token_positions is None else token_positions.expand(batch, -1, -1)
        index = layout.query_pool_index
        queries = self.query_feat(index).unsqueeze(0).expand(batch, -1, -1)
        query_pos = self.query_pos(index).unsqueeze(0).expand(batch, -1, -1)
        dtype, device = queries.dtype, queries.device
        num_levels = len(level_sizes) if image_prompts else 1
        content_tokens = layout.content_tokens  # (Q, T), or (B, Q, T) for per-row layouts
        content_tokens = content_tokens if content_tokens.dim() == 3 else content_tokens.unsqueeze(0).expand(batch, -1, -1)
        guided = layout.mask_guided[None, :, None]
        image_ok = layout.content_image[None, :, None]

        positions = [sine_positions(h, w, self.hidden_dim, device, dtype, settings.sine_positions)
                     for h, w in level_sizes] if image_prompts else []
        empty = queries.new_zeros(batch, 0, self.hidden_dim)

        def image_mask(state: Tensor, level: int) -> Tensor:
            count = image_prompts[level].shape[1]
            allowed = image_ok.expand(batch, -1, count)
            if bool(layout.mask_guided.any()):
                if settings.attention_mask_resize == "bilinear":
                    logits = torch.einsum("bqc,bchw->bqhw", pixel_embed(state), pixel.expand(batch, -1, -1, -1))
                    logits = F.interpolate(logits, size=level_sizes[level], mode="bilinear", align_corners=False)
                    on = logits.flatten(2).sigmoid() >= 0.5  # the authors' test, also at rounding
                else:
                    logits = torch.einsum("bqc,bcp->bqp", pixel_embed(state), pooled_pixel[level].expand(batch, -1, -1))
                    on = logits >= 0  # sigmoid >= 0.5
                on = on | ~on.any(-1, keepdim=True)  # an empty mask lets the query look everywhere
                allowed = allowed & (on | ~guided)
            return allowed

        token_rows = None
        if layout.token_content_rows is not None and bool(layout.token_content_rows.any()):
            token_rows = layout.token_content_rows.nonzero().flatten()
        intermediate = [queries] if deep_supervision else []
        for i, layer in enumerate(self.layers):
            level = i % num_levels
            if level_tokens:  # re-read from this layer's level; their position is their value
                tokens, token_pos = tokens.clone(), (tokens if token_pos is None else token_pos).clone()
                for rows, per_level in level_tokens:
                    current = per_level[min(level, len(per_level) - 1)].expand(batch, -1, -1)
                    tokens[:, rows] = current
                    token_pos[:, rows] = current
            if image_prompts:
                image, pos = image_prompts[level], positions[level].unsqueeze(0)
                mask = torch.cat([image_mask(queries, level), content_tokens], dim=-1)
            else:
                image, pos, mask = empty, empty, content_tokens
            token_mask = None
            if token_rows is not None:
                token_mask = torch.cat([layout.token_content[token_rows].new_zeros(len(token_rows), image.shape[1]),
                                        layout.token_content[token_rows]], dim=-1).unsqueeze(0).expand(batch, -1, -1)
            queries, tokens = layer(queries, query_pos, tokens, image, pos, mask, layout.conditional, token_pos,
                                    token_rows, token_mask)
            if deep_supervision and i < len(self.layers) - 1:
                intermediate.append(queries)
        return InterfaceState(layout=layout, queries=queries, tokens=tokens, intermediate=intermediate)
