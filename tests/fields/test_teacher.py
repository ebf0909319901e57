"""The FIND embeddings of the field: dense and crop teachers, and queries in the same space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from find_ros.fields.pyramid import crop_grids


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
