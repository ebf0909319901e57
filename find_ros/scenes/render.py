"""Rendering with open3d's CPU ray caster: colour, z-depth, per-pixel element ids and visibility.

One ray per pixel centre (no anti-aliasing), so the id image *is* the exact ground-truth
segmentation of the colour image. Shadows come from shadow rays towards each light. For every
visible thing the renderer also casts rays against that thing alone to count its *amodal*
area (its silhouette were nothing in front and the image unbounded), which gives the visible
fraction: how occluded or cut off by the image border the object is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from find_ros.scenes.camera import Intrinsics, pixel_directions, project
from find_ros.scenes.geometry import local_normals, stuff_mesh, thing_mesh
from find_ros.scenes.shading import (
    STUFF_MATERIALS,
    THING_MATERIALS,
    SensorModel,
    srgb_to_linear,
    stuff_albedo,
    thing_albedo,
)
from find_ros.scenes.world import Scene

_SHADOW_OFFSET = 2e-3  # metres along the normal, so shadow rays do not hit their own surface


@dataclass(frozen=True)
class ElementView:
    """How one element appears in one frame. ``bbox`` is COCO's [x, y, w, h] of the visible pixels."""

    id: int
    area: int
    bbox: tuple[int, int, int, int]
    amodal_area: int | None = None  # things only

    @property
    def visible_fraction(self) -> float:
        if not self.amodal_area:
            return 1.0
        return min(1.0, self.area / self.amodal_area)


@dataclass
class Frame:
    """One rendered view with its exact ground truth."""

    rgb: np.ndarray  # (H, W, 3) uint8 sRGB
    depth: np.ndarray  # (H, W) float32 z-depth in metres, 0 where no surface
    ids: np.ndarray  # (H, W) uint16 element ids, 0 where no surface
    world_from_camera: np.ndarray  # 4x4, OpenCV optical axes
    intrinsics: Intrinsics
    views: dict[int, ElementView] = field(default_factory=dict)  # every element with >= 1 pixel

    def mask(self, element_id: int) -> np.ndarray:
        return self.ids == element_id


class Renderer:
    """Renders views of one scene; building the ray-casting structures once serves every frame."""

    def __init__(self, scene: Scene) -> None:
        import open3d as o3d

        self.scene = scene
        self._o3d = o3d
        self._raycaster = o3d.t.geometry.RaycastingScene()
        element_of_geometry: dict[int, int] = {}
        for thing in scene.things:
            vertices, triangles = thing_mesh(thing)
            element_of_geometry[self._add(self._raycaster, vertices, triangles)] = thing.id
        for stuff in scene.stuff:
            vertices, triangles = stuff_mesh(stuff)
            element_of_geometry[self._add(self._raycaster, vertices, triangles)] = stuff.id
        self._element_lut = np.zeros(max(element_of_geometry) + 1, dtype=np.uint16)
        for gid, element in element_of_geometry.items():
            self._element_lut[gid] = element
        self._things = {t.id: t for t in scene.things}
        self._stuff = scene.stuff_by_id()
        self._amodal: dict[int, object] = {}
        by_category = {s.category: srgb_to_linear(s.rgb) for s in scene.stuff}
        # What metallic surfaces reflect: the floor below the horizon, walls and ceiling above.
        self._env_low = by_category["floor"]
        self._env_high = 0.6 * by_category["wall"] + 0.4 * by_category["ceiling"]

    def _add(self, raycaster, vertices: np.ndarray, triangles: np.ndarray) -> int:  # noqa: ANN001
        o3c = self._o3d.core
        return int(raycaster.add_triangles(o3c.Tensor(vertices.astype(np.float32)), o3c.Tensor(triangles.astype(np.uint32))))

    def _rays(self, origin: np.ndarray, directions: np.ndarray):  # noqa: ANN202 - open3d tensor
        rays = np.empty(directions.shape[:-1] + (6,), dtype=np.float32)
        rays[..., :3] = origin
        rays[..., 3:] = directions
        return self._o3d.core.Tensor(rays)

    def render(
        self,
        world_from_camera: np.ndarray,
        intrinsics: Intrinsics,
        rng: np.random.Generator | None = None,
        sensor: SensorModel | None = None,
    ) -> Frame:
        """Render one view. ``rng`` draws the sensor (exposure, noise); without one the image is
        noise-free with a fixed exposure."""
        if sensor is None:
            sensor = SensorModel.sample(rng) if rng is not None else SensorModel.clean()
        if rng is None:
            rng = np.random.default_rng(0)
        h, w = intrinsics.height, intrinsics.width
        eye = world_from_camera[:3, 3]
        directions = pixel_directions(intrinsics, world_from_camera)
        hits = self._raycaster.cast_rays(self._rays(eye, directions))
        t_hit = hits["t_hit"].numpy()
        hit = np.isfinite(t_hit)
        geometry = hits["geometry_ids"].numpy()
        ids = np.zeros((h, w), dtype=np.uint16)
        ids[hit] = self._element_lut[geometry[hit]]
        depth = np.where(hit, t_hit, 0.0).astype(np.float32)

        d = directions[hit]
        points = eye + t_hit[hit][:, None].astype(np.float64) * d
        # Shade in element order: each element's pixels are then one contiguous slice, not a mask
        # over the whole image per element.
        elements = ids[hit]
        order = np.argsort(elements, kind="stable")
        shaded = self._shade(points[order], d[order], elements[order],
                             hits["primitive_normals"].numpy()[hit][order].astype(np.float64))
        flat = np.empty_like(shaded)
        flat[order] = shaded
        radiance = np.zeros((h, w, 3))
        radiance[hit] = flat
        rgb = sensor.develop(radiance, rng)
        return Frame(rgb, depth, ids, np.array(world_from_camera, dtype=float), intrinsics,
                     self._views(ids, world_from_camera, intrinsics))

    def _shade(self, points: np.ndarray, directions: np.ndarray, elements: np.ndarray, face_normals: np.ndarray) -> np.ndarray:
        """Linear radiance of hit points sorted by element id."""
        n = len(points)
        normals = face_normals.copy()
        albedo = np.zeros((n, 3))
        kd, ks, shininess = np.ones(n), np.zeros(n), np.ones(n)
        metallic = np.zeros(n, dtype=bool)
        present = np.flatnonzero(np.bincount(elements))
        bounds = np.searchsorted(elements, present, side="left"), np.searchsorted(elements, present, side="right")
        for element, start, stop in zip(present, *bounds):
            sel = slice(int(start), int(stop))
            if element in self._things:
                thing = self._things[int(element)]
                m = thing.world_from_local
                rot = m[:3, :3]
                local = (points[sel] - m[:3, 3]) @ rot
                normals[sel] = local_normals(thing, local, face_normals[sel] @ rot) @ rot.T
                albedo[sel] = thing_albedo(thing, local)
                material = THING_MATERIALS[thing.material]
            else:
                stuff = self._stuff[int(element)]
                albedo[sel] = stuff_albedo(stuff, points[sel])
                material = STUFF_MATERIALS[stuff.texture]
            kd[sel], ks[sel] = material.diffuse, material.specular
            shininess[sel], metallic[sel] = material.shininess, material.metallic

        view = -directions / np.linalg.norm(directions, axis=1, keepdims=True)
        # Thin or open surfaces seen from behind still face the camera.
        flip = np.einsum("ij,ij->i", normals, view) < 0
        normals[flip] *= -1

        ambient = np.array(self.scene.ambient)
        sky = 0.55 + 0.45 * normals[:, 2:3]  # light bounced off the ceiling falls mostly on upward faces
        radiance = kd[:, None] * albedo * ambient * sky
        diffuse_colour = kd[:, None] * albedo
        spec_colour = np.where(metallic[:, None], albedo, 1.0) * ks[:, None]
        for light in self.scene.lights:
            to_light = np.array(light.position) - points
            dist2 = np.einsum("ij,ij->i", to_light, to_light)
            l = to_light / np.sqrt(dist2)[:, None]
            ndl = np.einsum("ij,ij->i", normals, l)
            # Only surfaces facing the light and not in shadow get its light: test those rays only.
            candidates = np.flatnonzero(ndl > 0)
            if not len(candidates):
                continue
            origins = points[candidates] + _SHADOW_OFFSET * normals[candidates]
            occluded = self._raycaster.test_occlusions(self._rays(origins, to_light[candidates]), tnear=0.0, tfar=0.999).numpy()
            lit = candidates[~occluded]
            power = np.array(light.rgb)[None, :] / dist2[lit, None]
            half = l[lit] + view[lit]
            half /= np.linalg.norm(half, axis=1, keepdims=True)
            ndh = np.clip(np.einsum("ij,ij->i", normals[lit], half), 1e-9, None)
            specular = np.exp(shininess[lit] * np.log(ndh))  # ndh ** shininess, per-pixel exponent
            radiance[lit] += (diffuse_colour[lit] * ndl[lit, None] + spec_colour[lit] * specular[:, None]) * power
        if metallic.any():
            refl = directions[metallic] / np.linalg.norm(directions[metallic], axis=1, keepdims=True)
            nm = normals[metallic]
            refl = refl - 2 * np.einsum("ij,ij->i", refl, nm)[:, None] * nm
            up = np.clip(refl[:, 2:3] * 3.0 + 0.5, 0.0, 1.0)
            env = (1 - up) * self._env_low + up * self._env_high
            radiance[metallic] += 0.6 * albedo[metallic] * env
        return radiance

    def _views(self, ids: np.ndarray, world_from_camera: np.ndarray, intrinsics: Intrinsics) -> dict[int, ElementView]:
        counts = np.bincount(ids.ravel(), minlength=int(self._element_lut.max()) + 1)
        views: dict[int, ElementView] = {}
        for element in np.flatnonzero(counts):
            if element == 0:
                continue
            mask = ids == element
            cols = np.flatnonzero(mask.any(axis=0))
            rows = np.flatnonzero(mask.any(axis=1))
            bbox = (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))
            amodal = self.amodal_area(int(element), world_from_camera, intrinsics) if int(element) in self._things else None
            views[int(element)] = ElementView(int(element), int(counts[element]), bbox, amodal)
        return views

    def amodal_area(self, thing_id: int, world_from_camera: np.ndarray, intrinsics: Intrinsics) -> int:
        """Pixels the thing would cover with nothing in front and no image border (virtual pixels
        beyond the border count; rays are cast only inside the projection of its bounding box)."""
        o3d = self._o3d
        thing = self._things[thing_id]
        if thing_id not in self._amodal:
            raycaster = o3d.t.geometry.RaycastingScene()
            self._add(raycaster, *thing_mesh(thing))
            self._amodal[thing_id] = raycaster
        w, h = intrinsics.width, intrinsics.height
        lo, hi = thing.aabb
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        uv, z = project(corners, world_from_camera, intrinsics)
        if (z <= 1e-3).any():
            u0, v0, u1, v1 = -w, -h, 2 * w - 1, 2 * h - 1  # straddles the camera plane: search wide
        else:
            u0, v0 = np.floor(uv.min(axis=0)).astype(int) - 1
            u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + 1
            u0, v0, u1, v1 = max(u0, -w), max(v0, -h), min(u1, 2 * w - 1), min(v1, 2 * h - 1)
        if u1 < u0 or v1 < v0:
            return 0
        v, u = np.mgrid[v0 : v1 + 1, u0 : u1 + 1]
        directions = pixel_directions(intrinsics, world_from_camera, u, v)
        hits = self._amodal[thing_id].cast_rays(self._rays(world_from_camera[:3, 3], directions))
        return int(np.isfinite(hits["t_hit"].numpy()).sum())

