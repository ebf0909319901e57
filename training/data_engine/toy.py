"""A tiny, deterministic COCO-panoptic dataset (coloured shapes on sky and grass).

For the engine's tests, benchmark and a quick try-out without COCO. Each image has two stuff
segments (sky, grass) and one to four things (person, car, dog, ball) drawn as filled rectangles or
ellipses in a named colour; the colour name is the thing's segment description. It writes the
panoptic JSON + PNGs, the RGB images, a COCO captions JSON and a descriptions JSON: every input the
engine reads. The synthetic world (``find_ros.scenes``) produces the same formats at scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from find_ros.image_io import write_rgb

from .panoptic import id_to_rgb

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1, "supercategory": "person"},
    {"id": 3, "name": "car", "isthing": 1, "supercategory": "vehicle"},
    {"id": 18, "name": "dog", "isthing": 1, "supercategory": "animal"},
    {"id": 37, "name": "sports ball", "isthing": 1, "supercategory": "sports"},
    {"id": 187, "name": "sky-other-merged", "isthing": 0, "supercategory": "sky"},
    {"id": 193, "name": "grass-merged", "isthing": 0, "supercategory": "plant"},
]
COLOURS = {
    "red": (200, 30, 30),
    "green": (40, 170, 60),
    "blue": (30, 60, 200),
    "yellow": (230, 210, 40),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}
_THINGS = [c for c in CATEGORIES if c["isthing"]]


@dataclass(frozen=True)
class ToyDataset:
    root: Path
    panoptic_json: Path
    panoptic_dir: Path
    images_dir: Path
    captions_json: Path
    descriptions_json: Path


def _shape_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    bw, bh = int(rng.integers(max(3, w // 8), max(4, w // 3))), int(rng.integers(max(3, h // 8), max(4, h // 3)))
    x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(h // 4, h - bh))
    yy, xx = np.mgrid[0:h, 0:w]
    if rng.random() < 0.5:
        return (xx >= x0) & (xx < x0 + bw) & (yy >= y0) & (yy < y0 + bh)
    cx, cy = x0 + bw / 2, y0 + bh / 2
    return ((xx + 0.5 - cx) / (bw / 2)) ** 2 + ((yy + 0.5 - cy) / (bh / 2)) ** 2 <= 1


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def write_toy_dataset(
    root: str | Path, n_images: int = 6, *, width: int = 64, height: int = 48, seed: int = 0
) -> ToyDataset:
    """Write ``n_images`` images and their annotations under ``root``; same seed, same bytes."""
    root = Path(root)
    images_dir, pan_dir = root / "images", root / "annotations" / "panoptic"
    rng = np.random.default_rng(seed)
    images, annotations, captions, descriptions = [], [], [], []
    used_ids: set[int] = set()

    def new_id() -> int:
        while True:
            sid = int(rng.integers(1, 256**3))
            if sid not in used_ids:
                used_ids.add(sid)
                return sid

    for n in range(n_images):
        image_id = 1000 + n
        ids = np.zeros((height, width), np.int64)
        rgb = np.zeros((height, width, 3), np.float64)
        horizon = int(height * rng.uniform(0.35, 0.6))
        sky_id, grass_id = new_id(), new_id()
        ids[:horizon], ids[horizon:] = sky_id, grass_id
        shade = np.linspace(0.85, 1.0, height)[:, None, None]
        rgb[:horizon] = np.array([120, 170, 235]) * shade[:horizon]
        rgb[horizon:] = np.array([60, 150, 50]) * shade[horizon:]
        segs = [(sky_id, 187, None), (grass_id, 193, None)]
        for _ in range(int(rng.integers(1, 5))):
            cat = _THINGS[int(rng.integers(len(_THINGS)))]
            colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
            mask = _shape_mask(height, width, rng)
            sid = new_id()
            ids[mask] = sid
            rgb[mask] = COLOURS[colour]
            segs.append((sid, cat["id"], colour))
        rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
        infos, seg_desc, names = [], [], []
        for sid, cid, colour in segs:
            mask = ids == sid
            if mask.sum() < 4:  # hidden behind later shapes: not a segment any more
                ids[mask] = grass_id if cid != 187 else sky_id
                continue
            infos.append({"id": sid, "category_id": cid, "iscrowd": 0, "bbox": _bbox(mask), "area": int(mask.sum())})
            if colour:
                seg_desc.append({"id": sid, "descriptions": [colour]})
                names.append(f"{colour} {next(c['name'] for c in CATEGORIES if c['id'] == cid)}")
        for info in infos:  # areas/boxes again: a dropped segment's pixels went to sky or grass
            mask = ids == info["id"]
            info["bbox"], info["area"] = _bbox(mask), int(mask.sum())
        file_stem = f"{image_id:012d}"
        write_rgb(images_dir / f"{file_stem}.jpg", rgb)
        write_rgb(pan_dir / f"{file_stem}.png", id_to_rgb(ids))
        images.append({"id": image_id, "file_name": f"{file_stem}.jpg", "height": height, "width": width})
        annotations.append({"image_id": image_id, "file_name": f"{file_stem}.png", "segments_info": infos})
        things = " and ".join(f"a {t}" for t in names) or "nothing"
        caption = f"A picture of {things} on grass under the sky."
        captions.append({"id": image_id, "image_id": image_id, "caption": caption})
        descriptions.append({
            "image_id": image_id,
            "pseudo_description": f"An outdoor scene with {len(names)} object(s) on a green lawn below a blue sky.",
            "segments": seg_desc,
        })

    panoptic_json = root / "annotations" / "panoptic.json"
    captions_json = root / "annotations" / "captions.json"
    descriptions_json = root / "annotations" / "descriptions.json"
    panoptic_json.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    captions_json.write_text(json.dumps({"images": images, "annotations": captions}))
    descriptions_json.write_text(json.dumps({"images": descriptions}))
    return ToyDataset(root, panoptic_json, pan_dir, images_dir, captions_json, descriptions_json)
