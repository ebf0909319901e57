"""`ns-train find-field` for real (CPU, a few iterations, tiny FIND model, tiny synthetic scene):
the method is registered, training distils the images once and caches the teacher, a second run
reuses the cache, the checkpoint loads back weights-only into a pipeline that renders relevancy,
and `find-ros field query` answers text, crop and interleaved queries with a PLY open3d reads."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from field_settings import BIN, ITERATIONS, Run

TEACHER_LINE = re.compile(r"FIND teacher: (\d+) images, (\d+) from cache, (\d+) computed")


def teacher_counts(output: str) -> tuple[int, int, int]:
    found = TEACHER_LINE.findall(output)
    assert len(found) == 1, output[-3000:]
    return tuple(int(v) for v in found[0])  # type: ignore[return-value]


def test_ns_train_lists_the_method(field_env: dict[str, str]) -> None:
    done = subprocess.run([str(BIN / "ns-train"), "find-field", "--help"], env=field_env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "FIND feature field" in done.stdout
    assert "--pipeline.model.find-model" in done.stdout


def test_training_distils_once_and_saves_a_weights_only_checkpoint(first_run: Run, tiny_find: Path) -> None:
    from find_ros.fields.loading import latest_checkpoint
    from find_ros.fields.teacher import model_fingerprint

    images, reused, computed = teacher_counts(first_run.output)
    assert images >= 5 and reused == 0 and computed == images
    assert "UNTRAINED" in first_run.output  # the tiny model is labelled for what it is
    path, step = latest_checkpoint(first_run.config.parent / "nerfstudio_models")
    assert step == ITERATIONS - 1
    state = torch.load(path, map_location="cpu", weights_only=True)  # also torch's default
    pipeline = state["pipeline"]
    assert bytes(pipeline["_model.teacher_fingerprint"].tolist()).hex() == model_fingerprint(tiny_find)
    assert pipeline["_model.feature_field.mlp.layers.1.weight"].shape[0] == 32  # the tiny model's embed_dim
    hash_features = pipeline["_model.feature_field.encoding.hash_table"].shape[-1] * 6  # 6 levels (field_settings)
    assert pipeline["_model.feature_field.mlp.layers.0.weight"].shape[1] == hash_features + 1  # + log crop scale
    low, high = pipeline["_model.log_scale_range"].tolist()
    assert bool(pipeline["_model.scale_range_set"]) and low < high
    assert "feature_field" in state["optimizers"]

    losses = train_losses(first_run)
    assert losses["find_loss"] and all(0.0 <= v <= 2.0 for v in losses["find_loss"])
    # The synthetic scene lists depth images: geometry is supervised by them.
    assert losses["depth_loss"] and all(np.isfinite(losses["depth_loss"]))


def train_losses(run: Run) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run.config.parent)).Reload()
    prefix = "Train Loss Dict/"
    return {tag[len(prefix):]: [e.value for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"] if tag.startswith(prefix)}


def test_second_run_reuses_the_teacher_cache(second_run: tuple[Run, dict, dict]) -> None:
    run, before, after = second_run
    images, reused, computed = teacher_counts(run.output)
    assert computed == 0 and reused == images
    losses = train_losses(run)
    assert losses["find_loss"] and "depth_loss" not in losses  # --pipeline.datamanager.load-depth False
    assert len(before) == images
    assert before == after  # same entries, byte for byte: nothing recomputed or rewritten


def test_depth_images_are_loaded_only_when_the_dataset_lists_them(scene: Path, tmp_path: Path) -> None:
    """No depth files: the plain dataset (nerfstudio's DepthDataset would download a monocular
    depth network to make some up)."""
    import shutil

    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.data.datasets.depth_dataset import DepthDataset

    from find_ros.fields.datamanager import FindFieldDataManagerConfig

    plain = tmp_path / "plain"
    shutil.copytree(scene / "nerfstudio" / "images", plain / "images")
    transforms = json.loads((scene / "nerfstudio" / "transforms.json").read_text())
    for frame in transforms["frames"]:
        frame.pop("depth_file_path")
    (plain / "transforms.json").write_text(json.dumps(transforms))
    for data, expected in ((scene / "nerfstudio", True), (plain, False)):
        config = FindFieldDataManagerConfig(dataparser=NerfstudioDataParserConfig(data=data))
        manager = config.setup(device="cpu", test_mode="inference")
        assert isinstance(manager.train_dataset, DepthDataset) is expected


def test_the_dense_teacher_trains_a_head_without_scale(dense_run: Run) -> None:
    from find_ros.fields.loading import latest_checkpoint

    images, reused, computed = teacher_counts(dense_run.output)
    assert computed == images and reused == 0  # its own cache entries: another teacher
    path, _ = latest_checkpoint(dense_run.config.parent / "nerfstudio_models")
    state = torch.load(path, map_location="cpu", weights_only=True)["pipeline"]
    hash_features = state["_model.feature_field.encoding.hash_table"].shape[-1] * 6  # 6 levels (field_settings)
    assert state["_model.feature_field.mlp.layers.0.weight"].shape[1] == hash_features  # one scale: no scale input
    assert train_losses(dense_run)["find_loss"]


@pytest.fixture(scope="module")
def loaded(first_run: Run, field_env: dict[str, str]) -> Iterator:
    from find_ros.fields.loading import load_run

    saved = os.environ.get("FIND_ROS_CACHE")
    os.environ["FIND_ROS_CACHE"] = field_env["FIND_ROS_CACHE"]
    try:
        yield load_run(first_run.config, device="cpu")
    finally:
        if saved is None:
            os.environ.pop("FIND_ROS_CACHE", None)
        else:
            os.environ["FIND_ROS_CACHE"] = saved


def test_checkpoint_loads_back_into_a_pipeline_that_renders_relevancy(loaded, scene: Path) -> None:
    from find_ros.fields.loading import latest_checkpoint

    path, _ = latest_checkpoint(loaded.run_dir / "nerfstudio_models")
    saved = torch.load(path, map_location="cpu", weights_only=True)["pipeline"]
    live = loaded.pipeline.state_dict()
    for key in ("_model.feature_field.encoding.hash_table", "_model.field.mlp_base.model.0.hash_table"):
        torch.testing.assert_close(live[key], saved[key])

    # The dataparser transform is undone: camera centres land on the dataset's own poses.
    transform = loaded.world_from_nerfstudio()
    frames = {Path(f["file_path"]).name: np.array(f["transform_matrix"])
              for f in json.loads((scene / "nerfstudio" / "transforms.json").read_text())["frames"]}
    dataset = loaded.pipeline.datamanager.train_dataset
    for i, name in enumerate(dataset._dataparser_outputs.image_filenames):
        centre = dataset.cameras.camera_to_worlds[i, :3, 3].double().numpy()
        world = transform[:3, :3] @ centre + transform[:3, 3]
        np.testing.assert_allclose(world, frames[Path(name).name][:3, 3], atol=1e-4)

    model = loaded.model
    viewer_text = model.viewer_query  # what typing into the viewer's "FIND query" box does
    viewer_text.default_value = "the red cone"
    viewer_text.cb_hook(viewer_text)
    assert model.query_label == "the red cone"
    camera = dataset.cameras[0:1]
    camera.rescale_output_resolution(24 / 96)
    outputs = model.get_outputs_for_camera(camera)
    model.set_query(None)
    assert outputs["relevancy"].shape == (18, 24, 1) and outputs["composited"].shape == (18, 24, 3)
    assert bool(((outputs["relevancy"] >= 0) & (outputs["relevancy"] <= 1)).all())


def test_nerfstudio_tools_load_the_run(first_run: Run, field_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    """ns-viewer / ns-render / ns-eval load runs with eval_setup, i.e. torch.load's weights-only default."""
    from nerfstudio.utils.eval_utils import eval_setup

    monkeypatch.setenv("FIND_ROS_CACHE", field_env["FIND_ROS_CACHE"])
    _, pipeline, checkpoint, step = eval_setup(first_run.config, test_mode="inference")
    assert step == ITERATIONS - 1 and checkpoint.name.endswith(".ckpt")
    assert pipeline.model.teacher_fingerprint.any()


def test_crop_and_instruction_queries(loaded, scene: Path, tmp_path: Path) -> None:
    from find_ros.fields.cloud import cloud_for_run
    from find_ros.fields.locate import answer
    from find_ros.fields.query import CloudSettings, LocateSettings, Query
    from find_ros.image_io import read_rgb

    settings = CloudSettings(views=2, max_side=24)
    cloud, reused = cloud_for_run(loaded, settings, progress=False)
    again, reused_again = cloud_for_run(loaded, settings, progress=False)
    assert not reused and reused_again
    torch.testing.assert_close(again.features, cloud.features)
    frame = read_rgb(scene / "nerfstudio" / "images" / "frame_00002.png")
    crop = frame[20:50, 30:70]
    for query, method in itertools.product(
            (Query("crop", crops=[crop]), Query("instruction", text="the thing left of <0>", crops=[crop])),
            ("grounding", "relevancy")):
        result = answer(loaded, query, cloud=cloud, settings=LocateSettings(method))
        assert result["method"] == method
        assert result["frame"] == "world" and result["region_points"] >= 1
        lo, hi, c = (np.array(v) for v in (result["box"]["min"], result["box"]["max"], result["center"]))
        assert bool((lo <= c + 1e-6).all() and (c <= hi + 1e-6).all())
    # Located by FIND's grounding in the cloud's two rendered views, lifted through their surfaces.
    assert cloud.view_index.tolist() == [0, len(loaded.pipeline.datamanager.train_dataset) - 1]
    assert tuple(cloud.view_points.shape[1:3]) == tuple(int(v) for v in cloud.view_sizes.max(0).values)
    grounded = answer(loaded, Query("text", text="the red cone"), cloud=cloud, settings=LocateSettings("grounding"))
    assert grounded["method"] == "grounding" and len(grounded["grounded_views"]) == 2
    assert 0 < grounded["score"] <= 1 and grounded["region_points"] >= 1
    with pytest.raises(ValueError, match="locate method"):
        LocateSettings("guess")


def test_query_command_writes_a_ply_open3d_reads(first_run: Run, field_env: dict[str, str], tmp_path: Path) -> None:
    import open3d as o3d

    out = tmp_path / "cone.ply"
    command = [str(BIN / "find-ros"), "field", "query", "--config", str(first_run.config), "--text", "the red cone",
               "--out", str(out), "--json", "--views", "3", "--max-side", "32", "--device", "cpu"]
    done = subprocess.run(command, env=field_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["query"] == {"kind": "text", "text": "the red cone", "label": "the red cone"}
    assert result["frame"] == "world" and result["find_model"]["untrained"] and "warning" in result
    assert len(result["center"]) == 3 and result["ply"] == str(out)
    cloud = o3d.io.read_point_cloud(str(out))
    assert len(cloud.points) == result["cloud_points"] > 0
    colors = np.asarray(cloud.colors)
    assert cloud.has_colors() and colors.min() >= 0 and colors.max() <= 1 and colors.std() > 0
