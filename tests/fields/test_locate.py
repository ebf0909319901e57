"""Region finding: the densest-relevance cluster among the most relevant points."""

from __future__ import annotations

import numpy as np


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
