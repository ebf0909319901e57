"""Pre-train a small vision backbone on the synthetic world, to be frozen under FIND afterwards.

No pretrained vision weights can be installed here, and FIND keeps its vision model frozen, so the
default model's backbone is trained first, on its own, with dense supervision the synthetic world
provides exactly: per pixel the category (10 classes + void), the shape, colour, size, material
and texture of the thing under it, and whether it lies on a segment boundary (so that touching
instances stay separable). Shape has a target of its own on thing pixels only: in the category
loss the few thing pixels drown among floor and wall ones, and a backbone trained that way tells
the shapes apart badly (a linear probe of the first default model's backbone: 40 %).
A throw-away FPN head reads the four stages; only the backbone is kept,
saved with ``save_pretrained`` as a transformers FocalNet (the family of FIND-T's backbone), which
``FindConfig.vision_model`` then names and ``FindModel`` loads frozen.

    python -m training.pretrain_vision --data runs/data/synthetic --split train --out DIR \\
        [--embed-dim 32 --depths 1,1,2,1 --input-size 192 --steps 1200 --batch-size 16]

The backbone knows only the synthetic world: shapes, colours, rooms of this generator.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

ATTRIBUTES = {
    "color": ("red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black", "gray"),
    "size": ("small", "large"),
    "material": ("matte", "glossy", "metallic"),
    "texture": ("plain", "striped", "checkered"),
}
IGNORE = -100


class DenseHead(nn.Module):
    """FPN over the backbone's maps → stride-4 features → one 1×1 classifier per target."""

    def __init__(self, channels: tuple[int, ...], num_categories: int, num_shapes: int, dim: int = 64) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in channels)
        self.smooth = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(8, dim), nn.ReLU())
        outputs = {"category": num_categories + 1, "shape": num_shapes, **{k: len(v) for k, v in ATTRIBUTES.items()}, "boundary": 1}
        self.heads = nn.ModuleDict({k: nn.Conv2d(dim, n, 1) for k, n in outputs.items()})

    def forward(self, maps: list[Tensor]) -> dict[str, Tensor]:
        x = self.lateral[-1](maps[-1])
        for lateral, m in zip(reversed(self.lateral[:-1]), reversed(maps[:-1])):
            x = lateral(m) + F.interpolate(x, size=m.shape[-2:], mode="nearest")
        x = self.smooth(x)
        return {k: head(x) for k, head in self.heads.items()}


def backbone_features(encoder, pixels: Tensor) -> list[Tensor]:  # noqa: ANN001 - HFVisionEncoder
    # The very taps FindModel reads (HFVisionEncoder.forward), run without its inference_mode
    # wrapper so that gradients reach the backbone while it is being pre-trained.
    return type(encoder).forward.__wrapped__(encoder, pixels)


def instance_attributes(path: str | Path) -> dict[int, dict[str, str]]:
    """{annotation id: attributes} from a synthetic-world instances JSON (its ``attributes`` key)."""
    doc = json.loads(Path(path).read_text())
    return {a["id"]: a.get("attributes", {}) for a in doc["annotations"]}


def labels_for(ids: np.ndarray, sample, categories, attributes: dict[int, dict[str, str]]) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Per-pixel targets of one image from its panoptic id map."""
    lut_cat = {0: 0, **{s.id: categories.index[s.category_id] + 1 for s in sample.segments}}
    uniq, inverse = np.unique(ids, return_inverse=True)
    inverse = inverse.reshape(ids.shape)
    out = {"category": np.array([lut_cat.get(int(u), 0) for u in uniq], np.int64)[inverse]}
    things = [c for c, t in zip(categories.ids, categories.isthing) if t]
    lut_shape = {s.id: things.index(s.category_id) for s in sample.segments if s.category_id in things}
    out["shape"] = np.array([lut_shape.get(int(u), IGNORE) for u in uniq], np.int64)[inverse]
    for key, values in ATTRIBUTES.items():
        lut = [values.index(attributes[int(u)][key]) if int(u) in attributes and key in attributes[int(u)] else IGNORE
               for u in uniq]
        out[key] = np.array(lut, np.int64)[inverse]
    pad = np.pad(ids, 1, mode="edge")
    edge = np.zeros(ids.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= pad[dy : dy + ids.shape[0], dx : dx + ids.shape[1]] != ids
    out["boundary"] = edge.astype(np.float32)
    return out


def prepare(rgb: np.ndarray, labels: dict[str, np.ndarray], input_size: int, mean: Tensor, std: Tensor,
            flip: bool, crop: tuple[int, int, float, float] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Resize (long side ``input_size``) and normalise like ``FindModel.encode_image``; labels by
    nearest. ``crop`` (height, width, fy, fx): a window at relative offset (fy, fx) — training on
    crops costs less per image, and a convolutional backbone applies the same way to full views."""
    h, w = rgb.shape[:2]
    scale = input_size / max(h, w)
    rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255)
    x = F.interpolate(x[None], size=(rh, rw), mode="bilinear", align_corners=False, antialias=scale < 1)[0]
    x = (x.clamp(0, 1) - mean) / std
    ys = {}
    for k, v in labels.items():
        t = torch.from_numpy(v)[None, None].float()
        ys[k] = F.interpolate(t, size=(rh, rw), mode="nearest")[0, 0]
    if flip:
        x = x.flip(-1)
        ys = {k: v.flip(-1) for k, v in ys.items()}
    if crop is not None:
        ch, cw, fy, fx = crop
        y0, x0 = int(fy * max(0, rh - ch)), int(fx * max(0, rw - cw))
        x = x[:, y0 : y0 + ch, x0 : x0 + cw]
        ys = {k: v[y0 : y0 + ch, x0 : x0 + cw] for k, v in ys.items()}
    return x, ys


def collate(batch: list[tuple[Tensor, dict[str, Tensor]]], divisor: int = 32) -> tuple[Tensor, dict[str, Tensor]]:
    ph = -(-max(x.shape[1] for x, _ in batch) // divisor) * divisor
    pw = -(-max(x.shape[2] for x, _ in batch) // divisor) * divisor
    xs = torch.stack([F.pad(x, (0, pw - x.shape[2], 0, ph - x.shape[1])) for x, _ in batch])
    ys = {}
    for k in batch[0][1]:
        fill = 0.0 if k == "boundary" else float(IGNORE)
        ys[k] = torch.stack([F.pad(y[k], (0, pw - y[k].shape[1], 0, ph - y[k].shape[0]), value=fill) for _, y in batch])
        if k != "boundary":
            ys[k] = ys[k].long()
    return xs, ys


def dense_loss(out: dict[str, Tensor], ys: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    size = ys["category"].shape[-2:]
    total = out["category"].new_zeros(())
    logs = {}
    for k, logits in out.items():
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        if k == "boundary":
            loss = F.binary_cross_entropy_with_logits(logits[:, 0], ys[k], pos_weight=torch.tensor(4.0))
        elif bool((ys[k] != IGNORE).any()):
            loss = F.cross_entropy(logits, ys[k], ignore_index=IGNORE)
        else:
            continue
        total = total + loss
        logs[k] = float(loss.detach())
    return total, logs


def accuracy(out: dict[str, Tensor], ys: dict[str, Tensor]) -> dict[str, tuple[int, int]]:
    size = ys["category"].shape[-2:]
    res = {}
    for k in ("category", "shape", *ATTRIBUTES):
        pred = F.interpolate(out[k], size=size, mode="bilinear", align_corners=False).argmax(1)
        keep = ys[k] != IGNORE
        res[k] = (int((pred[keep] == ys[k][keep]).sum()), int(keep.sum()))
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pretrain_vision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="synthetic dataset directory (find-ros scenes make)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--val-split", default=None, help="split for a held-out pixel accuracy (optional)")
    parser.add_argument("--out", required=True, help="directory for the backbone (a transformers model directory)")
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--depths", default="1,1,2,1")
    parser.add_argument("--input-size", type=int, default=192)
    parser.add_argument("--crop", default=None, metavar="WxH", help="train on random crops of this size (multiples of 32)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    import transformers as tf
    from tqdm import tqdm

    from find_ros.model.encoders import VISION_FAMILIES, HFVisionEncoder
    from training.data.dataset import load_split
    from training.data.sources import discover

    torch.manual_seed(args.seed)
    data = load_split(discover(args.data, args.split))
    if data.source.instances_json is None:
        raise SystemExit("the dataset has no instances file with attributes (make it with find-ros scenes make)")
    attributes = instance_attributes(data.source.instances_json)
    depths = [int(d) for d in args.depths.split(",")]
    config = tf.FocalNetConfig(embed_dim=args.embed_dim, depths=depths, focal_levels=[2] * len(depths),
                               focal_windows=[3] * len(depths), image_size=args.input_size)
    backbone = tf.FocalNetModel(config)
    encoder = HFVisionEncoder(backbone, next(f for f in VISION_FAMILIES if f.name == "focalnet"))
    encoder.requires_grad_(True)
    encoder.model.train()
    head = DenseHead(encoder.channels, len(data.categories.ids), sum(data.categories.isthing))
    mean = torch.tensor(encoder.pixel_mean).view(3, 1, 1)
    std = torch.tensor(encoder.pixel_std).view(3, 1, 1)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    warmup = min(100, args.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, args.steps - warmup))))

    rng = np.random.default_rng(args.seed)

    crop_hw = None
    if args.crop:
        cw, ch = (int(v) for v in args.crop.lower().split("x"))
        crop_hw = (ch, cw)

    def example(index: int) -> tuple[Tensor, dict[str, Tensor]]:
        sample = data.samples[index]
        ids = data.panoptic_ids(sample)
        flip = bool(rng.random() < 0.5)
        crop = (*crop_hw, float(rng.random()), float(rng.random())) if crop_hw else None
        return prepare(data.image(sample), labels_for(ids, sample, data.categories, attributes), args.input_size,
                       mean, std, flip, crop)

    start = time.perf_counter()
    order = rng.permutation(len(data))
    cursor = 0
    bar = tqdm(range(args.steps), desc="pretrain vision", unit="step", file=sys.stderr)
    for step in bar:
        picks = []
        for _ in range(args.batch_size):
            if cursor == len(order):
                order, cursor = rng.permutation(len(data)), 0
            picks.append(int(order[cursor]))
            cursor += 1
        xs, ys = collate([example(i) for i in picks])
        loss, logs = dense_loss(head(backbone_features(encoder, xs)), ys)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", img_s=f"{(step + 1) * args.batch_size / (time.perf_counter() - start):.1f}")
    bar.close()
    seconds = time.perf_counter() - start

    report = {"steps": args.steps, "batch_size": args.batch_size, "seconds": round(seconds, 1),
              "embed_dim": args.embed_dim, "depths": depths, "input_size": args.input_size, "crop": args.crop,
              "parameters": sum(p.numel() for p in backbone.parameters())}
    if args.val_split:
        val = load_split(discover(args.data, args.val_split))
        val_attr = instance_attributes(val.source.instances_json)
        encoder.model.eval()
        totals: dict[str, list[int]] = {}
        with torch.no_grad():
            for i in range(0, min(len(val), 200), 16):
                batch = []
                for s in val.samples[i : i + 16]:
                    lab = labels_for(val.panoptic_ids(s), s, val.categories, val_attr)
                    batch.append(prepare(val.image(s), lab, args.input_size, mean, std, False))
                xs, ys = collate(batch)
                for k, (c, n) in accuracy(head(backbone_features(encoder, xs)), ys).items():
                    totals.setdefault(k, [0, 0])
                    totals[k][0] += c
                    totals[k][1] += n
        report["val_pixel_accuracy"] = {k: round(c / max(n, 1), 4) for k, (c, n) in totals.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backbone.save_pretrained(out)
    (out / "pretraining.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
