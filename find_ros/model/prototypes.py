"""Task prototypes as data (paper appendix A.1, Table 6).

A task is *declared*, not coded: which prompts it takes, which queries it runs (and how they are
initialised from the learned pool), who may attend to whom in content attention (queries ← prompts)
and in conditional attention (among token prompts and queries), what it outputs and how the
outputs are read. :func:`build_layout` turns a prototype plus the sizes of the actual prompts into
the boolean attention masks the interface runs with; the interface has no task-specific code.

Edges are written ``"q.object <- p.image"`` (the left side attends to the right side) or
``"q.object <-> q.object"`` (both ways). Token prompts are *indexed* (the authors' MASKING): two
variables grouped by the same prompt — its token groups, or queries declared ``per_group_of`` it —
attend each other only within a group. So the query of entity 3 sees only entity 3's tokens, and a
class's tokens never mix with another class's.

To add a task, build a :class:`TaskPrototype` and :func:`register_prototype` it; ``FindModel.run``
then runs it by name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

PROMPT_SOURCES = ("image", "text", "class", "spatial", "interleave", "tokens", "samples")
QUERY_INITS = ("object", "global")
QUERY_OUTPUTS = ("semantic", "pixel")
READOUT_KINDS = ("panoptic", "match", "similarity", "none")
READOUT_SCORES = ("cosine", "dot")
MASK_RESIZES = ("model", "direct_bicubic_antialias", "bicubic")

_EDGE = re.compile(r"^\s*([qp])\.(\w+)\s*(<->|<-)\s*([qp])\.(\w+)\s*$")


@dataclass(frozen=True)
class PromptSpec:
    """A prompt variable. ``source`` says what fills it: the image's level features ("image"),
    plain texts ("text"), class names / visual-context classes ("class"), points/boxes/scribbles/
    masks ("spatial"), interleaved instructions ("interleave"), or a ready TokenSet ("tokens").
    Interleave prompts are grouped per ``"entity"`` or per whole instruction (``"item"``)."""

    name: str
    source: str
    group_by: str = "item"
    # Source "samples": the visual entities' point samples of the instruction given for prompt
    # ``samples_of`` (no argument of its own), grouped, and indexed, by that prompt's entities.
    samples_of: str | None = None


@dataclass(frozen=True)
class QuerySpec:
    """A query variable. ``init="object"``: the learned object queries (100 in FIND-T);
    ``init="global"``: the learned image-level query. With ``per_group_of=P`` there is one query per
    group of prompt P, each a copy of the first query of its pool (the authors' DUPLICATION)."""

    name: str
    init: str = "object"
    per_group_of: str | None = None
    outputs: tuple[str, ...] = ("semantic",)
    # The authors' image query: its semantic head reads the softmax(cos)-weighted mean of the
    # named proposal set's normed outputs instead of its own state (find-official README §5).
    pooled_from: str | None = None


@dataclass(frozen=True)
class ReadoutSpec:
    """How outputs become answers: ``panoptic`` (proposals × class queries, Mask2Former merge),
    ``match`` (argmax over proposals for each target query), ``similarity`` (cosine matrix between
    two query sets, for retrieval) or ``none`` (raw outputs only)."""

    kind: str
    proposals: str | None = None
    targets: str | None = None
    # Match scores: "cosine" (scaled cosine; image-region targets in pixel space against their
    # reference) or "dot": the authors' raw dot products of the target queries' own outputs,
    # pixel embeddings for visual targets and semantic ones for text targets.
    score: str = "cosine"
    # Mask logits to the original size: "model" (the model's DecoderSettings.final_mask_resize after a
    # bilinear step to the network input), "direct_bicubic_antialias" (straight from stride 4,
    # the authors' interleave demo) or "bicubic" (bicubic twice, no antialias: their interactive demo).
    mask_resize: str = "model"


@dataclass(frozen=True)
class TaskPrototype:
    name: str
    description: str
    prompts: tuple[PromptSpec, ...]
    queries: tuple[QuerySpec, ...]
    content: tuple[str, ...]
    conditional: tuple[str, ...]
    readout: ReadoutSpec = field(default_factory=lambda: ReadoutSpec("none"))
    # Conditional edges that ignore the index: every row of one side sees every row of the other,
    # whatever group they belong to (the authors' self-attention uses no index).
    conditional_unindexed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise ValueError(f"task prototype {self.name!r}: {message}")

        if not re.fullmatch(r"[A-Za-z_]\w*", self.name):
            fail("name must be an identifier")
        prompts = {p.name: p for p in self.prompts}
        queries = {q.name: q for q in self.queries}
        if len(prompts) != len(self.prompts) or len(queries) != len(self.queries):
            fail("duplicate prompt or query names")
        for p in self.prompts:
            if p.source not in PROMPT_SOURCES:
                fail(f"prompt {p.name!r}: source {p.source!r} not in {PROMPT_SOURCES}")
            if p.group_by not in ("item", "entity") or (p.group_by == "entity" and p.source not in ("interleave", "samples")):
                fail(f"prompt {p.name!r}: group_by 'entity' is for interleave prompts; otherwise 'item'")
            if (p.source == "samples") != (p.samples_of is not None) or (
                    p.samples_of is not None and (p.samples_of not in prompts or prompts[p.samples_of].source != "interleave")):
                fail(f"prompt {p.name!r}: a 'samples' prompt names the interleave prompt it samples (samples_of)")
        if sum(p.source == "image" for p in self.prompts) > 1:
            fail("at most one image prompt")
        if not self.queries:
            fail("no queries")
        for q in self.queries:
            if q.init not in QUERY_INITS:
                fail(f"query {q.name!r}: init {q.init!r} not in {QUERY_INITS}")
            if not q.outputs or set(q.outputs) - set(QUERY_OUTPUTS):
                fail(f"query {q.name!r}: outputs must be a non-empty subset of {QUERY_OUTPUTS}")
            if q.per_group_of is not None and (q.per_group_of not in prompts or prompts[q.per_group_of].source == "image"):
                fail(f"query {q.name!r}: per_group_of must name a token prompt")
            if q.pooled_from is not None and (q.pooled_from not in queries or queries[q.pooled_from].init != "object"):
                fail(f"query {q.name!r}: pooled_from must name an object query set")
        for text in self.content:
            for dst, src in self._parse(text, prompts, queries):
                if src[0] != "p" or (dst[0] == "p" and (prompts[dst[1]].source == "image" or prompts[src[1]].source == "image")):
                    fail(f"content edge {text!r}: must be 'q.<query> <- p.<prompt>' or 'p.<tokens> <- p.<tokens>'")
        for text in self.conditional + self.conditional_unindexed:
            for dst, src in self._parse(text, prompts, queries):
                for side in (dst, src):
                    if side[0] == "p" and prompts[side[1]].source == "image":
                        fail(f"conditional edge {text!r}: image prompts take part in content attention only")
        if self.readout.kind not in READOUT_KINDS:
            fail(f"readout kind {self.readout.kind!r} not in {READOUT_KINDS}")
        if self.readout.score not in READOUT_SCORES or self.readout.mask_resize not in MASK_RESIZES:
            fail(f"readout score must be one of {READOUT_SCORES} and mask_resize one of {MASK_RESIZES}")
        for role in ("proposals", "targets"):
            name = getattr(self.readout, role)
            if self.readout.kind != "none" and name not in queries:
                fail(f"readout {role} {name!r} is not a query of this task")
        if self.readout.kind in ("panoptic", "match") and "pixel" not in queries[self.readout.proposals].outputs:
            fail("panoptic/match read-outs need proposals with a pixel output")

    def _parse(self, text: str, prompts: Mapping[str, PromptSpec], queries: Mapping[str, QuerySpec]):  # noqa: ANN202
        match = _EDGE.match(text)
        if not match:
            raise ValueError(f"task prototype {self.name!r}: edge {text!r} is not 'x.a <- y.b' or 'x.a <-> y.b'")
        a, arrow, b = (match.group(1), match.group(2)), match.group(3), (match.group(4), match.group(5))
        for kind, name in (a, b):
            if name not in (queries if kind == "q" else prompts):
                raise ValueError(f"task prototype {self.name!r}: edge {text!r} names unknown {kind}.{name}")
        return [(a, b), (b, a)] if arrow == "<->" else [(a, b)]

    def query(self, name: str) -> QuerySpec:
        for q in self.queries:
            if q.name == name:
                return q
        raise ValueError(f"task {self.name!r} has no query {name!r}")

    @property
    def image_prompt(self) -> PromptSpec | None:
        return next((p for p in self.prompts if p.source == "image"), None)

    @property
    def token_prompts(self) -> tuple[PromptSpec, ...]:
        return tuple(p for p in self.prompts if p.source != "image")

    def content_edges(self) -> list[tuple[str, str]]:
        """(query, prompt) pairs: the query attends to the prompt in content attention."""
        prompts, queries = {p.name: p for p in self.prompts}, {q.name: q for q in self.queries}
        return [(d[1], s[1]) for t in self.content for d, s in self._parse(t, prompts, queries) if d[0] == "q"]

    def token_content_edges(self) -> list[tuple[str, str]]:
        """(prompt, prompt) pairs: the first prompt's tokens attend the second's in content
        attention (the authors' legend tokens attend their entities' point samples)."""
        prompts, queries = {p.name: p for p in self.prompts}, {q.name: q for q in self.queries}
        return [(d[1], s[1]) for t in self.content for d, s in self._parse(t, prompts, queries) if d[0] == "p"]

    def conditional_edges(self, indexed: bool = True) -> list[tuple[tuple[str, str], tuple[str, str]]]:
        """((kind, name) attends (kind, name)) pairs of conditional attention, kind 'q' or 'p':
        the indexed edges, or with ``indexed=False`` those that ignore the index."""
        prompts, queries = {p.name: p for p in self.prompts}, {q.name: q for q in self.queries}
        edges = self.conditional if indexed else self.conditional_unindexed
        return [pair for t in edges for pair in self._parse(t, prompts, queries)]

    def summary(self) -> str:
        prompts = ",".join(f"{p.name}({p.source}{'/' + p.group_by if p.group_by != 'item' else ''})" for p in self.prompts)
        queries = ",".join(
            f"{q.name}({q.init}{' per ' + q.per_group_of if q.per_group_of else ''}:{'+'.join(q.outputs)})" for q in self.queries
        )
        return f"{self.name}  prompts={prompts}  queries={queries}  readout={self.readout.kind}"


# ------------------------------------------------------------------------------------------- registry

# Prototype sets by name: "find_ros" (our own models), "proposal_aware" (our relational models) and
# "official" (the authors' attention graph, for converted releases); a model's
# DecoderSettings.prototype_set picks one.
_REGISTRY: dict[str, dict[str, TaskPrototype]] = {"find_ros": {}, "proposal_aware": {}, "official": {}}
DEFAULT_SET = "find_ros"


def _set(prototype_set: str) -> dict[str, TaskPrototype]:
    try:
        return _REGISTRY[prototype_set]
    except KeyError:
        raise ValueError(f"unknown prototype set {prototype_set!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def register_prototype(prototype: TaskPrototype, *, replace: bool = False, prototype_set: str = DEFAULT_SET) -> TaskPrototype:
    registry = _set(prototype_set)
    if prototype.name in registry and not replace:
        raise ValueError(f"a task prototype named {prototype.name!r} is already registered")
    registry[prototype.name] = prototype
    return prototype


def unregister_prototype(name: str, prototype_set: str = DEFAULT_SET) -> None:
    _set(prototype_set).pop(name, None)


def get_prototype(name: str, prototype_set: str = DEFAULT_SET) -> TaskPrototype:
    registry = _set(prototype_set)
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; registered: {', '.join(sorted(registry))}") from None


def list_prototypes(prototype_set: str = DEFAULT_SET) -> list[TaskPrototype]:
    return list(_set(prototype_set).values())


# ------------------------------------------------------------------------------ the six of the paper

GENERIC_SEGMENTATION = register_prototype(TaskPrototype(
    name="generic_segmentation",
    description="panoptic / instance / semantic segmentation over given class names",
    prompts=(PromptSpec("image", "image"), PromptSpec("class", "class")),
    queries=(QuerySpec("object", "object", outputs=("semantic", "pixel")),
             QuerySpec("class", "global", per_group_of="class")),
    content=("q.object <- p.image", "q.class <- p.class"),
    # Class queries never see the image or each other, so a class embedding does not depend on the
    # picture or on which other classes were asked for.
    conditional=("p.class <-> p.class", "q.object <-> q.object", "q.class <-> q.class", "q.object <- q.class"),
    readout=ReadoutSpec("panoptic", proposals="object", targets="class"),
))

GROUNDED_SEGMENTATION = register_prototype(TaskPrototype(
    name="grounded_segmentation",
    description="one mask per referring phrase",
    prompts=(PromptSpec("image", "image"), PromptSpec("text", "text")),
    queries=(QuerySpec("grounding", "object", outputs=("semantic", "pixel")),
             QuerySpec("text", "global", per_group_of="text")),
    content=("q.grounding <- p.image", "q.text <- p.text"),
    conditional=("p.text <-> p.text", "q.grounding <-> q.grounding", "q.text <-> q.text", "q.grounding <- p.text"),
    readout=ReadoutSpec("match", proposals="grounding", targets="text"),
))

INTERACTIVE_SEGMENTATION = register_prototype(TaskPrototype(
    name="interactive_segmentation",
    description="one mask per object given by points, boxes, scribbles or masks",
    prompts=(PromptSpec("image", "image"), PromptSpec("spatial", "spatial")),
    queries=(QuerySpec("segment", "object", outputs=("semantic", "pixel")),
             QuerySpec("spatial", "global", per_group_of="spatial")),
    content=("q.segment <- p.image", "q.spatial <- p.spatial"),
    conditional=("p.spatial <-> p.spatial", "q.segment <-> q.segment", "q.spatial <-> q.spatial", "q.segment <- p.spatial"),
    readout=ReadoutSpec("match", proposals="segment", targets="spatial"),
))

IMAGE_TEXT_RETRIEVAL = register_prototype(TaskPrototype(
    name="image_text_retrieval",
    description="global image and caption embeddings in one space",
    prompts=(PromptSpec("image", "image"), PromptSpec("caption", "text")),
    queries=(QuerySpec("image", "global"), QuerySpec("caption", "global", per_group_of="caption")),
    content=("q.image <- p.image", "q.caption <- p.caption"),
    # No edge between image and caption queries: a gallery is embedded once, independently of the
    # queries it will be searched with (and vice versa).
    conditional=("p.caption <-> p.caption",),
    readout=ReadoutSpec("similarity", proposals="image", targets="caption"),
))

INTERLEAVE_GROUNDING = register_prototype(TaskPrototype(
    name="interleave_grounding",
    description="one mask per entity of an interleaved instruction (text spans and image references)",
    prompts=(PromptSpec("image", "image"), PromptSpec("interleave", "interleave", group_by="entity")),
    queries=(QuerySpec("entity", "object", outputs=("semantic", "pixel")),
             QuerySpec("interleave", "global", per_group_of="interleave")),
    content=("q.entity <- p.image", "q.interleave <- p.interleave"),
    # Appendix A.3, eq. 7 (with Table 6's q.entity <- p.interleave).
    conditional=("p.interleave <-> p.interleave", "q.entity <-> q.entity", "q.interleave <-> q.interleave",
                 "q.entity <- p.interleave"),
    readout=ReadoutSpec("match", proposals="entity", targets="interleave"),
))

INTERLEAVE_RETRIEVAL = register_prototype(TaskPrototype(
    name="interleave_retrieval",
    description="global image and interleaved-instruction embeddings in one space",
    prompts=(PromptSpec("image", "image"), PromptSpec("interleave", "interleave", group_by="item")),
    queries=(QuerySpec("image", "global"), QuerySpec("interleave", "global", per_group_of="interleave")),
    content=("q.image <- p.image", "q.interleave <- p.interleave"),
    conditional=("p.interleave <-> p.interleave",),
    readout=ReadoutSpec("similarity", proposals="image", targets="interleave"),
))


# ------------------------------------------------- task queries that see the proposals ("proposal_aware")
# The six above with two changes. A grounding target (phrase or entity query) also reads the
# proposals it will be matched against, so "the leftmost cone" can be judged among the cones in
# view rather than from the words alone. The image-level query of retrieval is re-pooled from
# object proposals (the released FIND's image embedding, QuerySpec.pooled_from), so the small
# things a caption names reach the global embedding instead of one query averaging the whole view.

PROPOSAL_AWARE = "proposal_aware"


def _sees_proposals(prototype: TaskPrototype, target: str, proposals: str) -> TaskPrototype:
    return dataclasses.replace(prototype, description=prototype.description + " (targets see the proposals)",
                               conditional=(*prototype.conditional, f"q.{target} <- q.{proposals}"))


def _pooled_image(prototype: TaskPrototype) -> TaskPrototype:
    image, *others = prototype.queries
    if image.name != "image":
        raise ValueError(f"{prototype.name}: the image query must come first")
    return dataclasses.replace(
        prototype, description=prototype.description + " (image embedding re-pooled from object proposals)",
        queries=(QuerySpec("object", "object", outputs=("semantic", "pixel")),
                 QuerySpec("image", "global", pooled_from="object"), *others),
        content=("q.object <- p.image", *prototype.content),
        conditional=(*prototype.conditional, "q.object <-> q.object", "q.image <- q.object"))


for _prototype in (GENERIC_SEGMENTATION, INTERACTIVE_SEGMENTATION,
                   _sees_proposals(GROUNDED_SEGMENTATION, "text", "grounding"),
                   _sees_proposals(INTERLEAVE_GROUNDING, "interleave", "entity"),
                   _pooled_image(IMAGE_TEXT_RETRIEVAL), _pooled_image(INTERLEAVE_RETRIEVAL)):
    register_prototype(_prototype, prototype_set=PROPOSAL_AWARE)


# ------------------------------------------------------------- the authors' graph (prototype set "official")
# The released FIND decoder's variables and attention (find-official README §5; their
# ATTENTION_ARCH): proposals are copies of the object queries, task queries copies of the image
# query; cross-attention is indexed, self-attention is not. Object proposals and the image query
# run where a read-out needs the re-pooled image embedding.

OFFICIAL = "official"

register_prototype(TaskPrototype(
    name="generic_segmentation",
    description="panoptic / instance / semantic segmentation over given class names (the authors' graph)",
    prompts=(PromptSpec("image", "image"), PromptSpec("class", "class")),
    queries=(QuerySpec("object", "object", outputs=("semantic", "pixel")),
             QuerySpec("image", "global", pooled_from="object"),
             QuerySpec("class", "global", per_group_of="class")),
    content=("q.object <- p.image", "q.image <- p.image", "q.class <- p.class"),
    # Indexed: the authors run one class per class pass, so a class sees only its own tokens.
    conditional=("p.class <-> p.class", "q.class <-> q.class"),
    conditional_unindexed=("q.object <-> q.object", "q.image <-> q.image"),
    readout=ReadoutSpec("panoptic", proposals="object", targets="class"),
), prototype_set=OFFICIAL)

register_prototype(TaskPrototype(
    name="grounded_segmentation",
    description="one mask per referring phrase, all phrases in one pass (the authors' graph)",
    prompts=(PromptSpec("image", "image"), PromptSpec("text", "text")),
    queries=(QuerySpec("grounding", "object", outputs=("semantic", "pixel")),
             QuerySpec("text", "global", per_group_of="text")),
    content=("q.grounding <- p.image", "q.text <- p.text"),
    conditional=(),
    # Phrases grounded together see each other's tokens: the authors' self-attention has no index.
    conditional_unindexed=("p.text <-> p.text", "q.grounding <-> q.grounding", "q.text <-> q.text",
                           "q.grounding <-> p.text"),
    readout=ReadoutSpec("match", proposals="grounding", targets="text"),
), prototype_set=OFFICIAL)

register_prototype(TaskPrototype(
    name="image_text_retrieval",
    description="global image (re-pooled from the object proposals) and caption embeddings (the authors' graph)",
    prompts=(PromptSpec("image", "image"), PromptSpec("caption", "text")),
    queries=(QuerySpec("object", "object", outputs=("semantic", "pixel")),
             QuerySpec("image", "global", pooled_from="object"),
             QuerySpec("caption", "global", per_group_of="caption")),
    content=("q.object <- p.image", "q.image <- p.image", "q.caption <- p.caption"),
    # Indexed: the authors batch captions, one per batch item.
    conditional=("p.caption <-> p.caption", "q.caption <-> q.caption"),
    conditional_unindexed=("q.object <-> q.object", "q.image <-> q.image"),
    readout=ReadoutSpec("similarity", proposals="image", targets="caption"),
), prototype_set=OFFICIAL)

register_prototype(TaskPrototype(
    name="interactive_segmentation",
    description="one mask per prompted object (the authors' graph)",
    prompts=(PromptSpec("image", "image"), PromptSpec("spatial", "spatial")),
    queries=(QuerySpec("segment", "object", outputs=("semantic", "pixel")),
             QuerySpec("spatial", "global", per_group_of="spatial", outputs=("semantic", "pixel"))),
    content=("q.segment <- p.image", "q.spatial <- p.spatial"),
    conditional=(),
    conditional_unindexed=("p.spatial <-> p.spatial", "q.segment <-> q.segment", "q.spatial <-> q.spatial",
                           "q.segment <- p.spatial"),
    readout=ReadoutSpec("match", proposals="segment", targets="spatial", score="dot", mask_resize="bicubic"),
), prototype_set=OFFICIAL)

register_prototype(TaskPrototype(
    name="interleave_grounding",
    description="one mask per entity of an interleaved instruction (the authors' graph)",
    # "interleave" holds the legend tokens (the sentence's tokens, a visual entity's carrying the
    # image query), "samples" the visual entities' point samples.
    prompts=(PromptSpec("image", "image"), PromptSpec("interleave", "interleave", group_by="entity"),
             PromptSpec("samples", "samples", group_by="entity", samples_of="interleave")),
    queries=(QuerySpec("entity", "object", outputs=("semantic", "pixel")),
             QuerySpec("legend", "global"),
             QuerySpec("interleave", "global", per_group_of="interleave", outputs=("semantic", "pixel"))),
    content=("q.entity <- p.image", "q.interleave <- p.interleave", "q.legend <- p.interleave",
             "p.interleave <- p.samples"),
    conditional=(),
    conditional_unindexed=("p.interleave <-> p.interleave", "q.entity <-> q.entity", "q.interleave <-> q.interleave",
                           "q.legend <-> q.legend", "q.entity <- p.interleave", "p.samples <-> p.samples"),
    readout=ReadoutSpec("match", proposals="entity", targets="interleave", score="dot",
                        mask_resize="direct_bicubic_antialias"),
), prototype_set=OFFICIAL)

register_prototype(TaskPrototype(
    name="interleave_retrieval",
    description="global image (re-pooled) and interleaved-instruction embeddings (the authors' graph)",
    prompts=(PromptSpec("image", "image"), PromptSpec("interleave", "interleave", group_by="item")),
    queries=(QuerySpec("object", "object", outputs=("semantic", "pixel")),
             QuerySpec("image", "global", pooled_from="object"),
             QuerySpec("interleave", "global", per_group_of="interleave")),
    content=("q.object <- p.image", "q.image <- p.image", "q.interleave <- p.interleave"),
    conditional=("p.interleave <-> p.interleave", "q.interleave <-> q.interleave"),
    conditional_unindexed=("q.object <-> q.object", "q.image <-> q.image"),
    readout=ReadoutSpec("similarity", proposals="image", targets="interleave"),
), prototype_set=OFFICIAL)


# ------------------------------------------------------------------------------------------- layouts


@dataclass
class Layout:
    """A prototype laid out for actual prompt sizes: variable order, pool indices and masks.

    Tokens are the token prompts concatenated in declaration order (T rows); queries likewise (Q
    rows). ``content_tokens[i, j]``: query i may attend token j. ``content_image[i]``: query i may
    attend the image features (``mask_guided[i]``: restricted to its previous mask prediction).
    ``conditional[i, j]`` over the sequence [tokens, queries]: row i may attend column j.
    """

    prototype: TaskPrototype
    token_slices: dict[str, slice]
    query_slices: dict[str, slice]
    query_pool_index: Tensor  # (Q,) long
    content_tokens: Tensor  # (Q, T) bool
    content_image: Tensor  # (Q,) bool
    mask_guided: Tensor  # (Q,) bool
    conditional: Tensor  # (T+Q, T+Q) bool
    # token_content[i, j]: token i attends token j in content attention; token_content_rows[i]:
    # token i takes part in content attention at all (a row that then sees nothing gets the
    # empty-row result). All False in our own prototypes.
    token_content: Tensor | None = None  # (T, T) bool
    token_content_rows: Tensor | None = None  # (T,) bool

    @property
    def num_tokens(self) -> int:
        return self.content_tokens.shape[1]

    @property
    def num_queries(self) -> int:
        return self.content_tokens.shape[0]


def build_layout(prototype: TaskPrototype, token_groups: Mapping[str, Tensor], num_object: int,
                 num_global: int, device: torch.device | str = "cpu") -> Layout:
    """``token_groups[p]``: (G, N) bool membership of prompt p's N tokens in its G groups."""
    # Masks are built on the CPU (they are small) and moved to ``device`` at the end.
    token_groups = {name: groups.detach().cpu() for name, groups in token_groups.items()}
    missing = [p.name for p in prototype.token_prompts if p.name not in token_groups]
    if missing:
        raise ValueError(f"task {prototype.name!r}: no tokens for prompt(s) {', '.join(missing)}")

    token_slices: dict[str, slice] = {}
    start = 0
    for p in prototype.token_prompts:
        n = int(token_groups[p.name].shape[1])
        token_slices[p.name] = slice(start, start + n)
        start += n
    num_tokens = start

    query_slices: dict[str, slice] = {}
    pool: list[Tensor] = []
    start = 0
    for q in prototype.queries:
        first, size = (0, num_object) if q.init == "object" else (num_object, num_global)
        if q.per_group_of is not None:
            count = int(token_groups[q.per_group_of].shape[0])
            pool.append(torch.full((count,), first, dtype=torch.long))
        else:
            count = size
            pool.append(torch.arange(first, first + size))
        query_slices[q.name] = slice(start, start + count)
        start += count
    num_queries = start

    # Group membership (rows × groups) of each grouped variable, keyed by the prompt grouping it.
    def membership(kind: str, name: str) -> tuple[str | None, Tensor | None]:
        if kind == "p":
            groups = token_groups[name].to(torch.bool)
            spec = next(p for p in prototype.prompts if p.name == name)
            return spec.samples_of or name, groups.T
        spec = next(q for q in prototype.queries if q.name == name)
        if spec.per_group_of is None:
            return None, None
        groups = int(token_groups[spec.per_group_of].shape[0])
        return spec.per_group_of, torch.eye(groups, dtype=torch.bool)

    def block(dst: tuple[str, str], src: tuple[str, str], indexed: bool = True) -> Tensor:
        (dkey, dmem), (skey, smem) = membership(*dst), membership(*src)
        if indexed and dkey is not None and dkey == skey:
            return (dmem.float() @ smem.float().T) > 0  # indexed: share a group
        rows = dmem.shape[0] if dmem is not None else _size(dst)
        cols = smem.shape[0] if smem is not None else _size(src)
        return torch.ones(rows, cols, dtype=torch.bool)

    def _size(var: tuple[str, str]) -> int:
        s = token_slices[var[1]] if var[0] == "p" else query_slices[var[1]]
        return s.stop - s.start

    content_tokens = torch.zeros(num_queries, num_tokens, dtype=torch.bool)
    content_image = torch.zeros(num_queries, dtype=torch.bool)
    image = prototype.image_prompt
    for qname, pname in prototype.content_edges():
        rows = query_slices[qname]
        if image is not None and pname == image.name:
            content_image[rows] = True
        else:
            content_tokens[rows, token_slices[pname]] = block(("q", qname), ("p", pname))
    token_content = torch.zeros(num_tokens, num_tokens, dtype=torch.bool)
    token_content_rows = torch.zeros(num_tokens, dtype=torch.bool)
    for dname, sname in prototype.token_content_edges():
        token_content[token_slices[dname], token_slices[sname]] = block(("p", dname), ("p", sname))
        token_content_rows[token_slices[dname]] = True
    pixel_queries = torch.zeros(num_queries, dtype=torch.bool)
    for q in prototype.queries:
        if "pixel" in q.outputs:
            pixel_queries[query_slices[q.name]] = True

    seq = num_tokens + num_queries
    conditional = torch.zeros(seq, seq, dtype=torch.bool)

    def seq_slice(var: tuple[str, str]) -> slice:
        if var[0] == "p":
            return token_slices[var[1]]
        s = query_slices[var[1]]
        return slice(num_tokens + s.start, num_tokens + s.stop)

    for indexed in (True, False):
        for dst, src in prototype.conditional_edges(indexed):
            conditional[seq_slice(dst), seq_slice(src)] |= block(dst, src, indexed)

    return Layout(
        prototype=prototype,
        token_slices=token_slices,
        query_slices=query_slices,
        query_pool_index=torch.cat(pool).to(device) if pool else torch.zeros(0, dtype=torch.long, device=device),
        content_tokens=content_tokens.to(device),
        content_image=content_image.to(device),
        mask_guided=(content_image & pixel_queries).to(device),
        conditional=conditional.to(device),
        token_content=token_content.to(device),
        token_content_rows=token_content_rows.to(device),
    )
