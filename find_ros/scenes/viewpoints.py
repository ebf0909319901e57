"""Where cameras go in a scene: single views of the table, orbits and walk-throughs.

A walk-through is a closed, smooth loop around the table at eye height whose gaze alternates
between the table and the room, so objects enter and leave the view (what video localization
needs); an orbit circles the table looking at its centre (what a 3D field likes best).
"""

from __future__ import annotations

import math

import numpy as np

from find_ros.scenes.camera import Intrinsics, look_at, orbit, project, smooth_path
from find_ros.scenes.world import Scene

PATHS: tuple[str, ...] = ("walk", "orbit")


def _eye_is_free(scene: Scene, eye: np.ndarray, margin: float = 0.25) -> bool:
    """Inside the room, under the ceiling, and not inside furniture."""
    lo, hi = np.array(scene.room_min) + margin, np.array(scene.room_max) - margin
    if not ((eye >= lo).all() and (eye <= hi).all()):
        return False
    for stuff in scene.stuff:
        if stuff.category in ("table", "cabinet"):
            slo, shi = stuff.aabb
            if ((eye >= slo - 0.15) & (eye <= shi + 0.15)).all():
                return False
    return True


def _things_in_view(scene: Scene, pose: np.ndarray, intrinsics: Intrinsics) -> int:
    if not scene.things:
        return 0
    centres = np.array([t.center for t in scene.things])
    uv, z = project(centres, pose, intrinsics)
    inside = (z > 0.1) & (uv[:, 0] > 0.05 * intrinsics.width) & (uv[:, 0] < 0.95 * intrinsics.width)
    inside &= (uv[:, 1] > 0.05 * intrinsics.height) & (uv[:, 1] < 0.95 * intrinsics.height)
    return int(inside.sum())


def sample_view(scene: Scene, intrinsics: Intrinsics, rng: np.random.Generator, attempts: int = 40) -> np.ndarray:
    """A ``world_from_camera`` pose looking at the table area that keeps most things in view."""
    table = scene.table
    best, best_count = None, -1
    want = min(len(scene.things), max(2, int(0.7 * len(scene.things))))
    for _ in range(attempts):
        if scene.kind == "tabletop":
            target = np.array([*table.center, table.height + 0.05])
            target[:2] += rng.uniform(-0.5, 0.5, size=2) * np.array(table.half)
            dist, elev = rng.uniform(0.8, 1.5), math.radians(rng.uniform(25, 60))
        else:
            target = np.array([*table.center, rng.uniform(0.3, 0.8)])
            target[:2] += rng.uniform(-0.5, 0.5, size=2)
            dist, elev = rng.uniform(1.7, 2.8), math.radians(rng.uniform(18, 40))
        az = rng.uniform(-math.pi, math.pi)
        eye = target + dist * np.array([math.cos(elev) * math.cos(az), math.cos(elev) * math.sin(az), math.sin(elev)])
        if not _eye_is_free(scene, eye):
            continue
        pose = look_at(eye, target)
        count = _things_in_view(scene, pose, intrinsics)
        if count > best_count:
            best, best_count = pose, count
        if count >= want:
            break
    if best is None:  # every attempt hit a wall: look from straight above the table instead
        target = np.array([*table.center, table.height])
        best = look_at(target + np.array([0.3, 0.0, 1.2]), target)
    return best


def orbit_table(scene: Scene, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """An orbit around the table, radius shrunk until every eye fits in the room."""
    table = scene.table
    center = np.array([*table.center, table.height])
    radius, height = rng.uniform(1.1, 1.6), rng.uniform(0.5, 0.85)
    start = rng.uniform(-math.pi, math.pi)
    for _ in range(20):
        poses = orbit(center, radius, height, count, start_angle=start)
        if all(_eye_is_free(scene, p[:3, 3], margin=0.15) for p in poses):
            return poses
        radius *= 0.9
    return poses


def walkthrough(scene: Scene, count: int, rng: np.random.Generator, waypoints: int = 7) -> list[np.ndarray]:
    """A smooth closed walk around the table; the gaze turns to the room at some waypoints, so
    objects leave the view and come back."""
    table = scene.table
    center = np.array(table.center)
    start = rng.uniform(-math.pi, math.pi)
    eyes, targets = [], []
    away = set(rng.choice(waypoints, size=2, replace=False).tolist())
    for k in range(waypoints):
        angle = start + 2 * math.pi * k / waypoints + rng.uniform(-0.2, 0.2)
        radius = rng.uniform(1.0, 1.7)
        eye = None
        for _ in range(20):
            cand = np.array([*(center + radius * np.array([math.cos(angle), math.sin(angle)])), rng.uniform(1.1, 1.55)])
            if _eye_is_free(scene, cand, margin=0.35):
                eye = cand
                break
            radius *= 0.9
        if eye is None:
            eye = np.array([*(center + 0.9 * np.array([math.cos(angle), math.sin(angle)])), 1.4])
        if k in away:
            # Look along the walking direction, out into the room.
            tangent = np.array([-math.sin(angle), math.cos(angle)])
            target = np.array([*(eye[:2] + 2.0 * tangent), 0.9])
        else:
            target = np.array([*(center + rng.uniform(-0.8, 0.8, size=2) * np.array(table.half)), table.height + 0.05])
        eyes.append(eye)
        targets.append(target)
    return smooth_path(np.array(eyes), np.array(targets), count)


def camera_path(scene: Scene, kind: str, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    if kind not in PATHS:
        raise ValueError(f"unknown camera path {kind!r}; expected one of {', '.join(PATHS)}")
    if count < 1:
        raise ValueError(f"a camera path needs at least 1 frame, got {count}")
    return walkthrough(scene, count, rng) if kind == "walk" else orbit_table(scene, count, rng)
