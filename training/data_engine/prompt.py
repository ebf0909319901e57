"""The caption prompt, following the structure of the paper's Table 1 (part 2), in our own words.

Inputs, in the paper's order: ground-truth captions (GT), pseudo image description (PD), boxes
(Box, ``[x0, y0, w, h]``), segment information (SI: id, box, category, descriptions) and the segment
proposal (SP: the ids the captions should draw on). The answer is entity-linked captions in the
``[id]<text>`` markup, one per line; the constraints below spell out the rules that
:mod:`training.data_engine.markup` enforces, so a well-behaved model is rejected only when it breaks
them.

Large scenes are capped to the ``max_segments`` largest non-crowd segments to bound the prompt size.
"""

from __future__ import annotations

import json

from .inputs import ImageItem, Segment

PROMPT_VERSION = 2  # part of the work-directory fingerprint: changing the wording invalidates old results

SYSTEM_PROMPT = (
    "You write image captions whose noun phrases are linked to annotated image segments. "
    "You cannot see the image; rely only on the annotations you are given."
)

_TEMPLATE = """Write {n} caption(s) for one image, linking phrases to its annotated segments.

Ground-truth captions written by people: <{gt}>
Pseudo description produced by a vision-language model: <{pd}>
Boxes of the annotated segments, as [x0, y0, w, h] in pixels where (x0, y0) is the top-left corner and (w, h) the size; the image is {width}x{height}: <{boxes}>
Segment information (id, box, category, descriptions): <{si}>
Segment proposal (ids the captions should mention): <{sp}>

Mark every linked phrase as [id]<phrase>. Example of the format: "[index]<A woman> sits next to [index]<a smiling man>, holding hands under [index]<the blue sky>." where each [index] is one of the segment ids above.

Rules:
1. Use only segment ids listed above; link each id at most once per caption, and word each linked phrase so its exact text appears only once in the caption (say "a man" and "another man", not "a man" twice).
2. Put the phrase that names the segment, with its article and attributes, inside <...>; keep verbs and relations outside.
3. Never nest or overlap linked phrases, and use no other square or angle brackets.
4. Removing the markup must leave a fluent English sentence: single spaces, a space before each linked phrase unless it starts the sentence, no space before punctuation.
5. Describe only what the annotations support; do not invent objects.
6. Answer with exactly {n} line(s), one caption per line, and nothing else: no numbering, no quotes, no explanations."""


def _segment_info(s: Segment) -> dict:
    d: dict = {"id": s.id, "bbox": [round(v, 1) for v in s.bbox], "category": s.category}
    if s.descriptions:
        d["descriptions"] = list(s.descriptions)
    return d


def proposal_segments(item: ImageItem, max_segments: int) -> list[Segment]:
    """The segments offered to the model: non-crowd, largest first (stable by id for equal areas)."""
    segs = sorted(item.entity_segments, key=lambda s: (-s.area, s.id))
    return segs[:max_segments]


def build_messages(item: ImageItem, n_captions: int, max_segments: int = 30) -> list[dict[str, str]]:
    """Chat messages asking for ``n_captions`` entity-linked captions of ``item``."""
    segs = proposal_segments(item, max_segments)
    dumps = lambda v: json.dumps(v, ensure_ascii=False, separators=(", ", ": "))  # noqa: E731
    user = _TEMPLATE.format(
        n=n_captions,
        gt=dumps(list(item.captions)) if item.captions else "none",
        pd=dumps(list(item.pseudo_descriptions)) if item.pseudo_descriptions else "none",
        width=item.width,
        height=item.height,
        boxes=dumps({str(s.id): [round(v, 1) for v in s.bbox] for s in segs}),
        si=dumps([_segment_info(s) for s in segs]),
        sp=dumps([s.id for s in segs]),
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def feedback_message(reason: str) -> dict[str, str]:
    """The follow-up turn after a rejected answer: say what was wrong so the retry can fix it."""
    return {
        "role": "user",
        "content": f"That answer was rejected ({reason}). Write the caption(s) again, following every rule.",
    }
