"""The FindModel-backed segment embedder, through the model package's real loading path.

Uses the model package's untrained placeholder (random weights), so this checks plumbing, not the
quality of references: shapes, determinism, the engine end to end, and that an untrained model is
refused unless explicitly allowed.
"""

from __future__ import annotations

import numpy as np
import pytest

from training.data_engine import EngineConfig, OfflineBackend, load_find_bench, run_engine
from training.data_engine.embedders import FindModelEmbedder, SegmentEmbedder
from training.data_engine.errors import DataEngineError


@pytest.fixture(scope="module")
def placeholder_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FIND_ROS_CACHE", str(tmp_path_factory.mktemp("find_cache")))
    try:
        from find_ros.model.tiny import untrained_model_dir

        yield untrained_model_dir()
    finally:
        mp.undo()


def test_untrained_model_is_refused(placeholder_dir):
    with pytest.raises(DataEngineError) as e:
        FindModelEmbedder(placeholder_dir)
    assert "untrained" in str(e.value) and "--embedder color" in str(e.value)


def test_find_embedder_drives_the_engine(placeholder_dir, toy, tmp_path):
    emb = FindModelEmbedder(placeholder_dir, allow_untrained=True)
    assert isinstance(emb, SegmentEmbedder)
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    masks = np.zeros((2, 48, 64), bool)
    masks[0, :20], masks[1, 20:] = True, True
    v = emb.embed(rgb, masks, np.zeros((2, 4), np.float32))
    assert v.shape == (2, emb.dim) and np.isfinite(v).all()
    assert np.array_equal(v, emb.embed(rgb, masks, np.zeros((2, 4), np.float32)))

    out = tmp_path / "bench.json"
    cfg = EngineConfig(toy.panoptic_json, toy.images_dir, out, panoptic_dir=toy.panoptic_dir, references=True,
                       progress=False)
    run_engine(cfg, OfflineBackend(), emb)
    refs = [p.reference for a in load_find_bench(out).annotations for p in a.phrases]
    assert refs and all(r is not None for r in refs)
