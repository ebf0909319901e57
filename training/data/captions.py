"""Image captions: COCO captions JSON and the Karpathy split file (``dataset_coco.json``).

COCO captions are read by the data engine's reader (:func:`training.data_engine.inputs.load_captions`).
The Karpathy file, which fixes the train/val/test split of image–text retrieval papers, looks like::

    {"images": [{"cocoid": 391895, "filename": "COCO_val2014_000000391895.jpg", "split": "test",
                 "sentences": [{"raw": "A man with a red helmet ...", "tokens": [...]}, ...]}, ...]}

``split`` is one of train, restval (used for training too), val, test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.data_engine.errors import InputFormatError
from training.data_engine.inputs import _read_json, load_captions

KARPATHY_SPLITS = ("train", "restval", "val", "test")

__all__ = ["KARPATHY_SPLITS", "KarpathyImage", "load_captions", "load_karpathy"]


@dataclass(frozen=True)
class KarpathyImage:
    image_id: int
    file_name: str
    split: str
    sentences: tuple[str, ...]


def load_karpathy(path: str | Path) -> dict[int, KarpathyImage]:
    """Karpathy split file → {COCO image id: entry}; raises :class:`InputFormatError` when malformed."""
    path = Path(path)
    doc = _read_json(path, "Karpathy split")
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise InputFormatError(path, "top level", "must be an object with an 'images' list")
    out: dict[int, KarpathyImage] = {}
    for i, im in enumerate(doc["images"]):
        rec = f"images[{i}]"
        if not isinstance(im, dict):
            raise InputFormatError(path, rec, "must be an object")
        # Karpathy's COCO file keys images by 'cocoid'; files for other datasets only have 'imgid'.
        iid = im.get("cocoid", im.get("imgid"))
        if not isinstance(iid, int) or isinstance(iid, bool):
            raise InputFormatError(path, rec, f"'cocoid' (or 'imgid') must be an integer, got {iid!r}")
        if iid in out:
            raise InputFormatError(path, rec, f"duplicate image id {iid}")
        split = im.get("split")
        if split not in KARPATHY_SPLITS:
            raise InputFormatError(path, rec, f"'split' must be one of {', '.join(KARPATHY_SPLITS)}, got {split!r}")
        name = im.get("filename")
        if not isinstance(name, str) or not name:
            raise InputFormatError(path, rec, "'filename' must be a non-empty string")
        sentences = im.get("sentences")
        if not isinstance(sentences, list):
            raise InputFormatError(path, rec, "'sentences' must be a list")
        texts = []
        for j, s in enumerate(sentences):
            raw = s.get("raw") if isinstance(s, dict) else None
            if not isinstance(raw, str) or not raw.strip():
                raise InputFormatError(path, f"{rec}.sentences[{j}]", "'raw' must be a non-empty string")
            texts.append(" ".join(raw.split()))
        out[iid] = KarpathyImage(iid, name, split, tuple(texts))
    return out
