"""Interleaved instructions: text whose entities may be pictures.

Grammar (the same for the CLI, the ROS topic and the model):

* ``<k>`` stands for visual entity ``k`` (an image crop, or a region of an earlier frame).
* ``[some words]`` marks a text entity explicitly: "[the mug] left of <0>" asks for two masks.
* Without any ``[...]`` the words of the instruction form one text entity, the referring expression
  ("the red mug left of <0>"), and each ``<k>`` inside it is an entity of its own as well.

The parser only checks and splits; the model turns the parts into embeddings. Every error names
what was wrong, so nodes can log it and publish it as a diagnostic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Longer instructions are refused before any tokenizer sees them; the language models truncate at a
# few hundred tokens anyway, and a robot instruction is a sentence or two.
MAX_INSTRUCTION_CHARS = 2000
MAX_VISUAL_ENTITIES = 16

_TOKEN = re.compile(r"<(\d+)>|\[([^\[\]<>]*)\]")
_STRAY = re.compile(r"[\[\]]|<\s*\d*\s*[^\d>\s]*\s*>")


class InstructionError(ValueError):
    """An instruction that cannot be used; the message says why."""


@dataclass(frozen=True)
class Entity:
    """One thing to find. ``visual_index`` is k for ``<k>``, None for a text entity."""

    label: str
    visual_index: int | None = None

    @property
    def is_visual(self) -> bool:
        return self.visual_index is not None


@dataclass(frozen=True)
class ParsedInstruction:
    """The plain sentence, the entities in reading order, and the sentence's pieces.

    ``pieces`` is the sentence as a sequence of text strings and visual indices, ready for the
    model's interleave sampler: ["the mug left of ", 0]. ``piece_entities`` says which entity each
    piece is (None for plain words; a plain piece may read the same as a bracketed one), and
    ``sentence_entity`` whether entity 0 is the whole sentence (an instruction without brackets).
    """

    text: str
    sentence: str
    entities: tuple[Entity, ...]
    pieces: tuple[str | int, ...] = field(default_factory=tuple)
    piece_entities: tuple[int | None, ...] = field(default_factory=tuple)
    sentence_entity: bool = False

    @property
    def visual_indices(self) -> tuple[int, ...]:
        return tuple(e.visual_index for e in self.entities if e.visual_index is not None)


def parse_instruction(text: str, num_visual: int) -> ParsedInstruction:
    """Split ``text`` into entities and check it against the ``num_visual`` entities supplied."""
    if not isinstance(text, str):
        raise InstructionError(f"instruction text must be a string, got {type(text).__name__}")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InstructionError(
            f"instruction is {len(text)} characters long; the limit is {MAX_INSTRUCTION_CHARS}"
        )
    if not text.strip():
        raise InstructionError("instruction text is empty")
    if num_visual > MAX_VISUAL_ENTITIES:
        raise InstructionError(
            f"{num_visual} visual entities given; at most {MAX_VISUAL_ENTITIES} are supported"
        )

    pieces: list[str | int] = []
    piece_entities: list[int | None] = []
    entities: list[Entity] = []
    explicit_text_entities = False
    cursor = 0
    for match in _TOKEN.finditer(text):
        between = text[cursor : match.start()]
        _check_no_stray_markup(between, text)
        if between:
            pieces.append(between)
            piece_entities.append(None)
        piece_entities.append(len(entities))
        if match.group(1) is not None:
            k = int(match.group(1))
            if k >= num_visual:
                raise InstructionError(
                    f"placeholder <{k}> has no visual entity: {num_visual} given "
                    f"(valid: {', '.join(f'<{i}>' for i in range(num_visual)) or 'none'})"
                )
            entities.append(Entity(label=f"<{k}>", visual_index=k))
            pieces.append(k)
        else:
            words = " ".join(match.group(2).split())
            if not words:
                raise InstructionError("empty text entity '[]' in instruction")
            explicit_text_entities = True
            entities.append(Entity(label=words))
            pieces.append(words)
        cursor = match.end()
    tail = text[cursor:]
    _check_no_stray_markup(tail, text)
    if tail:
        pieces.append(tail)
        piece_entities.append(None)

    referenced = {e.visual_index for e in entities if e.is_visual}
    unreferenced = sorted(set(range(num_visual)) - referenced)
    if unreferenced:
        raise InstructionError(
            "visual entities given but not referenced in the text: "
            + ", ".join(f"<{i}>" for i in unreferenced)
        )

    sentence = _sentence(pieces)
    sentence_entity = False
    if not explicit_text_entities and "".join(p for p in pieces if isinstance(p, str)).strip():
        # The whole referring expression is the first thing to find.
        entities.insert(0, Entity(label=" ".join(sentence.split())))
        piece_entities = [None if i is None else i + 1 for i in piece_entities]
        sentence_entity = True
    if not entities:
        raise InstructionError("instruction names nothing to find")
    return ParsedInstruction(
        text=text,
        sentence=sentence,
        entities=tuple(entities),
        pieces=tuple(pieces),
        piece_entities=tuple(piece_entities),
        sentence_entity=sentence_entity,
    )


def _sentence(pieces: list[str | int]) -> str:
    return "".join(p if isinstance(p, str) else f"<{p}>" for p in pieces).strip()


def _check_no_stray_markup(fragment: str, text: str) -> None:
    stray = _STRAY.search(fragment)
    if stray:
        raise InstructionError(
            f"malformed markup {stray.group(0)!r} in instruction {text[:80]!r}: "
            "use <k> for visual entity k and [words] for a text entity"
        )
