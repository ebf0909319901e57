"""The feature field's parts without training: crop geometry and teacher lookup, the teacher cache,
the FIND embeddings (teacher and query side agree), relevancy, the feature head, the float
learning-rate schedule, the restricted config loader, and region finding."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from find_ros.fields.cache import TeacherCache, TeacherSettings
from find_ros.fields.pyramid import bilinear_lookup, crop_grids
from find_ros.fields.relevancy import over_scales, relevancy

# ------------------------------------------------------------------------------ crop geometry


@pytest.mark.parametrize("size", [(72, 96), (240, 320), (50, 50), (37, 101)])
def test_crops_lie_inside_and_cover_the_image(size: tuple[int, int]) -> None:
    h, w = size
    for grid in crop_grids(h, w, (0.2, 0.35, 0.6, 1.0), 0.5):
        covered = np.zeros((h, w), dtype=bool)
        boxes = grid.boxes()
        assert len(boxes) == grid.count
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert (y1 - y0, x1 - x0) == (grid.crop_h, grid.crop_w)
            covered[y0:y1, x0:x1] = True
        assert covered.all(), f"scale {grid.scale} leaves pixels without a crop"


def test_crop_grid_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="not in"):
        crop_grids(72, 96, (0.0,), 0.5)
    with pytest.raises(ValueError, match="overlap"):
        crop_grids(72, 96, (0.5,), 1.0)
    with pytest.raises(ValueError, match="no crop scales"):
        crop_grids(72, 96, (), 0.5)


def _grid_tensors(grid, values: torch.Tensor):
    sizes = torch.tensor([[grid.ny, grid.nx]])
    origin = torch.tensor([[grid.y0, grid.x0]])
    spacing = torch.tensor([[grid.dy, grid.dx]])
    return values[None], sizes, origin, spacing


def test_lookup_is_exact_at_crop_centres_and_linear_between() -> None:
    grid = crop_grids(72, 96, (0.5,), 0.5)[0]
    values = torch.randn(grid.ny, grid.nx, 4)
    grids, sizes, origin, spacing = _grid_tensors(grid, values)
    # Pixel (u, v) has its centre at u + 0.5: pick centres that fall on pixel centres.
    for i in range(grid.ny):
        for j in range(grid.nx):
            cy, cx = grid.y0 + i * grid.dy, grid.x0 + j * grid.dx
            if cy % 1 == 0.5 and cx % 1 == 0.5:
                got = bilinear_lookup(grids, sizes, origin, spacing, torch.tensor([0]), torch.tensor([int(cy)]),
                                      torch.tensor([int(cx)]))
                torch.testing.assert_close(got[0], values[i, j])
    # Far outside the outermost centres: the corner crop's value.
    got = bilinear_lookup(grids, sizes, origin, spacing, torch.tensor([0, 0]), torch.tensor([0, 71]),
                          torch.tensor([0, 95]))
    torch.testing.assert_close(got[0], values[0, 0])
    torch.testing.assert_close(got[1], values[-1, -1])


def test_lookup_interpolates_between_two_crops() -> None:
    values = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])  # one row, two crops, D=2
    grids = values[None]
    sizes = torch.tensor([[1, 2]])
    origin = torch.tensor([[5.0, 10.5]])
    spacing = torch.tensor([[1.0, 10.0]])
    got = bilinear_lookup(grids, sizes, origin, spacing, torch.tensor([0]), torch.tensor([5]), torch.tensor([15]))
    torch.testing.assert_close(got[0], torch.tensor([0.5, 0.5]))


# ------------------------------------------------------------------------------ teacher cache


def _grids(shapes, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(ny, nx, dim, generator=g) for ny, nx in shapes]


def test_cache_round_trip_and_key(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, 1 << 30)
    settings = TeacherSettings("crops", (0.3, 0.6), 0.5)
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    path = cache.entry("ab" * 32, settings, image)
    assert cache.read(path, [(2, 3)], None) is None
    grids = _grids([(2, 3), (1, 1)])
    cache.write(path, grids)
    back = cache.read(path, [(2, 3), (1, 1)], 4)
    assert back is not None
    for a, b in zip(back, grids):
        torch.testing.assert_close(a.float(), b.half().float())
    # Anything that changes the teacher changes the key.
    other = image.copy()
    other[0, 0, 0] = 1
    assert cache.entry("ab" * 32, settings, other) != path
    assert cache.entry("cd" * 32, settings, image) != path
    assert cache.entry("ab" * 32, TeacherSettings("crops", (0.3, 0.5), 0.5), image) != path
    assert cache.entry("ab" * 32, TeacherSettings("dense"), image) != path
    assert cache.entry("ab" * 32, TeacherSettings("dense"), image) == cache.entry(
        "ab" * 32, TeacherSettings("dense", (0.1,), 0.2), image)  # crop settings do not touch the dense teacher


def test_cache_discards_mismatched_or_corrupt_entries(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, 1 << 30)
    path = cache.entry("ab" * 32, TeacherSettings("dense"), np.zeros((4, 4, 3), np.uint8))
    cache.write(path, _grids([(2, 2)]))
    assert cache.read(path, [(3, 2)], None) is None and not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a safetensors file")
    assert cache.read(path, [(2, 2)], None) is None and not path.exists()


def test_cache_prunes_least_recently_used_but_never_current_entries(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path, 0)
    paths = []
    for k in range(4):
        p = cache.entry("ab" * 32, TeacherSettings("dense"), np.full((4, 4, 3), k, np.uint8))
        cache.write(p, _grids([(8, 8)], dim=16, seed=k))
        os.utime(p, (1000 + k, 1000 + k))
        paths.append(p)
    size = paths[0].stat().st_size
    cache.max_bytes = 2 * size
    assert cache.prune(keep={paths[0]}) == 2  # oldest kept (current run), next two oldest deleted
    assert [p.exists() for p in paths] == [True, False, False, True]
    assert cache.prune(keep=set()) == 0


# ------------------------------------------------------------------------------ FIND embeddings


@pytest.fixture(scope="module")
def embedder(tiny_find: Path):
    from find_ros.fields.teacher import FieldEmbedder

    return FieldEmbedder.load(tiny_find, device="cpu", batch_size=7, kind="dense")


@pytest.fixture(scope="module")
def crops_embedder(embedder):
    from find_ros.fields.teacher import FieldEmbedder

    return FieldEmbedder(embedder.model, embedder.model_dir, batch_size=7, kind="crops")


@pytest.mark.parametrize("size", [(72, 96), (240, 320), (50, 50), (37, 101), (101, 37)])
def test_dense_teacher_lies_on_its_grid(embedder, size: tuple[int, int]) -> None:
    """FIND's stride-4 map over a resized image has exactly the cells dense_grid predicts, and the
    grid's cells tile the original image."""
    from find_ros.fields.pyramid import dense_grid

    h, w = size
    image = np.random.default_rng(h * w).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    grid = dense_grid(h, w, embedder.model.config.input_size)
    (cells,) = embedder.teach(image, [grid])
    assert cells.shape == (grid.ny, grid.nx, embedder.dim)
    torch.testing.assert_close(cells.norm(dim=-1), torch.ones(grid.ny, grid.nx), atol=1e-4, rtol=0)
    assert grid.y0 + (grid.ny - 1) * grid.dy < h <= grid.y0 + (grid.ny - 0.5) * grid.dy + 1e-6
    assert grid.x0 + (grid.nx - 1) * grid.dx < w <= grid.x0 + (grid.nx - 0.5) * grid.dx + 1e-6


def test_dense_teacher_does_not_depend_on_the_batch(embedder) -> None:
    """Images of one size (a training set's) embed the same alone or batched."""
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, size=(72, 96, 3), dtype=np.uint8) for _ in range(3)]
    together = embedder.dense(images)
    for image, cells in zip(images, together):
        torch.testing.assert_close(embedder.dense([image])[0], cells, atol=1e-5, rtol=1e-4)


def test_dense_crop_query_reads_the_crops_centre(embedder) -> None:
    crop = np.zeros((48, 64, 3), dtype=np.uint8)
    crop[16:32, 21:43] = (220, 30, 30)
    query = embedder.crop(crop)
    assert query.shape == (1, embedder.dim)
    cells = embedder.dense([crop])[0]
    ny, nx = cells.shape[:2]
    centre = torch.nn.functional.normalize(cells[ny // 3 : ny - ny // 3, nx // 3 : nx - nx // 3].reshape(-1, embedder.dim)
                                           .mean(0), dim=0)
    torch.testing.assert_close(query[0], centre)


def test_crop_query_is_the_crops_teachers_own_function(crops_embedder) -> None:
    """With the crops teacher, a crop query embeds exactly as the teacher embedded the same crop
    of a training image."""
    embedder = crops_embedder
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(72, 96, 3), dtype=np.uint8)
    grids = crop_grids(72, 96, (0.3, 0.6), 0.5)
    pyramid = embedder.teach(image, grids)
    assert [tuple(p.shape) for p in pyramid] == [(g.ny, g.nx, embedder.dim) for g in grids]
    for grid, emb in zip(grids, pyramid):
        x0, y0, x1, y1 = grid.boxes()[-1]
        query = embedder.crop(image[y0:y1, x0:x1])[0]
        torch.testing.assert_close(query, emb[-1, -1], atol=1e-5, rtol=1e-4)
    norms = torch.cat([p.reshape(-1, embedder.dim) for p in pyramid]).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-4, rtol=0)


def test_text_and_instruction_queries_share_the_space(embedder) -> None:
    text = embedder.texts(["the red cone", "the box"])
    crop = np.full((20, 30, 3), 200, dtype=np.uint8)
    instruction = embedder.instruction("the thing next to <0>", [crop])
    assert text.shape == (2, embedder.dim) and instruction.shape == (1, embedder.dim)
    for v in (text, instruction):
        torch.testing.assert_close(v.norm(dim=-1), torch.ones(v.shape[0]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError):
        embedder.instruction("the thing next to <0>", [])  # placeholder without its crop


def test_model_fingerprint_follows_the_weights(tiny_find: Path, tmp_path: Path) -> None:
    import shutil

    from find_ros.fields.teacher import model_fingerprint

    copy = Path(shutil.copytree(tiny_find, tmp_path / "copy"))
    assert model_fingerprint(copy) == model_fingerprint(tiny_find)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_fingerprint(copy) != model_fingerprint(tiny_find)


# ------------------------------------------------------------------------------ relevancy


def test_relevancy_against_negatives() -> None:
    query = torch.tensor([1.0, 0.0, 0.0])
    negatives = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    features = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.0]])
    rel = relevancy(features, query, negatives, temperature=10.0)
    assert rel[0] > 0.99 and rel[1] < 0.01
    torch.testing.assert_close(rel[2], torch.tensor(0.5))  # ties with a negative: not relevant
    expected = torch.sigmoid(torch.tensor(10.0 * (1.0 - 0.0)))
    torch.testing.assert_close(rel[0], expected)
    per_scale = torch.stack([features[[1, 0]], features[[0, 0]]], dim=0)  # (N=2, S=2, D)
    best, index = over_scales(per_scale, query, negatives, 10.0)
    assert index.tolist() == [1, 0] and bool((best > 0.99).all())


# ------------------------------------------------------------------------------ feature head


def test_feature_head_scales() -> None:
    from find_ros.fields.feature_field import FindFeatureField

    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    head = FindFeatureField(aabb, 8, num_levels=4, max_res=32, log2_hashmap_size=10, hidden_dim=16)
    points = torch.rand(5, 3) * 2 - 1
    scales = torch.tensor([0.05, 0.5])
    both = head.at_scales(points, scales)
    assert both.shape == (5, 2, 8)
    torch.testing.assert_close(both[:, 1], head(points, torch.full((5, 1), 0.5)))
    assert not torch.allclose(both[:, 0], both[:, 1])
    head(points, torch.full((5, 1), 0.1)).sum().backward()
    assert head.encoding.hash_table.grad is not None and head.encoding.hash_table.grad.abs().sum() > 0
    flat = FindFeatureField(aabb, 8, num_levels=4, max_res=32, log2_hashmap_size=10, scale_conditioned=False)
    torch.testing.assert_close(flat.at_scales(points, scales)[:, 0], flat.at_scales(points, scales)[:, 1])
    with pytest.raises(ValueError, match="scale"):
        head(points)


# ------------------------------------------------------------------------------ checkpoint safety


def test_schedule_matches_nerfstudio_in_floats_and_saves_weights_only() -> None:
    from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig

    from find_ros.fields.schedule import FloatExponentialDecaySchedulerConfig

    def make(config):
        param = torch.nn.Parameter(torch.zeros(2))
        optimizer = torch.optim.Adam([param], lr=1e-2)
        return optimizer, config.setup().get_scheduler(optimizer, 1e-2)

    kwargs = dict(lr_final=1e-4, max_steps=100, warmup_steps=10, lr_pre_warmup=1e-5)
    ours, theirs = make(FloatExponentialDecaySchedulerConfig(**kwargs)), make(ExponentialDecaySchedulerConfig(**kwargs))
    for _ in range(30):
        for optimizer, scheduler in (ours, theirs):
            optimizer.step()
            scheduler.step()
        assert type(ours[0].param_groups[0]["lr"]) is float
        assert math.isclose(ours[0].param_groups[0]["lr"], float(theirs[0].param_groups[0]["lr"]), rel_tol=1e-9)
    buffer = io.BytesIO()
    torch.save({"optimizer": ours[0].state_dict(), "scheduler": ours[1].state_dict()}, buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)  # nothing to allowlist


def test_run_config_loader_refuses_foreign_objects(tmp_path: Path) -> None:
    from find_ros.fields.loading import read_run_config

    evil = tmp_path / "config.yml"
    evil.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="only nerfstudio"):
        read_run_config(evil)
    other = tmp_path / "nerfacto.yml"
    other.write_text("!!python/object:nerfstudio.engine.trainer.TrainerConfig\nmethod_name: nerfacto\n")
    with pytest.raises(ValueError, match="'nerfacto' run"):
        read_run_config(other)
    with pytest.raises(FileNotFoundError):
        read_run_config(tmp_path / "missing.yml")


def test_a_query_uses_the_find_model_the_field_learnt_from(tiny_find: Path) -> None:
    from find_ros.fields.loading import match_find_model
    from find_ros.fields.teacher import model_fingerprint

    assert match_find_model(model_fingerprint(tiny_find), None, tiny_find) == tiny_find
    assert match_find_model(model_fingerprint(tiny_find), tiny_find, None) == tiny_find
    with pytest.raises(ValueError, match="--find-model"):
        match_find_model("ab" * 32, tiny_find, None)
    with pytest.raises(ValueError, match="--find-model"):
        match_find_model("ab" * 32, None, tiny_find)


# ------------------------------------------------------------------------------ queries


def test_locate_finds_the_relevant_cluster() -> None:
    from find_ros.fields.locate import locate

    rng = np.random.default_rng(1)
    background = rng.uniform(-1, 1, size=(5000, 3))
    target = np.array([0.4, -0.3, 0.2]) + rng.normal(scale=0.01, size=(60, 3))
    decoy = np.array([-0.6, 0.6, -0.5]) + rng.normal(scale=0.01, size=(20, 3))
    points = np.concatenate([background, target, decoy])
    rel = np.concatenate([rng.uniform(0, 0.3, 5000), rng.uniform(0.8, 0.9, 60), rng.uniform(0.85, 0.95, 20)])
    region = locate(points, rel, np.ones(len(points)), voxel=0.01, top_fraction=0.02)
    np.testing.assert_allclose(region.center, [0.4, -0.3, 0.2], atol=0.01)
    assert set(region.members.tolist()) <= set(range(5000, 5060))  # the bigger cluster, not the decoy
    assert region.score <= 0.9


def _plane_cloud(views: int):
    """A 40x30 grid of surface points on z = 0 seen head-on by ``views`` identical 20x15 views (one
    view pixel per 2x2 points)."""
    from find_ros.fields.query import FieldCloud

    ys, xs = np.mgrid[0:30, 0:40].astype(np.float32) * 0.01
    points = torch.from_numpy(np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size, np.float32)], 1))
    surface = torch.from_numpy(np.stack([xs[::2, ::2], ys[::2, ::2], np.zeros((15, 20), np.float32)], -1))
    view_points = torch.full((views, 16, 21, 3), torch.nan)  # padded beyond the views' own 15x20
    view_points[:, :15, :20] = surface
    return FieldCloud(points, torch.zeros_like(points), torch.zeros(len(points), 1, 4), torch.ones(1), 0.01,
                      torch.arange(views), view_points, torch.tensor([[15, 20]] * views))


def test_grounding_votes_lift_masks_and_the_views_that_agree_win() -> None:
    from find_ros.fields.grounded import GroundedView, vote
    from find_ros.fields.locate import locate
    from find_ros.fields.query import VoteSettings

    cloud = _plane_cloud(4)
    left, right = np.zeros((60, 80), bool), np.zeros((60, 80), bool)  # masks at 4x the view size
    left[8:24, 8:24] = True    # points x, y in [0.04, 0.12)
    right[32:48, 56:72] = True  # points x in [0.28, 0.36), y in [0.16, 0.24)
    grounded = [GroundedView(0, 9.0, left), GroundedView(1, 8.0, right), GroundedView(2, 7.5, left),
                GroundedView(3, 1.0, right)]  # the weakest match is left out with views=3
    votes, kept = vote(cloud, grounded, VoteSettings(views=3, radius_voxels=0.5))
    assert [g.view for g in kept] == [0, 1, 2]
    xy = cloud.points.numpy()[:, :2]
    in_left = (xy >= 0.04 - 1e-6).all(1) & (xy < 0.12 - 1e-6).all(1)
    assert np.allclose(votes[in_left & (xy[:, 0] % 0.02 < 1e-6) & (xy[:, 1] % 0.02 < 1e-6)], 2 / 3)
    assert votes.max() == pytest.approx(2 / 3) and set(np.round(np.unique(votes), 4)) == {0.0, round(1 / 3, 4), round(2 / 3, 4)}
    region = locate(cloud.points.numpy().astype(np.float64), votes, np.ones(len(votes)), cloud.voxel, top_fraction=0.01)
    assert (np.abs(region.center[:2] - 0.07) < 0.02).all()  # the two agreeing views' object


def test_grounding_instruction_for_each_query_kind() -> None:
    from find_ros.fields.grounded import instruction_for
    from find_ros.fields.query import Query, VoteSettings

    crop = np.zeros((8, 8, 3), np.uint8)
    assert instruction_for(Query("text", text="the red [cone]")) == ("[the red (cone)]", [])
    assert instruction_for(Query("crop", crops=[crop]))[0] == "<0>"
    assert instruction_for(Query("instruction", text="the mug left of <0>", crops=[crop]))[0] == "the mug left of <0>"
    with pytest.raises(ValueError):
        VoteSettings(views=0)


def test_query_arguments() -> None:
    from find_ros.fields.query import parse_query

    crop = np.zeros((4, 4, 3), np.uint8)
    assert parse_query("the box", [], None).kind == "text"
    assert parse_query(None, [crop], None).kind == "crop"
    assert parse_query(None, [crop, crop], "<0> left of <1>").kind == "instruction"
    for args, message in [(("a", [crop], None), "not with --text"), ((None, [], None), "nothing to look for"),
                          ((None, [crop, crop], None), "need an --instruction"), (("a", [], "b"), "not both")]:
        with pytest.raises(ValueError, match=message):
            parse_query(*args)


def test_cli_reports_a_bad_query_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from find_ros.cli import main

    assert main(["field", "query", "--config", "nowhere/config.yml"]) == 2
    assert "nothing to look for" in capsys.readouterr().err
