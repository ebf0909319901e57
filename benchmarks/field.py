"""Speed of the find-field feature field on this machine: training, relevancy rendering, 3D queries.

    python benchmarks/field.py --json                      # one JSON object per line, one figure each
    python benchmarks/field.py --preset small --iterations 10

Runs in-process on a synthetic trajectory (``find-ros scenes trajectory``, 16 frames at 160x120 by
default, or ``--data``) with the FIND model ``--find-model`` (default: the packaged default model,
else the UNTRAINED placeholder — the figures are then about speed only, which does not depend on
the weights). Figures:

* ``teacher_s``: distilling the training images with FIND (crop pyramid, cold cache) and
  ``teacher_cached_s``: the same read back from the cache (what a second run pays);
* ``train_iterations_per_s``: real nerfstudio training iterations (ray sampling, teacher lookup,
  nerfacto + feature head forward and backward, optimizer steps, callbacks) after ``--warmup``;
* ``render_relevancy_s``: one relevancy image (``--render-side`` px long side) of a text query,
  what the viewer renders;
* ``cloud_s``: the surface point cloud of the query command (``--views`` views at ``--cloud-side``
  px), built once per checkpoint; ``query_text_s`` / ``query_crop_s``: answering one 3D query on it,
  per locate method — ``relevancy`` (embed the query with FIND, relevancy of every point, cluster,
  centre and box) and ``grounding`` (that, plus FIND grounding in each of the cloud's views and the
  vote of the best ones).

``--preset cpu`` is the method's own defaults on this machine (``ns-train find-field`` with no size
flags); ``--preset small`` the reduced sizes the tests use. ``--set pipeline.model.KEY=VALUE``
overrides any config value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SMALL = {
    "pipeline.model.log2_hashmap_size": 13, "pipeline.model.num_levels": 6, "pipeline.model.max_res": 128,
    "pipeline.model.num_proposal_samples_per_ray": (32, 16), "pipeline.model.num_nerf_samples_per_ray": 16,
    "pipeline.model.feature_log2_hashmap_size": 13, "pipeline.model.feature_num_levels": 6,
    "pipeline.model.feature_max_res": 64, "pipeline.datamanager.train_num_rays_per_batch": 128,
}


def emit(obj: dict, as_json: bool) -> None:
    # The machine is shared: the 1-minute load average says how much to trust a figure.
    obj = {**obj, "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(obj) if as_json else "  ".join(f"{k}={v}" for k, v in obj.items()), flush=True)


def set_path(config: Any, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        config = getattr(config, name)
    if not hasattr(config, leaf):
        raise SystemExit(f"--set {dotted}: no such config field")
    setattr(config, leaf, tuple(value) if isinstance(value, list) else value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="JSON lines")
    parser.add_argument("--data", type=Path, help="nerfstudio dataset (default: a synthetic trajectory)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="160x120", help="trajectory image size WxH")
    parser.add_argument("--find-model", type=Path)
    parser.add_argument("--preset", choices=("cpu", "small"), default="cpu")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--render-side", type=int, default=160)
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--cloud-side", type=int, default=96)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import yaml

    from nerfstudio.engine.callbacks import TrainingCallbackLocation

    from find_ros.fields.loading import LoadedRun
    from find_ros.fields.method import find_field_config
    from find_ros.fields.pipeline import distil
    from find_ros.fields.pyramid import crop_grids
    from find_ros.fields.cloud import render_cloud
    from find_ros.fields.locate import answer
    from find_ros.fields.query import LOCATE_METHODS, CloudSettings, LocateSettings, Query
    from find_ros.model import resolve_model_dir
    from find_ros.scenes import make_trajectory

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    find_model = resolve_model_dir(args.find_model)
    with tempfile.TemporaryDirectory(prefix="find-field-bench-") as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            w, h = (int(v) for v in args.size.split("x"))
            make_trajectory(tmp / "scene", args.frames, 3, size=(w, h), progress=False)
            data = tmp / "scene" / "nerfstudio"
        config = find_field_config()
        config.output_dir, config.vis, config.experiment_name = tmp / "outputs", "tensorboard", "bench"
        config.machine.device_type = device
        config.mixed_precision = device == "cuda"
        config.pipeline.datamanager.data = data
        config.pipeline.model.find_model = find_model
        config.pipeline.model.teacher_cache = tmp / "teacher-cache"  # cold: the teacher is timed
        overrides = dict(SMALL) if args.preset == "small" else {}
        overrides.update({k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)})
        for key, value in overrides.items():
            set_path(config, key, value)
        config.set_timestamp()
        context = {"device": device, "preset": args.preset, "threads": torch.get_num_threads(),
                   "find_model": str(find_model), "data": str(data)}

        start = time.perf_counter()
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()  # builds the pipeline: distils the training images (cold cache)
        setup_s = time.perf_counter() - start
        pipeline, model = trainer.pipeline, trainer.pipeline.model
        images = len(pipeline.datamanager.train_dataset)
        cameras = pipeline.datamanager.train_dataset.cameras
        height, width = int(cameras.height[0]), int(cameras.width[0])
        if model.config.teacher == "crops":
            per_image = {"crops_per_image": sum(g.count for g in crop_grids(height, width, model.config.crop_scales,
                                                                            model.config.crop_overlap))}
        else:
            per_image = {"find_passes_per_image": 1}
        emit({"figure": "teacher_s", "value": round(setup_s, 2), "unit": "s", "teacher": model.config.teacher,
              "images": images, **per_image, "note": "trainer setup including the cold teacher", **context}, args.json)
        start = time.perf_counter()
        distil(pipeline, progress=False)
        emit({"figure": "teacher_cached_s", "value": round(time.perf_counter() - start, 3), "unit": "s",
              "images": images, **context}, args.json)

        def step(i: int) -> None:
            for callback in trainer.callbacks:
                callback.run_callback_at_location(i, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
            trainer.train_iteration(i)
            for callback in trainer.callbacks:
                callback.run_callback_at_location(i, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)

        for i in range(args.warmup):
            step(i)
        start = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.iterations):
            step(i)
        elapsed = time.perf_counter() - start
        mc, dc = model.config, pipeline.datamanager.config
        emit({"figure": "train_iterations_per_s", "value": round(args.iterations / elapsed, 3), "unit": "it/s",
              "seconds_per_iteration": round(elapsed / args.iterations, 3), "iterations": args.iterations,
              "rays_per_batch": dc.train_num_rays_per_batch, "nerf_samples": mc.num_nerf_samples_per_ray,
              "proposal_samples": list(mc.num_proposal_samples_per_ray), **context}, args.json)

        pipeline.eval()
        model.set_query(model.embedder().texts(["the red cone"])[0], "the red cone")
        camera = cameras[0:1]
        camera.rescale_output_resolution(args.render_side / float(max(int(camera.width), int(camera.height))))
        warm = cameras[0:1]
        warm.rescale_output_resolution(16 / float(max(int(warm.width), int(warm.height))))
        model.get_outputs_for_camera(warm.to(model.device))  # warm-up: the first eval call sets kernels up
        start = time.perf_counter()
        outputs = model.get_outputs_for_camera(camera.to(model.device))
        emit({"figure": "render_relevancy_s", "value": round(time.perf_counter() - start, 3), "unit": "s",
              "size": f"{int(camera.width)}x{int(camera.height)}", "outputs": sorted(outputs), **context}, args.json)
        model.set_query(None)

        # Every ray gives a point: a benchmark-length training has no solid surfaces to threshold yet,
        # and the full cloud is the upper bound of what a query scores.
        settings = CloudSettings(views=args.views, max_side=args.cloud_side, min_accumulation=0.0)
        start = time.perf_counter()
        cloud = render_cloud(model, cameras, settings, progress=False)
        emit({"figure": "cloud_s", "value": round(time.perf_counter() - start, 3), "unit": "s",
              "views": settings.views, "max_side": settings.max_side, "points": int(cloud.points.shape[0]),
              "scales": int(cloud.scales.shape[0]), **context}, args.json)
        outputs_ns = pipeline.datamanager.train_dataparser_outputs
        outputs_ns.save_dataparser_transform(trainer.base_dir / "dataparser_transforms.json")
        run = LoadedRun(config, pipeline, args.warmup + args.iterations, Path("in-memory"), trainer.base_dir,
                        find_model)
        frame = pipeline.datamanager.train_dataset.get_numpy_image(0)[..., :3]
        for kind, query in (("text", Query("text", text="the red cone")),
                            ("crop", Query("crop", crops=[frame[: frame.shape[0] // 3, : frame.shape[1] // 3]]))):
            for method in LOCATE_METHODS:
                answer(run, query, cloud=cloud, settings=LocateSettings(method))  # loads nothing new, warms the code paths
                start = time.perf_counter()
                result = answer(run, query, cloud=cloud, settings=LocateSettings(method))
                emit({"figure": f"query_{kind}_s", "value": round(time.perf_counter() - start, 4), "unit": "s",
                      "method": method, "views_grounded": len(cloud.view_index) if method == "grounding" else 0,
                      "cloud_points": result["cloud_points"], **context}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
