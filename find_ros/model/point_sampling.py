"""Weights of the released FIND models' point sampling and spatial memory (no counterpart in our
own models, which pool prompts by masked means in :mod:`find_ros.model.sampler`).

Facts from ``find-official/README.md`` §2 and §5: point samples of visual entities and
interactive prompts are features of level l projected by ``mask_sptial_embed[l]`` ([hidden,
hidden], used as ``feature @ W``); ``spatial_embed`` / ``spatial_featured`` are the
``SPATIAL_MEMORIES`` memory slots of multi-round interactive segmentation. This module only holds
them and the authors' point sampling (below), which gives interactive prompts and visual entities
their tokens under decoder style "official".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from find_ros.model.embeddings import ImageEmbeddings, SpatialPrompt, TokenSet


class PointSamplingWeights(nn.Module):
    def __init__(self, hidden_dim: int, num_levels: int, memories: int) -> None:
        super().__init__()
        self.level_projections = nn.ParameterList(
            nn.Parameter(torch.eye(hidden_dim)) for _ in range(num_levels)
        )
        self.memory_embed = nn.Embedding(memories, hidden_dim)
        self.memory_featured = nn.Embedding(memories, hidden_dim)


# ------------------------------------------------------------------------- the authors' point samples
# Facts (find-official README §5): candidates are every on-pixel of the prompt masks of one call,
# in (mask, y, x) order; at most MAX_SAMPLES are kept (all of them when there are no more), drawn
# without replacement with equal mass per mask and kept in candidate order. A candidate (y, x) of
# an H x W mask is read from level l by bilinear sampling with align_corners=True at
# (y / H * (h_l - 1), x / W * (w_l - 1)), zero outside, from (level features + level embedding) @
# mask_sptial_embed[l]; positive points add pn_indicator[0], negative ones pn_indicator[1].

MAX_SAMPLES = 512


def candidates(masks: Tensor) -> Tensor:
    """(N, 3) long rows (mask index, y, x) of the on-pixels of ``masks`` (M, H, W), in that order."""
    return masks.bool().nonzero()


def choose(points: Tensor, limit: int = MAX_SAMPLES, seed: int = 0) -> Tensor:
    """At most ``limit`` rows of ``points`` (N, 3): all of them when N <= limit, else drawn without
    replacement with equal mass per mask (a fixed seed, so an instruction samples the same points
    every time), kept in candidate order."""
    if points.shape[0] <= limit:
        return points
    owners = points[:, 0]
    counts = torch.bincount(owners)
    weights = 1.0 / counts[owners].double()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    picked = torch.multinomial(weights.cpu(), limit, replacement=False, generator=generator).sort().values
    return points[picked.to(points.device)]


def sample_level(features: Tensor, points: Tensor, mask_size: tuple[int, int]) -> Tensor:
    """Features (D, h, w) of one image at ``points`` (N, 3) of masks sized ``mask_size``: (N, D)."""
    height, width = mask_size
    y = points[:, 1].to(features.dtype) / height
    x = points[:, 2].to(features.dtype) / width
    grid = torch.stack([x * 2 - 1, y * 2 - 1], dim=-1).view(1, 1, -1, 2)
    return F.grid_sample(features[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0, :, 0].T


def point_tokens(weights: PointSamplingWeights, image_prompts: Sequence[Tensor], level_sizes: Sequence[tuple[int, int]],
                 index: int, points: Tensor, mask_size: tuple[int, int], positive: Tensor,
                 indicator: Tensor) -> list[Tensor]:
    """Per level, the (N, D) point samples of image ``index``: ``image_prompts[l]`` (B, h*w, D) are
    level features + level embedding; ``positive`` (N,) bool; ``indicator`` (2, D): the authors'
    pn_indicator rows (positive, negative)."""
    out = []
    for level, (h, w) in enumerate(level_sizes):
        features = (image_prompts[level][index] @ weights.level_projections[level]).T.reshape(-1, h, w)
        samples = sample_level(features, points, mask_size)
        out.append(samples + torch.where(positive[:, None], indicator[0], indicator[1]))
    return out


def prompt_mask(prompt: SpatialPrompt, image: ImageEmbeddings, index: int) -> Tensor:
    """A spatial prompt of image ``index`` as a bool mask over the padded network input (the size
    the authors give interactive masks): masks resized (nearest), boxes filled, points and
    scribbles the pixels within 1.5 px of their polyline."""
    height, width = image.input_size
    sy, sx = image.scale(index)
    rh, rw = image.resized_sizes[index]
    data = np.asarray(prompt.data)
    out = torch.zeros(height, width, dtype=torch.bool, device=image.device)
    if prompt.kind == "mask":
        m = torch.as_tensor(data.astype(np.float32), device=image.device)[None, None]
        out[:rh, :rw] = F.interpolate(m, size=(rh, rw), mode="nearest")[0, 0] > 0.5
    elif prompt.kind == "box":
        x0, y0, x1, y1 = (float(v) for v in data)
        c0, c1 = int(np.clip(np.floor(x0 * sx), 0, rw - 1)), int(np.clip(np.ceil(x1 * sx), 1, rw))
        r0, r1 = int(np.clip(np.floor(y0 * sy), 0, rh - 1)), int(np.clip(np.ceil(y1 * sy), 1, rh))
        out[r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)] = True
    else:
        pts = torch.as_tensor(data.astype(np.float32), device=image.device).reshape(-1, 2) * torch.tensor(
            [sx, sy], device=image.device)
        if len(pts) == 1:
            pts = torch.cat([pts, pts])
        a, b = pts[:-1], pts[1:]
        ys, xs = torch.meshgrid(torch.arange(rh, device=image.device) + 0.5, torch.arange(rw, device=image.device) + 0.5,
                                indexing="ij")
        centres = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2)
        ab = b - a
        t = (((centres - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
        distance = (centres - (a + t[..., None] * ab)).norm(dim=-1).min(dim=1).values.reshape(rh, rw)
        out[:rh, :rw] = distance <= 1.5
    if not bool(out.any()):
        raise ValueError(f"{prompt.kind} prompt covers no pixel of the network input")
    return out


def spatial_samples(weights: PointSamplingWeights, image: ImageEmbeddings, image_prompts: Sequence[Tensor],
                    prompts: Sequence[SpatialPrompt], indicator: Tensor) -> TokenSet:
    """The authors' interactive prompt: point samples of every prompt (positives first, then
    negatives, as they order them), one group per prompt ``group``, re-read at every level."""
    group_ids = sorted({p.group for p in prompts})
    lacking = [g for g in group_ids if not any(p.group == g and p.positive for p in prompts)]
    if lacking:
        raise ValueError(f"spatial prompt group(s) {lacking} have only negative prompts; give a positive one")
    level_sizes = [tuple(level.shape[-2:]) for level in image.levels]
    ordered = [p for p in prompts if p.positive] + [p for p in prompts if not p.positive]
    per_image = []
    for b in range(image.batch_size):
        masks = torch.stack([prompt_mask(p, image, b) for p in ordered])
        points = choose(candidates(masks))
        positive = torch.tensor([p.positive for p in ordered], device=image.device)[points[:, 0]]
        per_image.append(point_tokens(weights, image_prompts, level_sizes, b, points, image.input_size, positive,
                                      indicator))
        owners = torch.tensor([group_ids.index(p.group) for p in ordered], device=image.device)[points[:, 0]]
    per_level = tuple(torch.stack([levels[l] for levels in per_image]) for l in range(len(level_sizes)))
    groups = owners[None, :] == torch.arange(len(group_ids), device=image.device)[:, None]
    count = len(group_ids)
    return TokenSet(per_level[0], groups, tuple(f"object {g}" for g in group_ids),
                    per_level[0].new_zeros(1, count, 1), torch.ones(count, dtype=torch.bool, device=image.device),
                    per_level=per_level)


def entity_samples(weights: PointSamplingWeights, sources: Sequence[tuple[int, ImageEmbeddings, int, Tensor]],
                   image_prompts: Callable[[ImageEmbeddings], list[Tensor]], num_entities: int,
                   labels: Sequence[str], indicator: Tensor) -> TokenSet:
    """The authors' visual-entity tokens: point samples of each source ``(entity, image, index,
    mask over that image's padded input)``, entities in order, at most MAX_SAMPLES over all of
    them, each read from its own image (the authors' refint path; a same-image stroke is the case
    where that image is the one grounded). ``image_prompts`` gives an image's level features with
    the level embedding. One group per entity."""
    points = choose(torch.cat([torch.cat([torch.full_like(p[:, :1], entity), p[:, 1:]], dim=1)
                               for entity, p in ((e, candidates(mask[None])) for e, _, _, mask in sources)]))
    samples: list[list[Tensor]] = []
    owners = []
    for entity, image, index, _ in sources:
        mine = points[points[:, 0] == entity]
        level_sizes = [tuple(level.shape[-2:]) for level in image.levels]
        positive = torch.ones(len(mine), dtype=torch.bool, device=mine.device)
        samples.append(point_tokens(weights, image_prompts(image), level_sizes, index, mine, image.input_size,
                                    positive, indicator))
        owners.append(torch.full((len(mine),), entity, device=mine.device))
    per_level = tuple(torch.cat([s[level] for s in samples])[None] for level in range(len(samples[0])))
    owner = torch.cat(owners)
    groups = owner[None, :] == torch.arange(num_entities, device=owner.device)[:, None]
    return TokenSet(per_level[0], groups, tuple(labels), per_level=per_level)
