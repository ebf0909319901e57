"""The embedding sampler (paper 3.2.2, "Emb_Sample"): turns encoder outputs into prompts.

* image prompts: each interface level flattened, plus a learned level embedding;
* region and spatial prompts: a raster of the prompt on the stride-4 grid, average-pooled onto each
  level and used as weights for a masked mean of that level's features (the authors sample features
  "under the prompt on each level"); spatial tokens also get a positive/negative indicator embedding;
* text prompts: the chosen language-model layer projected to the interface width;
* interleave prompts: the instruction's tokens, with each visual entity's region embedding placed
  where its ``<k>`` placeholder stood;
* class prompts: class names in the template "Describe the concept of {c}." (or long descriptions),
  and visual-context classes as the mean embedding of their example regions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from find_ros.instructions import ParsedInstruction
from find_ros.model.embeddings import ImageEmbeddings, InstructionEmbeddings, RegionRef, SpatialPrompt, TokenSet
from find_ros.model.encoders import TextEncoding


class EmbeddingSampler(nn.Module):
    def __init__(self, language_dim: int, hidden_dim: int, num_levels: int) -> None:
        super().__init__()
        # The authors train the projection from the LM width (4096 for LLaMA) to the interface width.
        self.text_projection = nn.Linear(language_dim, hidden_dim)
        self.level_embed = nn.Embedding(num_levels, hidden_dim)
        self.indicator = nn.Embedding(2, hidden_dim)  # 0 negative, 1 positive spatial prompt
        self.visual_embed = nn.Parameter(torch.zeros(hidden_dim))  # marks tokens that are image regions
        nn.init.normal_(self.visual_embed, std=0.02)

    # ------------------------------------------------------------------------------------- image

    def image_prompts(self, image: ImageEmbeddings) -> list[Tensor]:
        """Per level: (B, h*w, D) features with the level embedding added."""
        return [
            level.flatten(2).transpose(1, 2) + self.level_embed.weight[i]
            for i, level in enumerate(image.levels)
        ]

    # ------------------------------------------------------------------------------------ regions

    def pool(self, image: ImageEmbeddings, weights: Tensor) -> tuple[Tensor, Tensor]:
        """Masked means under ``weights`` (B, R, H/4, W/4) ≥ 0: per level (B, R, L, D) and of the
        pixel embeddings (B, R, mask_dim)."""
        per_level = []
        for level in image.levels:
            factor = image.pixel.shape[-1] // level.shape[-1]
            w = F.avg_pool2d(weights, factor) if factor > 1 else weights  # exact: sizes are 32-aligned
            per_level.append(torch.einsum("brhw,bdhw->brd", w, level) / w.sum((-2, -1)).clamp_min(1e-12)[..., None])
        pixel = torch.einsum("brhw,bdhw->brd", weights, image.pixel) / weights.sum((-2, -1)).clamp_min(1e-12)[..., None]
        return torch.stack(per_level, dim=2), pixel

    def region_embeddings(self, regions: Sequence[RegionRef]) -> tuple[Tensor, Tensor]:
        """One interface token (R, D) and one pixel reference (R, mask_dim) per region."""
        tokens, pixels = [], []
        for region in regions:
            weights = region_raster(region).to(region.image.pixel.dtype)
            per_level, pixel = self.pool(region.image.select(region.index), weights[None, None])
            tokens.append(per_level[0, 0].mean(0) + self.visual_embed)
            pixels.append(pixel[0, 0])
        return torch.stack(tokens), torch.stack(pixels)

    def crop_embeddings(self, crops: ImageEmbeddings) -> tuple[Tensor, Tensor]:
        """Encoded crops as regions: (R, D) tokens and (R, mask_dim) pixel references. A crop is
        cut around its object, so the pooling favours its centre over the background at its rim."""
        weights = torch.stack([centred_raster(crops, i) for i in range(crops.batch_size)]).unsqueeze(1)
        per_level, pixel = self.pool(crops, weights.to(crops.pixel.dtype))
        return per_level[:, 0].mean(1) + self.visual_embed, pixel[:, 0]

    def spatial(self, image: ImageEmbeddings, prompts: Sequence[SpatialPrompt]) -> TokenSet:
        """One group per object (``group`` ids, in increasing order); each prompt gives one token per
        level: pooled level features + level embedding + positive/negative indicator. The pixel
        embeddings pooled under an object's positive prompts are its pixel reference. The same
        prompts apply to every image of the batch."""
        if not prompts:
            raise ValueError("no spatial prompts given")
        group_ids = sorted({p.group for p in prompts})
        positives = {g: [p for p in prompts if p.group == g and p.positive] for g in group_ids}
        lacking = [g for g, ps in positives.items() if not ps]
        if lacking:
            raise ValueError(f"spatial prompt group(s) {lacking} have only negative prompts; give a positive one")
        num_levels = len(image.levels)
        tokens, members = [], []
        pixel_sums = {g: 0.0 for g in group_ids}
        for prompt in prompts:
            weights = torch.stack([spatial_raster(prompt, image, i) for i in range(image.batch_size)])
            per_level, pixel = self.pool(image, weights[:, None].to(image.pixel.dtype))
            indicator = self.indicator.weight[int(prompt.positive)]
            tokens.append(per_level[:, 0] + self.level_embed.weight[:num_levels] + indicator)  # (B, L, D)
            members.extend([group_ids.index(prompt.group)] * num_levels)
            if prompt.positive:
                pixel_sums[prompt.group] = pixel_sums[prompt.group] + pixel[:, 0] / len(positives[prompt.group])
        token_tensor = torch.cat(tokens, dim=1)
        groups = torch.zeros(len(group_ids), token_tensor.shape[1], dtype=torch.bool, device=token_tensor.device)
        groups[torch.tensor(members, device=groups.device), torch.arange(len(members), device=groups.device)] = True
        refs = torch.stack([pixel_sums[g] for g in group_ids], dim=1)  # (B, G, mask_dim)
        return TokenSet(token_tensor, groups, tuple(f"object {g}" for g in group_ids), refs,
                        torch.ones(len(group_ids), dtype=torch.bool, device=token_tensor.device))

    # --------------------------------------------------------------------------------------- text

    def text_tokens(self, encoding: TextEncoding) -> Tensor:
        return self.text_projection(encoding.tokens)

    def texts(self, encoding: TextEncoding, labels: Sequence[str]) -> TokenSet:
        """One group per text; its tokens are that text's real (non-padding) tokens."""
        projected = self.text_tokens(encoding)  # (N, T, D)
        mask = encoding.attention_mask
        tokens = projected[mask].unsqueeze(0)  # (1, total, D), texts one after the other
        owner = torch.arange(mask.shape[0], device=mask.device)[:, None].expand_as(mask)[mask]
        groups = owner[None, :] == torch.arange(mask.shape[0], device=mask.device)[:, None]
        return TokenSet(tokens, groups, tuple(labels))

    def single_tokens(self, embeddings: Tensor, labels: Sequence[str]) -> TokenSet:
        """One token per group, e.g. visual-context classes, (G, D)."""
        count = embeddings.shape[0]
        return TokenSet(embeddings.unsqueeze(0), torch.eye(count, dtype=torch.bool, device=embeddings.device), tuple(labels))

    # --------------------------------------------------------------------------------- interleave

    def interleave(self, parsed: ParsedInstruction, layout: InterleaveText, encoding: TextEncoding,
                   visual_tokens: Tensor, visual_pixels: Tensor) -> InstructionEmbeddings:
        """Assemble an instruction: ``encoding`` is the language model on ``layout.text`` (one row);
        ``visual_tokens[k]`` / ``visual_pixels[k]`` the embeddings of visual entity k."""
        projected = self.text_tokens(encoding)[0]
        keep = encoding.attention_mask[0]
        offsets = encoding.offsets[0].tolist()
        roles = layout.token_roles(offsets, keep.tolist())
        rows: list[Tensor] = []
        row_piece: list[int | None] = []
        placed: set[int] = set()
        for t, piece in enumerate(roles):
            if piece is False:  # padding
                continue
            visual = piece is not None and isinstance(parsed.pieces[piece], int)
            if visual:
                if piece in placed:
                    continue  # one token per visual entity, at its first sub-token
                placed.add(piece)
                rows.append(visual_tokens[parsed.pieces[piece]])
            else:
                rows.append(projected[t])
            row_piece.append(piece)
        missing = [parsed.pieces[p] for p in layout.visual_pieces if p not in placed]
        if missing:
            raise ValueError(f"visual entities {missing} fell outside the language model's token limit")
        tokens = torch.stack(rows)
        entity_count = len(parsed.entities)
        groups = torch.zeros(entity_count, len(rows), dtype=torch.bool, device=tokens.device)
        for row, piece in enumerate(row_piece):
            if piece is not None and layout.piece_entity[piece] is not None:
                groups[layout.piece_entity[piece], row] = True
        if layout.sentence_entity is not None:
            groups[layout.sentence_entity] = True
        empty = [parsed.entities[e].label for e in range(entity_count) if not groups[e].any()]
        if empty:
            raise ValueError(f"entities {empty} have no tokens (beyond the language model's token limit?)")
        is_visual = tuple(e.is_visual for e in parsed.entities)
        refs = visual_pixels.new_zeros(entity_count, visual_pixels.shape[-1])
        for e, entity in enumerate(parsed.entities):
            if entity.visual_index is not None:
                refs[e] = visual_pixels[entity.visual_index]
        return InstructionEmbeddings(parsed, tokens, groups, is_visual, refs)


def legend_tokens(parsed: ParsedInstruction, layout: InterleaveText, projected: Tensor, encoding: TextEncoding,
                  image_value: Tensor, image_position: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The authors' instruction tokens (find-official README §5, §6): every real token (BOS
    included) of ``projected`` (T, D), the language model's tokens through the projection. Token t
    belongs to entity e iff it is not empty and lies inside e's character span (so a leading-space
    piece before a mid-sentence entity does not). Tokens of visual entities add the image query's
    value (``image_value``) to their value and its position to their positional part. Returns
    (tokens (T', D), positions (T', D), entity groups (E, T'))."""
    keep = encoding.attention_mask[0]
    start, end = encoding.offsets[0, :, 0], encoding.offsets[0, :, 1]
    spans = []
    for e in range(len(parsed.entities)):
        if e == layout.sentence_entity:
            spans.append((0, len(layout.text)))
            continue
        own = [span for span, owner in zip(layout.piece_spans, layout.piece_entity) if owner == e]
        spans.append((min(a for a, _ in own), max(b for _, b in own)))
    groups = torch.stack([keep & (start >= a) & (end <= b) & (end > start) for a, b in spans])[:, keep]
    tokens = projected[keep]
    visual = torch.tensor([entity.is_visual for entity in parsed.entities], dtype=torch.bool, device=groups.device)
    flag = groups[visual].any(0)[:, None].to(tokens.dtype) if bool(visual.any()) else tokens.new_zeros(len(tokens), 1)
    return tokens + flag * image_value, tokens + flag * image_position, groups


class InterleaveText:
    """The sentence the language model reads for an instruction, and what each character is.

    Visual pieces become ``placeholder`` (their tokens are later replaced by the visual embedding);
    ``piece_spans[i]`` is piece i's character span in ``text``; ``piece_entity[i]`` the entity a
    piece stands for (a bracketed text entity or a ``<k>``), None for plain words;
    ``sentence_entity`` the index of the whole-sentence entity of a plain instruction, if any.
    """

    def __init__(self, parsed: ParsedInstruction, placeholder: str) -> None:
        self.piece_entity = list(parsed.piece_entities)
        text, spans = "", []
        for piece in parsed.pieces:
            word = piece if isinstance(piece, str) else placeholder
            if isinstance(piece, int) and text and not text[-1].isspace():
                text += " "  # keep the placeholder a word of its own
            spans.append((len(text), len(text) + len(word)))
            text += word
        self.text = text
        self.piece_spans = spans
        self.visual_pieces = [i for i, p in enumerate(parsed.pieces) if isinstance(p, int)]
        self.sentence_entity = 0 if parsed.sentence_entity else None

    def token_roles(self, offsets: Sequence[Sequence[int]], keep: Sequence[bool]) -> list[int | None | bool]:
        """Per token: False for padding, else the piece it belongs to (None: special/space tokens).
        A token touching a visual placeholder belongs to it (BPE tokens carry a leading space)."""
        roles: list[int | None | bool] = []
        for (start, end), real in zip(offsets, keep):
            if not real:
                roles.append(False)
                continue
            best, overlap = None, 0
            for i, (s, e) in enumerate(self.piece_spans):
                o = min(end, e) - max(start, s)
                if o > 0 and i in self.visual_pieces:
                    best, overlap = i, float("inf")
                    break
                if o > overlap:
                    best, overlap = i, o
            roles.append(best)
        return roles


# ------------------------------------------------------------------------------------------ rasters


def _grid(image: ImageEmbeddings) -> tuple[int, int]:
    return int(image.pixel.shape[-2]), int(image.pixel.shape[-1])


def valid_raster(image: ImageEmbeddings, index: int) -> Tensor:
    """Ones over image ``index``'s valid (unpadded) stride-4 cells."""
    h4, w4 = _grid(image)
    rh, rw = image.resized_sizes[index]
    raster = torch.zeros(h4, w4, device=image.device)
    raster[: max(1, -(-rh // 4)), : max(1, -(-rw // 4))] = 1.0
    return raster


def centred_raster(image: ImageEmbeddings, index: int, sigma: float = 0.25) -> Tensor:
    """A Gaussian over image ``index``'s valid stride-4 cells, peaked at their centre, with a
    standard deviation of ``sigma`` times each side."""
    raster = valid_raster(image, index)
    rows, cols = int(raster.sum(1).gt(0).sum()), int(raster.sum(0).gt(0).sum())
    y = (torch.arange(raster.shape[0], device=raster.device) + 0.5 - rows / 2) / (sigma * rows)
    x = (torch.arange(raster.shape[1], device=raster.device) + 0.5 - cols / 2) / (sigma * cols)
    return raster * torch.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


def box_raster(image: ImageEmbeddings, index: int, box: Sequence[float]) -> Tensor:
    """Coverage of the stride-4 cells by ``box`` (original pixels of image ``index``); at least one cell."""
    h4, w4 = _grid(image)
    sy, sx = image.scale(index)
    rh, rw = image.resized_sizes[index]
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = np.clip([x0 * sx, x1 * sx], 0, rw) / 4.0
    y0, y1 = np.clip([y0 * sy, y1 * sy], 0, rh) / 4.0
    cx = torch.arange(w4, device=image.device, dtype=torch.float32)
    cy = torch.arange(h4, device=image.device, dtype=torch.float32)
    # Fraction of each cell [c, c+1) inside [a, b): exact area weights, so a box thinner than one
    # cell still weighs the cells it touches.
    fx = (torch.clamp(cx + 1, max=float(x1)) - torch.clamp(cx, min=float(x0))).clamp(0, 1)
    fy = (torch.clamp(cy + 1, max=float(y1)) - torch.clamp(cy, min=float(y0))).clamp(0, 1)
    raster = fy[:, None] * fx[None, :]
    if raster.sum() <= 0:
        raster[min(int(y0), h4 - 1), min(int(x0), w4 - 1)] = 1.0
    return raster


def mask_raster(image: ImageEmbeddings, index: int, mask: np.ndarray) -> Tensor:
    """A (H, W) mask at original size as stride-4 cell coverage."""
    h4, w4 = _grid(image)
    rh, rw = image.resized_sizes[index]
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32), device=image.device)[None, None]
    m = F.interpolate(m, size=(rh, rw), mode="bilinear", align_corners=False)
    m = F.pad(m, (0, w4 * 4 - rw, 0, h4 * 4 - rh))
    raster = F.avg_pool2d(m, 4)[0, 0]
    if raster.sum() <= 0:
        raise ValueError("mask prompt is empty after resizing to the network input")
    return raster


def polyline_raster(image: ImageEmbeddings, index: int, points: np.ndarray, radius_cells: float = 1.0) -> Tensor:
    """Cells whose centre lies within ``radius_cells`` of the polyline (a point is a 1-point line)."""
    h4, w4 = _grid(image)
    sy, sx = image.scale(index)
    pts = torch.as_tensor(np.asarray(points, dtype=np.float32), device=image.device).reshape(-1, 2)
    pts = pts * torch.tensor([sx / 4.0, sy / 4.0], device=image.device)
    if len(pts) == 1:
        pts = torch.cat([pts, pts])
    a, b = pts[:-1], pts[1:]  # segments (S, 2)
    ys, xs = torch.meshgrid(torch.arange(h4, device=image.device) + 0.5,
                            torch.arange(w4, device=image.device) + 0.5, indexing="ij")
    centres = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2)  # (P, 1, 2)
    ab = b - a
    t = ((centres - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)
    nearest = a + t.clamp(0, 1)[..., None] * ab
    distance = (centres - nearest).norm(dim=-1).min(dim=1).values.reshape(h4, w4)
    raster = (distance <= radius_cells).float()
    if raster.sum() <= 0:
        raise ValueError("spatial prompt lies outside the image")
    return raster


def spatial_raster(prompt: SpatialPrompt, image: ImageEmbeddings, index: int) -> Tensor:
    data = np.asarray(prompt.data)
    if prompt.kind == "box":
        return box_raster(image, index, data)
    if prompt.kind == "mask":
        if data.shape != tuple(image.image_sizes[index]):
            raise ValueError(f"mask prompt has shape {data.shape}; the image is {image.image_sizes[index]}")
        return mask_raster(image, index, data)
    h, w = image.image_sizes[index]
    pts = data.reshape(-1, 2)
    if ((pts[:, 0] < 0) | (pts[:, 0] >= w) | (pts[:, 1] < 0) | (pts[:, 1] >= h)).all():
        raise ValueError(f"{prompt.kind} prompt lies outside the {w}x{h} image")
    return polyline_raster(image, index, pts)


def region_raster(region: RegionRef) -> Tensor:
    if region.box is not None:
        return box_raster(region.image, region.index, region.box)
    return mask_raster(region.image, region.index, region.mask)
