"""Accuracy of find-field 3D queries against the synthetic world's 3D ground truth.

    python benchmarks/field_accuracy.py --json                  # default model, default budget
    python benchmarks/field_accuracy.py --iterations 800 --frames 30 --work runs/field_accuracy

1. renders a trajectory (``find-ros scenes trajectory``: one room, 5-8 objects on furniture);
2. trains ``ns-train find-field`` on it for ``--iterations`` steps (the real command, in a
   subprocess, with ``OMP_NUM_THREADS=--threads``; camera optimisation off: the poses are exact),
   timing wall clock and CPU time (teacher + training);
3. loads the checkpoint back and asks, for every object, a **text** query (its first referring
   expression from ground_truth.json, e.g. "the red cone") and a **crop** query (the object cut from
   the frame that shows most of it, located by that frame's instance mask, with context around it);
4. locates each query both ways (``--locate``): by the field's relevancy, and by FIND's grounding
   in the rendered views lifted into the cloud (find_ros.fields.grounded);
5. reports per object and method the returned centre's distance to the true centre, whether it
   lies within 10% of the scene extent, and which object's true centre is nearest to it.

The scene extent is the diagonal of the box around all objects (``extent.objects`` of
ground_truth.json; the room's, ``extent.room``, is reported too, but 10% of it is larger than the
spacing of the objects, so it cannot tell them apart). The geometry is checked on its own as well:
median error of rendered depth against the ground-truth depth images.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train(args: argparse.Namespace, scene: Path, find_model: Path) -> tuple[Path, dict[str, Any]]:
    run_dir = args.work / "outputs" / "accuracy" / "find-field" / "run"
    if args.reuse_run and (run_dir / "config.yml").is_file():
        return run_dir / "config.yml", {"reused": True}
    command = [str(BIN / "ns-train"), "find-field", "--output-dir", str(args.work / "outputs"),
               "--experiment-name", "accuracy", "--timestamp", "run", "--max-num-iterations", str(args.iterations),
               "--steps-per-save", str(args.iterations), "--vis", "tensorboard",
               # No evaluation renders during training: the budget is spent on training.
               "--steps-per-eval-image", str(args.iterations + 1), "--steps-per-eval-batch", str(args.iterations + 1),
               "--steps-per-eval-all-images", str(args.iterations + 1),
               "--pipeline.model.find-model", str(find_model), "--pipeline.model.camera-optimizer.mode", "off",
               *args.ns_arg, "nerfstudio-data", "--data", str(scene / "nerfstudio")]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    cpu0, wall0 = _cpu_children(), time.perf_counter()
    log = args.work / "train.log"
    with log.open("w") as handle:
        done = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"ns-train failed ({done.returncode}); see {log}")
    return run_dir / "config.yml", {"wall_min": round((time.perf_counter() - wall0) / 60, 2),
                                    "cpu_min": round((_cpu_children() - cpu0) / 60, 2), "threads": args.threads,
                                    "iterations": args.iterations, "command": " ".join(command), "log": str(log)}


def object_crop(scene: Path, gt: dict, obj: dict, min_fraction: float, rank: int = 0) -> tuple[np.ndarray, dict]:
    """The object cut from the frame that shows most of it (``rank`` 1: the runner-up frame),
    located by that frame's instance mask, with context: at least 1.5x its box and at least the
    teacher's smallest crop."""
    from find_ros.image_io import crop_around, read_rgb
    from find_ros.model.results import mask_box
    from find_ros.scenes.files import read_png16

    views = [(view["area"], frame["index"], frame) for frame in gt["frames"] for view in frame["visible"]
             if view["id"] == obj["id"] and view.get("visible_fraction", 1.0) >= 0.9]
    if len(views) <= rank:
        raise ValueError(f"object {obj['id']} is fully visible in fewer than {rank + 1} frames")
    frame = sorted(views, key=lambda v: (-v[0], v[1]))[rank][2]
    name = Path(frame["image"]).name
    rgb = read_rgb(scene / "nerfstudio" / "images" / name)
    h, w = rgb.shape[:2]
    box = mask_box(read_png16(scene / "nerfstudio" / "instances" / name) == obj["id"])
    crop = crop_around(rgb, box, 1.5, int(min_fraction * min(h, w)))
    return crop, {"frame": name, "box": box}


def find_2d_check(embedder: Any, scene: Path, gt: dict, min_fraction: float) -> dict[str, float]:
    """Can FIND itself tell this scene's objects apart, in 2D? Top-1 accuracy, among the scene's
    objects, of each object's text query against the objects' crops, and of its crop from one
    frame against the crops from another: an upper bound of what the distilled field can do."""
    texts = embedder.texts([o["expressions"][0] for o in gt["objects"]])
    crops = [embedder.crop(object_crop(scene, gt, o, min_fraction)[0])[0] for o in gt["objects"]]
    others = []
    for o, first in zip(gt["objects"], crops):
        try:
            others.append(embedder.crop(object_crop(scene, gt, o, min_fraction, rank=1)[0])[0])
        except ValueError:  # seen fully in one frame only
            others.append(first)
    crops_t, others_t = np.stack([c.numpy() for c in crops]), np.stack([c.numpy() for c in others])
    n = len(crops)
    return {"text_to_crop_top1": round(float(np.mean((texts.numpy() @ crops_t.T).argmax(1) == np.arange(n))), 3),
            "crop_to_crop_top1": round(float(np.mean((others_t @ crops_t.T).argmax(1) == np.arange(n))), 3)}


def depth_error(run: Any, scene: Path, views: int, side: int) -> dict[str, float]:
    """Median |rendered z-depth - true z-depth| (world units) over a few training views."""
    import cv2
    import torch

    from find_ros.scenes.files import read_png16

    dataset = run.pipeline.datamanager.train_dataset
    transform = run.world_from_nerfstudio()
    scale = 1.0 if transform is None else float(np.cbrt(abs(np.linalg.det(transform[:3, :3]))))
    errors = []
    for index in np.linspace(0, len(dataset) - 1, min(views, len(dataset))).round().astype(int):
        camera = dataset.cameras[int(index) : int(index) + 1]
        camera.rescale_output_resolution(side / float(max(int(camera.width), int(camera.height))))
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
        with torch.no_grad():
            out = run.model.get_outputs_for_camera_ray_bundle(bundle)
        forward = -camera.camera_to_worlds[0, :3, 2]  # OpenGL camera looks down -z
        z = (out["depth"][..., 0] * (bundle.directions @ forward)).numpy() * scale
        name = Path(dataset._dataparser_outputs.image_filenames[int(index)]).name
        truth = read_png16(scene / "nerfstudio" / "depth" / name).astype(np.float64) / 1000.0
        truth = cv2.resize(truth, (z.shape[1], z.shape[0]), interpolation=cv2.INTER_NEAREST)
        valid = truth > 0
        errors.append(np.abs(z[valid] - truth[valid]))
    all_errors = np.concatenate(errors)
    return {"median_m": round(float(np.median(all_errors)), 4), "p90_m": round(float(np.quantile(all_errors, 0.9)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "field_accuracy")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--path", choices=("walk", "orbit"), default="walk")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--find-model", type=Path, help="default: the packaged default model (required)")
    parser.add_argument("--allow-untrained", action="store_true", help="run the plumbing with an untrained model")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of training and queries")
    parser.add_argument("--views", type=int, default=24, help="views of the query point cloud")
    parser.add_argument("--cloud-side", type=int, default=96)
    parser.add_argument("--top-fraction", type=float, default=0.005)
    parser.add_argument("--locate", choices=("grounding", "relevancy", "both"), default="both",
                        help="how queries are located (find_ros.fields.locate.answer); both: each is reported")
    parser.add_argument("--ns-arg", action="append", default=[], help="extra ns-train argument (repeatable)")
    parser.add_argument("--reuse-run", action="store_true", help="evaluate an existing run in --work")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.ns_arg = [a for item in args.ns_arg for a in item.split()]

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from find_ros.fields.loading import load_run
    from find_ros.fields.cloud import cloud_for_run
    from find_ros.fields.locate import answer
    from find_ros.fields.query import CloudSettings, LocateSettings, Query
    from find_ros.model import FindConfig, default_model_dir
    from find_ros.scenes import make_trajectory

    find_model = args.find_model or default_model_dir()
    if find_model is None:
        raise SystemExit("no trained default model (find_ros/default_model/ or $FIND_ROS_MODEL): pass --find-model")
    trained = FindConfig.load(Path(find_model) / "config.json").trained
    if not trained and not args.allow_untrained:
        raise SystemExit(f"{find_model} is UNTRAINED: its answers are noise (--allow-untrained to run anyway)")

    args.work.mkdir(parents=True, exist_ok=True)
    scene = args.work / "scene"
    if not (scene / "ground_truth.json").is_file():
        w, h = (int(v) for v in args.size.split("x"))
        make_trajectory(scene, args.frames, args.seed, size=(w, h), path=args.path, progress=not args.json)
    gt = json.loads((scene / "ground_truth.json").read_text())
    config_path, training = train(args, scene, Path(find_model))

    start = time.perf_counter()
    run = load_run(config_path, find_model=find_model)
    cloud, _ = cloud_for_run(run, CloudSettings(views=args.views, max_side=args.cloud_side), progress=not args.json)
    cloud_s = time.perf_counter() - start
    geometry = depth_error(run, scene, 4, args.cloud_side)
    check_2d = find_2d_check(run.model.embedder(), scene, gt, float(min(run.model.config.crop_scales)))

    extent = gt["extent"]["objects"]["diagonal"]
    room = gt["extent"]["room"]["diagonal"]
    centres = {o["id"]: np.array(o["center"]) for o in gt["objects"]}
    min_fraction = float(min(run.model.config.crop_scales))
    methods = ("grounding", "relevancy") if args.locate == "both" else (args.locate,)
    objects = []
    for obj in gt["objects"]:
        crop, where = object_crop(scene, gt, obj, min_fraction)
        entry: dict[str, Any] = {"id": obj["id"], "name": obj["name"], "true_center": obj["center"]}
        for method in methods:
            for kind, query in (("text", Query("text", text=obj["expressions"][0])), ("crop", Query("crop", crops=[crop]))):
                t0 = time.perf_counter()
                result = answer(run, query, cloud=cloud, settings=LocateSettings(method, args.top_fraction))
                centre = np.array(result["center"])
                distance = float(np.linalg.norm(centre - centres[obj["id"]]))
                nearest = min(centres, key=lambda i: float(np.linalg.norm(centre - centres[i])))
                entry[f"{method}.{kind}"] = {
                    "query": obj["expressions"][0] if kind == "text" else where, "center": result["center"],
                    "distance": round(distance, 4), "within_10pct": distance <= 0.1 * extent,
                    "within_10pct_of_room": distance <= 0.1 * room, "nearest_object": nearest,
                    "score": result["score"], "ms": round((time.perf_counter() - t0) * 1000, 1)}
        objects.append(entry)
    n = len(objects)
    share = lambda key, test: round(sum(bool(test(o[key])) for o in objects) / n, 3)  # noqa: E731
    summary = {f"{m}.{k}": {"within_10pct_of_objects": share(f"{m}.{k}", lambda r: r["within_10pct"]),
                            "within_10pct_of_room": share(f"{m}.{k}", lambda r: r["within_10pct_of_room"]),
                            "right_object": round(sum(o[f"{m}.{k}"]["nearest_object"] == o["id"] for o in objects) / n, 3),
                            "median_distance_m": round(float(np.median([o[f"{m}.{k}"]["distance"] for o in objects])), 4)}
               for m in methods for k in ("text", "crop")}
    report = {
        "figure": "field_accuracy", "find_model": str(find_model), "find_model_trained": trained,
        "frame": "world", "scene": {"frames": gt["frame_count"], "size": args.size, "seed": args.seed,
                                    "objects": n, "extent_objects_diagonal": extent, "extent_room_diagonal": room,
                                    "threshold_objects": round(0.1 * extent, 4), "threshold_room": round(0.1 * room, 4)},
        "training": training, "cloud_s": round(cloud_s, 1), "depth_error": geometry, "find_2d": check_2d,
        "summary": summary, "objects": objects,
    }
    (args.work / "accuracy.json").write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report))
    else:
        for o in objects:
            cells = "  ".join(f"{key} {o[key]['distance']:.3f} m" for key in o if "." in key)
            print(f"{o['id']:>2} {o['name']:<45} {cells}")
        for key, figures in summary.items():
            print(f"{key:<16} within 10% of the objects' extent ({0.1 * extent:.3f} m): "
                  f"{figures['within_10pct_of_objects']:.0%}; of the room's ({0.1 * room:.3f} m): "
                  f"{figures['within_10pct_of_room']:.0%}; median {figures['median_distance_m']} m")
        print(f"depth error median {geometry['median_m']} m; FIND in 2D: {check_2d}; training: {training}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
