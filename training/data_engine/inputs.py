"""Reading the engine's inputs: a COCO-panoptic dataset plus optional captions and descriptions.

Inputs per image, as in the paper's Table 1 (part 1):

* GT  -- ground-truth captions, from a COCO captions JSON (``--captions``; optional);
* PD  -- pseudo image descriptions (``--descriptions``; optional);
* Box -- every segment's box ``[x0, y0, w, h]`` (from ``segments_info``);
* SI  -- segment information: id, box, category, descriptions (from ``segments_info`` and
  ``--descriptions``).

The descriptions file is our own small format (COCO has none)::

    {"images": [{"image_id": 139,
                 "pseudo_description": "a living room with ..."        # or a list of strings
                 "segments": [{"id": 3226956, "descriptions": ["red", "wooden"]}]}]}

Segment descriptions may also sit directly in the panoptic JSON's ``segments_info`` entries under
``"descriptions"`` (a string or a list of strings), which is how an exporter can ship them.

Crowd segments (``iscrowd: 1``) are kept out of prompts and of the reference gallery: they are not
single entities, and FIND's own grounding mappers skip them too.

Every structural problem raises :class:`InputFormatError` naming the file, the record and the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import InputFormatError


@dataclass(frozen=True)
class Segment:
    """One panoptic segment of an image."""

    id: int
    category_id: int
    category: str
    isthing: bool
    bbox: tuple[float, float, float, float]  # x0, y0, w, h in pixels
    area: float
    iscrowd: bool = False
    descriptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageItem:
    """Everything the engine knows about one image."""

    image_id: int
    file_name: str  # the RGB image, relative to --images
    panoptic_file: str  # the panoptic PNG, relative to the panoptic directory
    height: int
    width: int
    image_info: dict[str, Any]  # the panoptic JSON's image record, copied to the output as is
    segments: tuple[Segment, ...]
    captions: tuple[str, ...] = ()
    pseudo_descriptions: tuple[str, ...] = ()

    @property
    def entity_segments(self) -> tuple[Segment, ...]:
        """Segments a caption may mention and that may serve as references (not crowd regions)."""
        return tuple(s for s in self.segments if not s.iscrowd)


@dataclass
class Dataset:
    """The loaded inputs, images in the panoptic JSON's order (which fixes the output's order)."""

    images: list[ImageItem]
    categories: dict[int, dict[str, Any]]
    image_dir: Path
    panoptic_dir: Path
    input_digest: str  # sha256 over the input files' bytes: binds a work directory to its inputs
    sources: dict[str, str] = field(default_factory=dict)


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise InputFormatError(path, "", f"{what} file not found")
    try:
        with path.open("rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InputFormatError(path, f"line {e.lineno} column {e.colno}", f"not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise InputFormatError(path, "", f"not UTF-8 text ({e.reason})") from None


def _require(cond: bool, path: Path, record: str, reason: str) -> None:
    if not cond:
        raise InputFormatError(path, record, reason)


def _int_field(obj: dict, key: str, path: Path, record: str, *, positive: bool = False) -> int:
    _require(key in obj, path, record, f"missing field '{key}'")
    v = obj[key]
    _require(isinstance(v, int) and not isinstance(v, bool), path, record, f"'{key}' must be an integer, got {v!r}")
    if positive:
        _require(v > 0, path, record, f"'{key}' must be > 0, got {v}")
    return v


def _str_field(obj: dict, key: str, path: Path, record: str) -> str:
    _require(key in obj, path, record, f"missing field '{key}'")
    v = obj[key]
    _require(isinstance(v, str) and v.strip() != "", path, record, f"'{key}' must be a non-empty string, got {v!r}")
    return v


def _list_field(obj: dict, key: str, path: Path, record: str) -> list:
    _require(key in obj, path, record, f"missing field '{key}'")
    v = obj[key]
    _require(isinstance(v, list), path, record, f"'{key}' must be a list, got {type(v).__name__}")
    return v


def _texts(value: Any, path: Path, record: str, key: str) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple of stripped non-empty strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    _require(
        isinstance(value, list) and all(isinstance(t, str) for t in value),
        path,
        record,
        f"'{key}' must be a string or a list of strings, got {value!r}",
    )
    return tuple(t.strip() for t in value if t.strip())


def _bbox(value: Any, path: Path, record: str) -> tuple[float, float, float, float]:
    ok = (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )
    _require(ok, path, record, f"'bbox' must be 4 finite numbers [x0, y0, w, h], got {value!r}")
    x, y, w, h = (float(v) for v in value)
    _require(w >= 0 and h >= 0, path, record, f"'bbox' width and height must be >= 0, got {value!r}")
    return x, y, w, h


def _categories(doc: dict, path: Path) -> dict[int, dict[str, Any]]:
    cats: dict[int, dict[str, Any]] = {}
    for i, c in enumerate(_list_field(doc, "categories", path, "top level")):
        rec = f"categories[{i}]"
        _require(isinstance(c, dict), path, rec, "must be an object")
        cid = _int_field(c, "id", path, rec)
        name = _str_field(c, "name", path, rec)
        _require(cid not in cats, path, rec, f"duplicate category id {cid}")
        cats[cid] = {"id": cid, "name": name, "isthing": bool(c.get("isthing", 1))}
    return cats


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_captions(path: str | Path, known_ids: set[int]) -> dict[int, tuple[str, ...]]:
    """COCO captions JSON → {image_id: captions}. Captions of images not in the dataset are ignored."""
    path = Path(path)
    doc = _read_json(path, "captions")
    _require(isinstance(doc, dict), path, "top level", "must be an object with an 'annotations' list")
    out: dict[int, list[str]] = {}
    for i, a in enumerate(_list_field(doc, "annotations", path, "top level")):
        rec = f"annotations[{i}]"
        _require(isinstance(a, dict), path, rec, "must be an object")
        image_id = _int_field(a, "image_id", path, rec)
        caption = _str_field(a, "caption", path, rec)
        if image_id in known_ids:
            out.setdefault(image_id, []).append(" ".join(caption.split()))
    return {k: tuple(v) for k, v in out.items()}


def load_descriptions(
    path: str | Path, segment_ids: dict[int, set[int]]
) -> tuple[dict[int, tuple[str, ...]], dict[tuple[int, int], tuple[str, ...]]]:
    """Descriptions JSON → (pseudo descriptions per image, descriptions per (image, segment))."""
    path = Path(path)
    doc = _read_json(path, "descriptions")
    _require(isinstance(doc, dict), path, "top level", "must be an object with an 'images' list")
    pseudo: dict[int, tuple[str, ...]] = {}
    seg_desc: dict[tuple[int, int], tuple[str, ...]] = {}
    for i, entry in enumerate(_list_field(doc, "images", path, "top level")):
        rec = f"images[{i}]"
        _require(isinstance(entry, dict), path, rec, "must be an object")
        image_id = _int_field(entry, "image_id", path, rec)
        _require(image_id in segment_ids, path, rec, f"image_id {image_id} is not in the panoptic dataset")
        pseudo[image_id] = _texts(entry.get("pseudo_description"), path, rec, "pseudo_description")
        for j, s in enumerate(entry.get("segments", []) or []):
            srec = f"{rec}.segments[{j}]"
            _require(isinstance(s, dict), path, srec, "must be an object")
            sid = _int_field(s, "id", path, srec)
            _require(
                sid in segment_ids[image_id], path, srec, f"segment id {sid} is not a segment of image {image_id}"
            )
            seg_desc[(image_id, sid)] = _texts(s.get("descriptions"), path, srec, "descriptions")
    return pseudo, seg_desc


def load_dataset(
    panoptic_json: str | Path,
    image_dir: str | Path,
    *,
    panoptic_dir: str | Path | None = None,
    captions_json: str | Path | None = None,
    descriptions_json: str | Path | None = None,
) -> Dataset:
    """Read and validate a COCO-panoptic dataset and its optional captions/descriptions.

    ``panoptic_dir`` holds the PNGs named by each annotation's ``file_name``; by default it is the JSON
    path without its suffix (COCO's ``annotations/panoptic_val2017.json`` + ``panoptic_val2017/``).
    """
    path = Path(panoptic_json)
    image_dir = Path(image_dir)
    pan_dir = Path(panoptic_dir) if panoptic_dir is not None else path.with_suffix("")
    if not image_dir.is_dir():
        raise InputFormatError(image_dir, "", "image directory not found (--images)")
    if not pan_dir.is_dir():
        raise InputFormatError(pan_dir, "", "panoptic PNG directory not found (give it with --panoptic-dir)")

    doc = _read_json(path, "COCO panoptic")
    _require(isinstance(doc, dict), path, "top level", "must be an object with images, annotations, categories")
    cats = _categories(doc, path)

    infos: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    for i, im in enumerate(_list_field(doc, "images", path, "top level")):
        rec = f"images[{i}]"
        _require(isinstance(im, dict), path, rec, "must be an object")
        iid = _int_field(im, "id", path, rec)
        _str_field(im, "file_name", path, rec)
        _int_field(im, "height", path, rec, positive=True)
        _int_field(im, "width", path, rec, positive=True)
        _require(iid not in infos, path, rec, f"duplicate image id {iid}")
        infos[iid] = im
        order.append(iid)

    anns: dict[int, tuple[str, tuple[Segment, ...]]] = {}
    for i, a in enumerate(_list_field(doc, "annotations", path, "top level")):
        rec = f"annotations[{i}]"
        _require(isinstance(a, dict), path, rec, "must be an object")
        iid = _int_field(a, "image_id", path, rec)
        rec = f"annotations[{i}] (image_id {iid})"
        _require(iid in infos, path, rec, f"image_id {iid} has no entry in 'images'")
        _require(iid not in anns, path, rec, f"second annotation for image_id {iid}")
        png = _str_field(a, "file_name", path, rec)
        segs: list[Segment] = []
        seen: set[int] = set()
        for j, s in enumerate(_list_field(a, "segments_info", path, rec)):
            srec = f"{rec}.segments_info[{j}]"
            _require(isinstance(s, dict), path, srec, "must be an object")
            sid = _int_field(s, "id", path, srec, positive=True)
            _require(sid < 256**3, path, srec, f"segment id {sid} does not fit a panoptic PNG (must be < 2^24)")
            _require(sid not in seen, path, srec, f"duplicate segment id {sid} in this image")
            seen.add(sid)
            cid = _int_field(s, "category_id", path, srec)
            _require(cid in cats, path, srec, f"category_id {cid} is not in 'categories'")
            _require("bbox" in s, path, srec, "missing field 'bbox'")
            bbox = _bbox(s["bbox"], path, srec)
            area = s.get("area", bbox[2] * bbox[3])
            _require(isinstance(area, (int, float)) and area >= 0, path, srec, f"'area' must be >= 0, got {area!r}")
            segs.append(
                Segment(
                    id=sid,
                    category_id=cid,
                    category=cats[cid]["name"],
                    isthing=cats[cid]["isthing"],
                    bbox=bbox,
                    area=float(area),
                    iscrowd=bool(s.get("iscrowd", 0)),
                    descriptions=_texts(s.get("descriptions"), path, srec, "descriptions"),
                )
            )
        anns[iid] = (png, tuple(segs))

    sources = {"panoptic": str(path)}
    digest_files = [path]
    captions: dict[int, tuple[str, ...]] = {}
    if captions_json is not None:
        captions = load_captions(captions_json, set(infos))
        sources["captions"] = str(captions_json)
        digest_files.append(Path(captions_json))
    pseudo: dict[int, tuple[str, ...]] = {}
    seg_desc: dict[tuple[int, int], tuple[str, ...]] = {}
    if descriptions_json is not None:
        seg_ids = {iid: {s.id for s in anns.get(iid, ("", ()))[1]} for iid in infos}
        pseudo, seg_desc = load_descriptions(descriptions_json, seg_ids)
        sources["descriptions"] = str(descriptions_json)
        digest_files.append(Path(descriptions_json))

    images: list[ImageItem] = []
    for iid in order:
        if iid not in anns:  # an image without panoptic annotation has nothing to link captions to
            continue
        png, segs = anns[iid]
        segs = tuple(replace(s, descriptions=s.descriptions + seg_desc.get((iid, s.id), ())) for s in segs)
        info = infos[iid]
        images.append(
            ImageItem(
                image_id=iid,
                file_name=info["file_name"],
                panoptic_file=png,
                height=info["height"],
                width=info["width"],
                image_info=info,
                segments=segs,
                captions=captions.get(iid, ()),
                pseudo_descriptions=pseudo.get(iid, ()),
            )
        )
    return Dataset(
        images=images,
        categories=cats,
        image_dir=image_dir,
        panoptic_dir=pan_dir,
        input_digest=_digest(digest_files),
        sources=sources,
    )
