"""Many instructions against one encoded image in one interface pass.

Instructions must not see each other: in interleave grounding every instruction has its own object
queries, which attend to all of that instruction's tokens. So instructions are not concatenated
into one prompt (as ``run(..., interleave=[...])`` does for retrieval) but stacked along the batch
dimension, the image's features shared (expanded, not copied) by every row. Each row is padded to
the longest instruction's token and entity counts; padded tokens and padded entity queries are
allowed to attend nothing and are seen by nothing, so a boolean attention mask gives them an exact
zero weight and each row's real queries compute what the instruction alone would.

Padding changes the length a reduction runs over (attention keys, the softmax sum), and the CPU
kernels sum in length-dependent blocks, so rows of a padded batch agree with one-at-a-time runs to
float rounding (about 1e-7), not bit for bit; rows that need no padding (every instruction of the
same token and entity count) are bit-identical (tests/model/test_ground_many.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from find_ros.model.embeddings import InstructionEmbeddings, TokenSet
from find_ros.model.prototypes import Layout, TaskPrototype, build_layout


@dataclass
class InstructionBatch:
    """Padded instructions of one grounding pass: ``tokens`` (N, T, D), the batched ``layout`` (its
    masks carry a leading batch dimension N) and, per row, the instruction's own token set and layout
    (what a one-at-a-time run builds), for the per-instruction read-out."""

    instructions: tuple[InstructionEmbeddings, ...]
    tokens: Tensor
    layout: Layout | None  # None for no instructions
    token_sets: list[TokenSet]
    layouts: list[Layout]

    @property
    def size(self) -> int:
        return len(self.instructions)


def batch_instructions(prototype: TaskPrototype, prompt: str, instructions: Sequence[InstructionEmbeddings],
                       num_object: int, num_global: int, device: torch.device, dtype: torch.dtype) -> InstructionBatch:
    """Stack ``instructions`` for ``prototype``, whose only token prompt is ``prompt`` (grouped as the
    prototype declares), into one padded batch with per-row attention masks."""
    if [p.name for p in prototype.token_prompts] != [prompt]:
        raise ValueError(f"task {prototype.name!r} does not take {prompt!r} as its only token prompt")
    spec = prototype.token_prompts[0]
    if not instructions:
        return InstructionBatch((), torch.zeros(0, 0, 0, device=device, dtype=dtype), None, [], [])
    sets = [i.token_set(spec.group_by) for i in instructions]
    layouts = [build_layout(prototype, {prompt: s.groups}, num_object, num_global, device) for s in sets]
    count = len(sets)
    num_tokens = max(s.num_tokens for s in sets)
    tokens = torch.zeros(count, num_tokens, sets[0].tokens.shape[-1], device=device, dtype=dtype)
    for row, s in enumerate(sets):
        tokens[row, : s.num_tokens] = s.tokens[0].to(dtype)

    # Query slices and pool indices of the widest row: every prototype with one token prompt lays its
    # queries out as fixed pools plus one query per group, so the widest row's layout covers all.
    widest = max(range(count), key=lambda r: layouts[r].num_queries)
    query_slices = layouts[widest].query_slices
    num_queries = layouts[widest].num_queries
    pool_index = layouts[widest].query_pool_index
    content_image = torch.zeros(num_queries, dtype=torch.bool, device=device)
    mask_guided = torch.zeros(num_queries, dtype=torch.bool, device=device)
    content_tokens = torch.zeros(count, num_queries, num_tokens, dtype=torch.bool, device=device)
    seq = num_tokens + num_queries
    conditional = torch.zeros(count, seq, seq, dtype=torch.bool, device=device)
    for row, (s, lay) in enumerate(zip(sets, layouts)):
        q = lay.num_queries
        if not torch.equal(pool_index[:q], lay.query_pool_index):
            raise ValueError(f"task {prototype.name!r}: its queries do not line up across instructions")
        content_image[:q] |= lay.content_image
        mask_guided[:q] |= lay.mask_guided
        content_tokens[row, :q, : s.num_tokens] = lay.content_tokens
        # Row order [tokens, queries]: a row's tokens keep their places, its queries move behind the
        # padded token block.
        where = torch.cat([torch.arange(s.num_tokens, device=device), num_tokens + torch.arange(q, device=device)])
        conditional[row][where[:, None], where[None, :]] = lay.conditional
    layout = Layout(prototype=prototype, token_slices={prompt: slice(0, num_tokens)}, query_slices=query_slices,
                    query_pool_index=pool_index, content_tokens=content_tokens, content_image=content_image,
                    mask_guided=mask_guided, conditional=conditional)
    return InstructionBatch(instructions=tuple(instructions), tokens=tokens, layout=layout, token_sets=sets, layouts=layouts)
