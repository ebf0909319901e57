"""Triangle meshes of the world's elements and the exact surface normals of the round shapes.

Meshes come from open3d's primitive constructors, placed in world coordinates. Shading uses
analytic normals in each thing's local frame (smooth spheres and tori without tessellation
facets); the flat faces (box sides, cylinder caps, cone base) keep the triangle's own normal.
"""

from __future__ import annotations

import math

import numpy as np

from find_ros.scenes.world import Box, Stuff, Thing

# Tessellation: fine enough that silhouettes look round at 640x480, coarse enough to build fast.
_SPHERE_RESOLUTION = 24
_ROUND_RESOLUTION = 48
_TORUS_TUBE_RESOLUTION = 18


def _legacy_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - open3d legacy mesh
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int32)


def thing_local_mesh(thing: Thing) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) in the thing's local frame and triangles (M, 3)."""
    import open3d as o3d

    T = o3d.geometry.TriangleMesh
    p = thing.params
    if thing.shape == "sphere":
        mesh = T.create_sphere(radius=p[0], resolution=_SPHERE_RESOLUTION)
    elif thing.shape == "box":
        mesh = T.create_box(2 * p[0], 2 * p[1], 2 * p[2])
        mesh.translate((-p[0], -p[1], -p[2]))
    elif thing.shape == "cylinder":
        mesh = T.create_cylinder(radius=p[0], height=2 * p[1], resolution=_ROUND_RESOLUTION, split=1)
    elif thing.shape == "cone":
        mesh = T.create_cone(radius=p[0], height=p[1], resolution=_ROUND_RESOLUTION, split=1)
    elif thing.shape == "torus":
        mesh = T.create_torus(torus_radius=p[0], tube_radius=p[1], radial_resolution=_ROUND_RESOLUTION,
                              tubular_resolution=_TORUS_TUBE_RESOLUTION)
    else:
        raise ValueError(f"unknown shape {thing.shape!r}")
    return _legacy_arrays(mesh)


def thing_mesh(thing: Thing) -> tuple[np.ndarray, np.ndarray]:
    """The thing's mesh in world coordinates."""
    vertices, triangles = thing_local_mesh(thing)
    m = thing.world_from_local
    return vertices @ m[:3, :3].T + m[:3, 3], triangles


def box_mesh(box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Twelve triangles of an oriented box, outward facing."""
    hx, hy, hz = box.half
    corners = np.array([[x, y, z] for x in (-hx, hx) for y in (-hy, hy) for z in (-hz, hz)])
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    vertices = corners @ rot.T + np.array(box.center)
    # corner index = 4*ix + 2*iy + iz
    triangles = np.array([
        [0, 1, 3], [0, 3, 2],  # -x
        [4, 6, 7], [4, 7, 5],  # +x
        [0, 4, 5], [0, 5, 1],  # -y
        [2, 3, 7], [2, 7, 6],  # +y
        [0, 2, 6], [0, 6, 4],  # -z
        [1, 5, 7], [1, 7, 3],  # +z
    ], dtype=np.int32)
    return vertices, triangles


def stuff_mesh(stuff: Stuff) -> tuple[np.ndarray, np.ndarray]:
    """All boxes of a stuff element as one mesh."""
    vertices, triangles, offset = [], [], 0
    for box in stuff.boxes:
        v, t = box_mesh(box)
        vertices.append(v)
        triangles.append(t + offset)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(triangles)


def local_normals(thing: Thing, points: np.ndarray, face_normals: np.ndarray) -> np.ndarray:
    """Unit surface normals at ``points`` (local frame) of ``thing``; ``face_normals`` are the hit
    triangles' normals in the local frame, used for flat faces and to tell caps from sides."""
    p = thing.params
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    if thing.shape == "sphere":
        n = points.copy()
    elif thing.shape == "box":
        n = face_normals.copy()
    elif thing.shape == "cylinder":
        n = np.stack([x, y, np.zeros_like(z)], axis=1)
        cap = np.abs(face_normals[:, 2]) > 0.5
        n[cap] = np.stack([np.zeros(cap.sum()), np.zeros(cap.sum()), np.sign(face_normals[cap, 2])], axis=1)
    elif thing.shape == "cone":
        rho = np.maximum(np.hypot(x, y), 1e-9)
        n = np.stack([x / rho, y / rho, np.full_like(z, p[0] / p[1])], axis=1)
        base = face_normals[:, 2] < -0.5
        n[base] = (0.0, 0.0, -1.0)
    else:  # torus: normal points away from the tube's centre circle
        rho = np.maximum(np.hypot(x, y), 1e-9)
        ring = np.stack([x / rho * p[0], y / rho * p[0], np.zeros_like(z)], axis=1)
        n = points - ring
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.maximum(norm, 1e-12)
