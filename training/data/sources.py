"""Where a split's files are: one :class:`DataSource` per split, from the YAML config or discovered
in a dataset directory laid out as COCO / FIND-Bench / the synthetic world write it::

    DIR/annotations/panoptic_<split>.json  + DIR/panoptic_<split>/   (or annotations/panoptic_<split>/)
    DIR/<split>/                           images
    DIR/annotations/instances_<split>.json
    DIR/annotations/captions_<split>.json
    DIR/annotations/refs_<split>.json      (or refs(umd).p / refs(google).p / refs.json, RefCOCO-g)
    DIR/annotations/entity_<split>.json    FIND-Bench
    DIR/annotations/dataset_coco.json      Karpathy splits (optional)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DataSource:
    """Files of one split; None = not available. Paths are absolute after :meth:`resolve`."""

    images: str
    panoptic_json: str | None = None
    panoptic_dir: str | None = None
    instances_json: str | None = None
    captions_json: str | None = None
    karpathy_json: str | None = None
    karpathy_splits: tuple[str, ...] = ("train", "restval")
    refs: str | None = None
    refs_splits: tuple[str, ...] | None = None  # None: every ref of the file
    find_bench: str | None = None
    find_bench_strict: bool = False  # True only for files this project's tools wrote
    name: str = "data"

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: str | Path, name: str) -> DataSource:
        """Explicit files (keys as the fields), or ``{dataset: DIR, split: NAME}`` to :func:`discover`
        them (plus any field to override, e.g. ``find_bench_strict``)."""
        if "dataset" in data:
            data = dict(data)
            directory = Path(data.pop("dataset"))
            split = data.pop("split", None)
            found = discover(directory if directory.is_absolute() else Path(root) / directory, split)
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise ValueError(f"data source {name!r}: unknown keys {', '.join(unknown)}")
            values = {f.name: getattr(found, f.name) for f in fields(cls)}
            values.update({k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
            values["name"] = name
            return cls(**values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"data source {name!r}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if "images" not in data:
            raise ValueError(f"data source {name!r}: 'images' (the image directory) is required")
        values = dict(data)
        for key in ("karpathy_splits", "refs_splits"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(name=name, **{k: v for k, v in values.items() if k != "name"}).resolve(root)

    def resolve(self, root: str | Path) -> DataSource:
        root = Path(root)
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("images", "panoptic_json", "panoptic_dir", "instances_json", "captions_json",
                          "karpathy_json", "refs", "find_bench") and v is not None:
                v = str(Path(v) if Path(v).is_absolute() else root / v)
            values[f.name] = v
        return DataSource(**values)


def _first(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def discover(directory: str | Path, split: str | None = None) -> DataSource:
    """The split's files in ``directory`` (see the module docstring). ``split`` None: the only split
    present, or ``val`` when there are several."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"dataset directory not found: {directory}")
    ann = directory / "annotations"
    manifest = directory / "dataset.json"
    if split is None:
        found = sorted({p.stem[len("panoptic_"):] for p in ann.glob("panoptic_*.json")} |
                       {p.stem[len("entity_"):] for p in ann.glob("entity_*.json") if not p.stem.endswith("_long")} |
                       {p.stem[len("captions_"):] for p in ann.glob("captions_*.json")})
        if len(found) == 1:
            split = found[0]
        elif "val" in found:
            split = "val"
        else:
            raise ValueError(f"{directory}: several splits ({', '.join(found) or 'none found'}); name one with --split")
    images = _first([directory / split, directory / "images" / split])
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text())["splits"][split]
            images = directory / info["image_dir"]
        except (KeyError, TypeError, json.JSONDecodeError):
            pass
    if images is None:
        raise FileNotFoundError(f"{directory}: no image directory for split {split!r} (looked for {split}/ and images/{split}/)")
    pan_json = _first([ann / f"panoptic_{split}.json"])
    pan_dir = _first([directory / f"panoptic_{split}", ann / f"panoptic_{split}"])
    refs = _first([ann / f"refs_{split}.json", directory / "refs(umd).p", directory / "refs(google).p",
                   directory / "refs.json", ann / "refs(umd).p"])
    src = DataSource(
        name=split,
        images=str(images),
        panoptic_json=str(pan_json) if pan_json else None,
        panoptic_dir=str(pan_dir) if pan_json and pan_dir else None,
        instances_json=str(p) if (p := _first([ann / f"instances_{split}.json"])) else None,
        captions_json=str(p) if (p := _first([ann / f"captions_{split}.json"])) else None,
        karpathy_json=str(p) if (p := _first([ann / "dataset_coco.json"])) else None,
        karpathy_splits=("test",) if split.startswith("val") or split == "test" else ("train", "restval"),
        refs=str(refs) if refs else None,
        # A refs file named after the split holds that split; a RefCOCO-g file holds all of them.
        refs_splits=None if refs is None or refs.name.startswith("refs_") else (("val",) if split.startswith("val") else (split,)),
        find_bench=str(p) if (p := _first([ann / f"entity_{split}.json"])) else None,
    )
    return src
