"""Colour of ray hits: albedo from materials and procedural textures, lights with cast shadows,
ambient light, tone mapping and camera sensor noise. Works on flat arrays of hit points in linear
RGB and returns sRGB.

The aim is images whose colours are not a label: shading, shadows, highlights, metallic
reflections and textured, sometimes equally coloured furniture make a colour threshold fail, while
object colours stay nameable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.world import Stuff, Thing


def srgb_to_linear(rgb255: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    c = np.asarray(rgb255, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1.0 / 2.4) - 0.055)


@dataclass(frozen=True)
class Material:
    diffuse: float
    specular: float
    shininess: float
    metallic: bool = False  # highlights and reflections tinted by the albedo


THING_MATERIALS: dict[str, Material] = {
    "matte": Material(1.0, 0.04, 8.0),
    "glossy": Material(0.9, 0.55, 90.0),
    "metallic": Material(0.35, 0.9, 40.0, metallic=True),
}
STUFF_MATERIALS: dict[str, Material] = {
    "paint": Material(1.0, 0.02, 6.0),
    "plain": Material(1.0, 0.12, 30.0),
    "planks": Material(1.0, 0.18, 40.0),
    "tiles": Material(1.0, 0.3, 70.0),
    "carpet": Material(1.0, 0.0, 1.0),
    "grain": Material(1.0, 0.2, 40.0),
}


def hash01(*coords: np.ndarray, salt: int = 0) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice cell (no generator state)."""
    h = np.full(np.shape(coords[0]), np.uint64(salt * 0x9E3779B1 + 0x85EBCA6B), dtype=np.uint64)
    for k, c in zip((0x8DA6B343, 0xD8163841, 0xCB1AB31F), coords):
        h ^= np.asarray(c, dtype=np.int64).astype(np.uint64) * np.uint64(k)
        h ^= h >> np.uint64(15)
        h *= np.uint64(0x2C1B3C6D)
        h ^= h >> np.uint64(12)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)


def _value_noise(p: np.ndarray, scale: float, salt: int) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) over the first two columns of ``p``."""
    q = p[:, :2] * scale
    i = np.floor(q).astype(np.int64)
    f = q - i
    f = f * f * (3 - 2 * f)
    a = hash01(i[:, 0], i[:, 1], salt=salt)
    b = hash01(i[:, 0] + 1, i[:, 1], salt=salt)
    c = hash01(i[:, 0], i[:, 1] + 1, salt=salt)
    d = hash01(i[:, 0] + 1, i[:, 1] + 1, salt=salt)
    return (a * (1 - f[:, 0]) + b * f[:, 0]) * (1 - f[:, 1]) + (c * (1 - f[:, 0]) + d * f[:, 0]) * f[:, 1]


def thing_albedo(thing: Thing, local: np.ndarray) -> np.ndarray:
    """Linear albedo (N, 3) of ``thing`` at local points: its colour, darkened in the texture's pattern."""
    base = srgb_to_linear(V.COLORS[thing.color])
    shade = np.ones(len(local))
    q = local / thing.scale
    if thing.texture == "striped":
        shade = np.where(np.floor(q[:, 2] * 2.6).astype(np.int64) % 2 == 0, 1.0, 0.35)
    elif thing.texture == "checkered":
        cells = np.floor(q * 2.2).astype(np.int64)
        shade = np.where(cells.sum(axis=1) % 2 == 0, 1.0, 0.35)
    if thing.color in ("black", "gray"):
        # A darkened black is invisible; these colours get light patterns instead.
        shade = np.where(shade < 1.0, 2.4, 1.0)
    return np.clip(base[None, :] * shade[:, None], 0.0, 1.0)


def stuff_albedo(stuff: Stuff, world: np.ndarray) -> np.ndarray:
    """Linear albedo (N, 3) of stuff at world points, with its finish's procedural pattern."""
    base = srgb_to_linear(stuff.rgb)
    c, s = np.cos(stuff.yaw), np.sin(stuff.yaw)
    # Pattern coordinates: u along the boards/tiles, v across, w height.
    u = c * world[:, 0] + s * world[:, 1]
    v = -s * world[:, 0] + c * world[:, 1]
    w = world[:, 2]
    salt = stuff.id * 101
    if stuff.texture == "planks":
        board = np.floor(v / 0.16).astype(np.int64)
        offset = hash01(board, salt=salt) * 1.3
        piece = np.floor((u + offset) / 1.3).astype(np.int64)
        tone = 0.78 + 0.34 * hash01(board, piece, salt=salt + 1)
        grain = 1.0 + 0.07 * np.sin(u * 55.0 + 9.0 * hash01(board, piece, salt=salt + 2) + 2.5 * np.sin(v * 31.0))
        seam_v = np.abs((v / 0.16) - np.round(v / 0.16)) * 0.16 < 0.0035
        seam_u = np.abs(((u + offset) / 1.3) - np.round((u + offset) / 1.3)) * 1.3 < 0.004
        shade = tone * grain * np.where(seam_v | seam_u, 0.45, 1.0)
    elif stuff.texture == "tiles":
        size = 0.42
        i, j = np.floor(u / size).astype(np.int64), np.floor(v / size).astype(np.int64)
        fu, fv = u / size - i, v / size - j
        grout = (np.minimum(fu, 1 - fu) * size < 0.005) | (np.minimum(fv, 1 - fv) * size < 0.005)
        shade = np.where(grout, 0.62, 0.9 + 0.16 * hash01(i, j, salt=salt))
    elif stuff.texture == "carpet":
        fine = hash01(np.floor(u / 0.006).astype(np.int64), np.floor(v / 0.006).astype(np.int64), salt=salt)
        shade = 0.8 + 0.22 * fine + 0.18 * (_value_noise(np.stack([u, v], 1), 3.0, salt + 3) - 0.5)
    elif stuff.texture == "grain":
        # Boards run along u; the rings wobble with v and height so that legs and sides show grain too.
        board = np.floor(v / 0.11).astype(np.int64)
        shade = (0.85 + 0.2 * hash01(board, salt=salt)) * (1.0 + 0.1 * np.sin(u * 70.0 + 4.0 * np.sin(v * 9.0 + w * 7.0)))
    elif stuff.texture == "paint":
        shade = 0.96 + 0.08 * _value_noise(np.stack([u + w, v - w], 1), 1.3, salt)
    else:
        shade = np.ones(len(world))
    return np.clip(base[None, :] * shade[:, None], 0.0, 1.0)


@dataclass(frozen=True)
class SensorModel:
    """Exposure, vignetting and noise of a simulated camera, drawn per image."""

    exposure: float
    white_balance: tuple[float, float, float]
    vignetting: float
    read_noise: float
    shot_noise: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> SensorModel:
        return cls(
            exposure=float(rng.uniform(1.25, 1.6)),
            white_balance=tuple(float(v) for v in rng.uniform(0.96, 1.04, size=3)),
            vignetting=float(rng.uniform(0.15, 0.3)),
            read_noise=float(rng.uniform(0.004, 0.009)),
            shot_noise=float(rng.uniform(0.0002, 0.0006)),
        )

    @classmethod
    def clean(cls) -> SensorModel:
        return cls(1.4, (1.0, 1.0, 1.0), 0.0, 0.0, 0.0)

    def develop(self, radiance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Linear radiance (H, W, 3) -> sRGB uint8 with vignetting, tone curve and noise."""
        h, w = radiance.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2)
        exposed = radiance * (self.exposure * (1.0 - self.vignetting * r2))[..., None] * np.array(self.white_balance)
        toned = 1.0 - np.exp(-exposed)  # soft shoulder: highlights roll off instead of clipping flat
        srgb = linear_to_srgb(toned)
        if self.read_noise > 0 or self.shot_noise > 0:
            sigma = np.sqrt(self.read_noise**2 + self.shot_noise * srgb)
            srgb = srgb + sigma * rng.standard_normal(srgb.shape)
        return np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)
