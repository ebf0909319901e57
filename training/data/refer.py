"""RefCOCO / RefCOCO+ / RefCOCO-g referring expressions (the ``refer`` toolkit's ``refs(umd).p``).

Each ref names one COCO *instances* annotation and the sentences that single it out::

    {"ref_id": 0, "ann_id": 1719310, "image_id": 581857, "split": "train", "category_id": 1,
     "sentences": [{"sent": "the lady with the blue shirt", "raw": "...", "tokens": [...]}, ...]}

The file is a list of such records, as a pickle (as released) or as JSON (how most tools re-save it).
Pickles are read with an unpickler that refuses every class and function, so only plain containers,
strings and numbers load: a pickle cannot run code through this reader.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.data_engine.errors import InputFormatError, require_ints


@dataclass(frozen=True)
class Ref:
    ref_id: int
    ann_id: int
    image_id: int
    split: str
    sentences: tuple[str, ...]
    # Per sentence, what kind of expression it is, when the file says (the synthetic world's refs
    # carry their structured form): "attributes", "binary" ("left of", "behind"), "support" ("on
    # the table") or "superlative" ("leftmost"); None for a plain RefCOCO sentence.
    kinds: tuple[str | None, ...] = ()

    def kind(self, k: int) -> str | None:
        return self.kinds[k] if k < len(self.kinds) else None


def expression_kind(expression: Any) -> str | None:
    """The kind of a structured expression (``{"relation": ...}``): see :attr:`Ref.kinds`."""
    if not isinstance(expression, dict):
        return None
    from find_ros.scenes.referring import BINARY_RELATIONS, SUPERLATIVES, SUPPORT_RELATIONS

    relation = expression.get("relation")
    if relation is None:
        return "attributes"
    for kind, relations in (("binary", BINARY_RELATIONS), ("support", SUPPORT_RELATIONS), ("superlative", SUPERLATIVES)):
        if relation in relations:
            return kind
    return None


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: ANN401 - pickle's signature
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: refs files hold plain data only")


def _read(path: Path) -> Any:
    if not path.is_file():
        raise InputFormatError(path, "", "referring-expressions file not found")
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputFormatError(path, "", f"not valid JSON ({e})") from None
    try:
        # latin1 lets Python 2 byte strings (the released refs were pickled by Python 2) load as str.
        return _PlainUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as e:  # pickle raises many kinds of errors on damaged input
        raise InputFormatError(path, "", f"not a readable refs pickle ({type(e).__name__}: {e})") from None


def load_refs(path: str | Path, known_annotations: set[int] | None = None) -> list[Ref]:
    """Read and validate a refs file; ``known_annotations`` (instance ids) checks every ``ann_id``."""
    path = Path(path)
    doc = _read(path)
    if isinstance(doc, dict) and isinstance(doc.get("refs"), list):
        doc = doc["refs"]
    if not isinstance(doc, list):
        raise InputFormatError(path, "top level", "must be a list of ref records (or an object with a 'refs' list)")
    refs: list[Ref] = []
    seen: set[int] = set()
    for i, r in enumerate(doc):
        rec = f"refs[{i}]"
        if not isinstance(r, dict):
            raise InputFormatError(path, rec, "must be an object")
        require_ints(path, rec, r, ("ref_id", "ann_id", "image_id"))
        rec = f"refs[{i}] (ref_id {r['ref_id']})"
        if r["ref_id"] in seen:
            raise InputFormatError(path, rec, f"duplicate ref_id {r['ref_id']}")
        seen.add(r["ref_id"])
        if not isinstance(r.get("split"), str):
            raise InputFormatError(path, rec, "'split' must be a string")
        if known_annotations is not None and r["ann_id"] not in known_annotations:
            raise InputFormatError(path, rec, f"ann_id {r['ann_id']} is not an annotation of the instances file")
        sentences = r.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            raise InputFormatError(path, rec, "'sentences' must be a non-empty list")
        texts, kinds = [], []
        for j, s in enumerate(sentences):
            text = s.get("sent", s.get("raw")) if isinstance(s, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise InputFormatError(path, f"{rec}.sentences[{j}]", "'sent' (or 'raw') must be a non-empty string")
            texts.append(" ".join(text.split()))
            kinds.append(expression_kind(s.get("expression")))
        refs.append(Ref(r["ref_id"], r["ann_id"], r["image_id"], r["split"], tuple(texts), tuple(kinds)))
    return refs
