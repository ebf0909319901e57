"""The renderer: exact per-pixel ground truth, occlusion bookkeeping, depth, shading and shadows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from find_ros.scenes import Intrinsics, Renderer, look_at, project, render_example, sample_scene
from find_ros.scenes.world import Light, Thing

SIZE = (160, 120)


def _single_object_scene(seed: int = 3):
    """A scene with one sphere on the table and a plain (untextured) table top."""
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, kind="tabletop", num_things=1)
    thing = scene.things[0]
    table = next(s for s in scene.stuff if s.category == "table")
    sphere = dataclasses.replace(thing, shape="sphere", params=(0.06,), texture="plain",
                                 position=(*scene.table.center, scene.table.height + 0.06))
    stuff = tuple(dataclasses.replace(s, texture="plain", rgb=(200, 200, 200)) if s is table else s for s in scene.stuff)
    return dataclasses.replace(scene, things=(sphere,), stuff=stuff)


def test_frame_ground_truth_is_consistent_and_deterministic() -> None:
    a = render_example(4, "train", 2, 3, SIZE)
    b = render_example(4, "train", 2, 3, SIZE)
    assert np.array_equal(a.frame.rgb, b.frame.rgb) and np.array_equal(a.frame.ids, b.frame.ids)
    frame = a.frame
    assert frame.rgb.shape == (120, 160, 3) and frame.rgb.dtype == np.uint8
    # Every pixel sees a surface of the closed room, and the id image says which.
    assert (frame.ids > 0).all() and (frame.depth > 0).all()
    counts = np.bincount(frame.ids.ravel())
    assert {k: v.area for k, v in frame.views.items()} == {int(k): int(c) for k, c in enumerate(counts) if c and k}
    for view in frame.views.values():
        rows, cols = np.nonzero(frame.ids == view.id)
        assert view.bbox == (cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
        if view.amodal_area is not None:
            assert view.amodal_area >= view.area


def test_occluder_lowers_visible_fraction_but_not_amodal_area() -> None:
    scene = _single_object_scene()
    sphere = scene.things[0]
    intrinsics = Intrinsics.from_fov(*SIZE)
    eye = sphere.center + np.array([0.9, 0.2, 0.6])
    pose = look_at(eye, sphere.center)
    clear = Renderer(scene).render(pose, intrinsics)
    assert clear.views[sphere.id].visible_fraction == pytest.approx(1.0)
    # Its centre projects inside its mask, and the depth there is the sphere's near surface.
    uv, z = project(sphere.center[None, :], pose, intrinsics)
    u, v = np.round(uv[0]).astype(int)
    assert clear.ids[v, u] == sphere.id
    assert clear.depth[v, u] == pytest.approx(z[0] - 0.06, abs=0.004)

    blocker_at = tuple(sphere.center + 0.4 * (eye - sphere.center) + np.array([0.0, 0.0, 0.03]))
    blocker = Thing(2, "box", "blue", "small", "matte", "plain", "table", 0.03, (0.03, 0.03, 0.03), blocker_at, 0.0)
    blocked = Renderer(dataclasses.replace(scene, things=(sphere, blocker))).render(pose, intrinsics)
    assert blocked.views[sphere.id].amodal_area == clear.views[sphere.id].amodal_area
    assert blocked.views[sphere.id].visible_fraction < 0.9
    assert blocked.views[sphere.id].area + (blocked.ids == 2).sum() >= clear.views[sphere.id].area


def test_shadow_rays_darken_the_table_behind_an_object() -> None:
    scene = _single_object_scene()
    sphere = scene.things[0]
    # A low key light throws the shadow clear of the sphere's own footprint.
    key = sphere.center + np.array([1.0, 0.3, 0.5])
    scene = dataclasses.replace(scene, lights=(Light(tuple(key), scene.lights[0].rgb), scene.lights[1]))
    # Where the key light's ray through the sphere centre meets the table top.
    t = (key[2] - scene.table.height) / (key[2] - sphere.center[2])
    shadow = key + t * (sphere.center - key)
    across = np.cross(shadow - key, [0.0, 0.0, 1.0])
    lit = shadow + 0.2 * across / np.linalg.norm(across)
    intrinsics = Intrinsics.from_fov(320, 240)
    away = (shadow - sphere.center) * np.array([1.0, 1.0, 0.0])
    # From above the shadow, a little beyond it, so the sphere does not hide it.
    pose = look_at(shadow + 0.25 * away / np.linalg.norm(away) + np.array([0.0, 0.0, 1.0]), shadow)
    with_sphere = Renderer(scene).render(pose, intrinsics)  # no rng: noise-free
    without = Renderer(dataclasses.replace(scene, things=())).render(pose, intrinsics)
    uv, _ = project(np.array([shadow, lit]), pose, intrinsics)
    table_id = next(s.id for s in scene.stuff if s.category == "table")
    brightness = []
    for u, v in np.round(uv).astype(int):
        assert 2 <= u < 318 and 2 <= v < 238, "test geometry: both points must be in view"
        assert (with_sphere.ids[v - 2 : v + 3, u - 2 : u + 3] == table_id).all()
        brightness.append([f.rgb[v - 2 : v + 3, u - 2 : u + 3].astype(float).mean() for f in (with_sphere, without)])
    (shadowed, open_table), (lit_with, lit_without) = brightness
    assert shadowed < 0.8 * open_table  # the sphere's shadow darkens the table ...
    assert abs(lit_with - lit_without) < 1.0  # ... and nothing else changes where its shadow is not


def test_colour_threshold_alone_does_not_segment_objects() -> None:
    """Even knowing each object's mean colour (an oracle), the best colour threshold recovers its
    mask poorly: shading, shadows, highlights, textures and like-coloured furniture see to that."""
    best_ious = []
    for index in range(4):
        example = render_example(8, "train", index, index + 1, (320, 240))
        rgb = example.frame.rgb.astype(float)
        for segment in example.annotation.segments:
            if not (segment.isthing and segment.eligible):
                continue
            mask = example.frame.ids == segment.element_id
            distance = np.linalg.norm(rgb - rgb[mask].mean(axis=0), axis=-1)
            best_ious.append(max(((distance < d) & mask).sum() / ((distance < d) | mask).sum() for d in (15, 30, 50, 80)))
    assert len(best_ious) >= 8
    assert np.mean(best_ious) < 0.7


def test_scene_sampling_validates_and_keeps_things_apart() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="scene kind"):
        sample_scene(rng, kind="garden")
    with pytest.raises(ValueError, match="num_things"):
        sample_scene(rng, num_things=0)
    scene = sample_scene(np.random.default_rng(1), num_things=9, distinct=True)
    assert len({(t.shape, t.color) for t in scene.things}) == len(scene.things)
    for a in scene.things:
        for b in scene.things:
            if a.id < b.id and a.support == b.support:
                gap = np.hypot(a.position[0] - b.position[0], a.position[1] - b.position[1])
                assert gap > a.footprint + b.footprint
        lo, hi = a.aabb
        rest = scene.table.height if a.support == "table" else 0.0
        assert lo[2] == pytest.approx(rest, abs=1e-9), "things rest on their support"
