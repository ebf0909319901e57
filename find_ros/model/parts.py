"""The trainable parts of a FindModel, built from its config and the encoders' sizes alone.

:class:`~find_ros.model.find.FindModel` builds its parts here, and the checkpoint converter builds
the same parts on the meta device to learn every tensor's name and shape without allocating them.
The neck is the config's choice: our trained FPN (``find_ros``) or X-Decoder's pixel decoder
(``transformer_fpn``, the released FIND models').
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from find_ros.model.config import FindConfig
from find_ros.model.heads import Heads
from find_ros.model.interface import FindInterface
from find_ros.model.neck import PixelDecoder
from find_ros.model.point_sampling import PointSamplingWeights
from find_ros.model.sampler import EmbeddingSampler
from find_ros.model.transformer_fpn import TransformerFPN


def build_neck(config: FindConfig, channels: Sequence[int], strides: Sequence[int]) -> nn.Module:
    if config.neck == "transformer_fpn":
        # The authors' pixel decoder takes heads, FFN width and dropout from the decoder's settings.
        return TransformerFPN(channels, config.hidden_dim, config.mask_dim, config.neck_layers, config.num_heads,
                              config.ffn_dim, config.dropout, config.num_levels)
    return PixelDecoder(channels, strides, config.hidden_dim, config.mask_dim, config.num_levels)


def trainable_parts(config: FindConfig, vision_channels: Sequence[int], vision_strides: Sequence[int],
                    language_width: int) -> dict[str, nn.Module]:
    """The modules a FindModel owns besides its frozen encoders, by attribute name."""
    d = config.hidden_dim
    parts: dict[str, nn.Module] = {
        "neck": build_neck(config, vision_channels, vision_strides),
        "sampler": EmbeddingSampler(language_width, d, config.num_levels),
        "interface": FindInterface(d, config.num_heads, config.ffn_dim, config.num_layers, config.num_queries,
                                   config.dropout, config.decoder),
        "heads": Heads(d, config.mask_dim),
    }
    if config.spatial_memories:
        parts["point_sampling"] = PointSamplingWeights(d, config.num_levels, config.spatial_memories)
    return parts
