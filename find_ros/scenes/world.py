"""The procedural world: a room with furniture ("stuff") and objects ("things"), sampled from a seed.

Coordinates: the world frame is ROS's ``map`` convention, metres, right-handed, **+z up**; the floor
is the plane z = 0 and the room spans ``room.min``..``room.max``. Every thing has a *local* frame,
its shape's natural frame (sphere, box, cylinder and torus centred at the origin, cone with its base
centre at the origin, axes of symmetry along local +z); ``Thing.world_from_local`` places it with a
yaw about +z. Stuff is made of boxes (floor slab, walls, ceiling, table top and legs, cabinet).

Sampling uses only the ``numpy.random.Generator`` passed in, so a scene is a pure function of its
generator's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from find_ros.scenes import vocabulary as V

TABLE_HEIGHT_RANGE = (0.70, 0.78)
ROOM_HEIGHT = 2.7
WALL_THICKNESS = 0.1
SCENE_KINDS: tuple[str, ...] = ("tabletop", "room")


@dataclass(frozen=True)
class Thing:
    """One object. ``params`` are the shape's dimensions in its local frame (see ``local_extent``)."""

    id: int
    shape: str
    color: str
    size: str
    material: str
    texture: str
    support: str
    scale: float
    params: tuple[float, ...]
    position: tuple[float, float, float]  # world position of the local origin
    yaw: float

    @property
    def world_from_local(self) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        m = np.eye(4)
        m[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        m[:3, 3] = self.position
        return m

    def local_extent(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds of the shape in its local frame."""
        p = self.params
        if self.shape == "sphere":
            lo, hi = [-p[0]] * 3, [p[0]] * 3
        elif self.shape == "box":
            lo, hi = [-p[0], -p[1], -p[2]], [p[0], p[1], p[2]]
        elif self.shape == "cylinder":
            lo, hi = [-p[0], -p[0], -p[1]], [p[0], p[0], p[1]]
        elif self.shape == "cone":
            lo, hi = [-p[0], -p[0], 0.0], [p[0], p[0], p[1]]
        else:  # torus: major radius, tube radius
            r = p[0] + p[1]
            lo, hi = [-r, -r, -p[1]], [r, r, p[1]]
        return np.array(lo, dtype=float), np.array(hi, dtype=float)

    def local_corners(self) -> np.ndarray:
        lo, hi = self.local_extent()
        return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])

    @property
    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned box. Exact for the round shapes' bounds, since yaw only turns about z."""
        lo, hi = self.local_extent()
        if self.shape in ("sphere", "cylinder", "cone", "torus"):
            # Rotationally symmetric about local z: yaw does not change the bounds.
            base = np.array(self.position)
            return base + lo, base + hi
        corners = self.local_corners() @ self.world_from_local[:3, :3].T + np.array(self.position)
        return corners.min(axis=0), corners.max(axis=0)

    @property
    def center(self) -> np.ndarray:
        lo, hi = self.aabb
        return (lo + hi) / 2.0

    @property
    def radius(self) -> float:
        """Radius of a sphere about ``center`` that holds the whole object."""
        lo, hi = self.aabb
        return float(np.linalg.norm(hi - lo) / 2.0)

    @property
    def footprint(self) -> float:
        lo, hi = self.local_extent()
        return float(math.hypot(max(abs(lo[0]), hi[0]), max(abs(lo[1]), hi[1])))

    @property
    def name(self) -> str:
        """Attribute name without article: "small glossy red sphere with stripes"."""
        words = [self.size]
        if self.material != "matte":
            words.append(self.material)
        words += [self.color, self.shape]
        tail = V.TEXTURE_PHRASES[self.texture]
        return " ".join(words) + (f" {tail}" if tail else "")


@dataclass(frozen=True)
class Box:
    """An oriented box: centre, half extents along its own axes, yaw about +z."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float = 0.0


@dataclass(frozen=True)
class Stuff:
    """A stuff element: all boxes of one category (all walls are one "wall" segment, as in COCO panoptic)."""

    id: int
    category: str
    finish: str  # the name captions use: "beige", "light wooden", ...
    texture: str  # paint | planks | tiles | carpet | grain | plain
    rgb: tuple[int, int, int]
    boxes: tuple[Box, ...]
    yaw: float = 0.0  # orientation of the texture pattern

    @property
    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        lows, highs = [], []
        for b in self.boxes:
            c, s = abs(math.cos(b.yaw)), abs(math.sin(b.yaw))
            ext = np.array([c * b.half[0] + s * b.half[1], s * b.half[0] + c * b.half[1], b.half[2]])
            lows.append(np.array(b.center) - ext)
            highs.append(np.array(b.center) + ext)
        return np.min(lows, axis=0), np.max(highs, axis=0)


@dataclass(frozen=True)
class Light:
    position: tuple[float, float, float]
    rgb: tuple[float, float, float]  # linear intensity at 1 m


@dataclass(frozen=True)
class Table:
    center: tuple[float, float]
    half: tuple[float, float]
    yaw: float
    height: float


@dataclass(frozen=True)
class Scene:
    kind: str
    room_min: tuple[float, float, float]
    room_max: tuple[float, float, float]
    table: Table
    things: tuple[Thing, ...]
    stuff: tuple[Stuff, ...]
    lights: tuple[Light, ...]
    ambient: tuple[float, float, float]

    def thing(self, element_id: int) -> Thing:
        for t in self.things:
            if t.id == element_id:
                return t
        raise KeyError(f"no thing with id {element_id}")

    def stuff_by_id(self) -> dict[int, Stuff]:
        return {s.id: s for s in self.stuff}


def _shape_params(shape: str, s: float, rng: np.random.Generator) -> tuple[tuple[float, ...], float]:
    """Dimensions for a shape of characteristic size ``s`` and the lift from support to local origin."""
    if shape == "sphere":
        return (s,), s
    if shape == "box":
        half = tuple(float(s * rng.uniform(0.7, 1.15)) for _ in range(3))
        return half, half[2]
    if shape == "cylinder":
        r, h = 0.75 * s, s * rng.uniform(0.9, 1.4)
        return (float(r), float(h)), float(h)
    if shape == "cone":
        return (0.85 * s, float(s * rng.uniform(2.0, 2.5))), 0.0
    # torus lying flat: major radius + tube radius = s
    tube = 0.3 * s
    return (s - tube, tube), tube


def _table_local_to_world(table: Table, x: float, y: float) -> tuple[float, float]:
    c, s = math.cos(table.yaw), math.sin(table.yaw)
    return table.center[0] + c * x - s * y, table.center[1] + s * x + c * y


def _sample_attributes(rng: np.random.Generator, taken: set[tuple[str, str]], distinct: bool,
                       previous: list[Thing]) -> tuple[str, str, str, str, str]:
    """Shape, colour, size, material, texture. Sometimes repeats an earlier (shape, colour) so that
    only size, texture or a spatial relation tells the two apart (what referring expressions need)."""
    if previous and not distinct and rng.random() < 0.3:
        twin = previous[int(rng.integers(len(previous)))]
        shape, color = twin.shape, twin.color
    else:
        for _ in range(50):
            shape = V.SHAPES[int(rng.integers(len(V.SHAPES)))]
            color = list(V.COLORS)[int(rng.integers(len(V.COLORS)))]
            if not distinct or (shape, color) not in taken:
                break
    size = V.SIZES[int(rng.integers(len(V.SIZES)))]
    material = V.MATERIALS[int(rng.choice(len(V.MATERIALS), p=V.MATERIAL_WEIGHTS))]
    texture = V.TEXTURES[int(rng.choice(len(V.TEXTURES), p=V.TEXTURE_WEIGHTS))]
    return shape, color, size, material, texture


def _pick(rng: np.random.Generator, table: dict[str, tuple]) -> tuple[str, tuple]:
    name = list(table)[int(rng.integers(len(table)))]
    return name, table[name]


def sample_scene(
    rng: np.random.Generator,
    kind: str | None = None,
    num_things: int | None = None,
    distinct: bool = False,
) -> Scene:
    """A random room with a table, maybe a cabinet, and ``num_things`` objects (3..9 if None).

    ``kind``: "tabletop" puts most things on the table, "room" spreads them over table and floor.
    ``distinct``: no two things share (shape, colour), so "the red sphere" names one object in the
    whole scene (trajectories use this: their referring expressions must hold from every view).
    """
    if kind is None:
        kind = "tabletop" if rng.random() < 0.7 else "room"
    if kind not in SCENE_KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {', '.join(SCENE_KINDS)}")
    if num_things is None:
        num_things = int(rng.integers(3, 10))
    if not 1 <= num_things <= V.MAX_THINGS:
        raise ValueError(f"num_things must be in 1..{V.MAX_THINGS}, got {num_things}")
    if distinct and num_things > len(V.SHAPES) * len(V.COLORS):
        raise ValueError(f"at most {len(V.SHAPES) * len(V.COLORS)} distinct things are possible")

    half_x, half_y = rng.uniform(2.0, 3.4), rng.uniform(2.0, 3.4)
    room_min, room_max = (-half_x, -half_y, 0.0), (half_x, half_y, ROOM_HEIGHT)

    t_half = (float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.32, 0.5)))
    table = Table(
        center=(float(rng.uniform(-half_x + 1.4, half_x - 1.4)), float(rng.uniform(-half_y + 1.4, half_y - 1.4))),
        half=t_half,
        yaw=float(rng.uniform(-math.pi, math.pi)),
        height=float(rng.uniform(*TABLE_HEIGHT_RANGE)),
    )

    stuff: list[Stuff] = []
    floor_name, (floor_tex, floor_rgb) = _pick(rng, V.FLOOR_FINISHES)
    stuff.append(Stuff(V.stuff_element_id("floor"), "floor", floor_name, floor_tex, floor_rgb,
                       (Box((0.0, 0.0, -0.05), (half_x, half_y, 0.05)),), yaw=float(rng.choice([0.0, math.pi / 2]))))
    paint_name, paint_rgb = _pick(rng, V.WALL_PAINTS)
    h2 = ROOM_HEIGHT / 2
    walls = (
        Box((half_x + WALL_THICKNESS / 2, 0.0, h2), (WALL_THICKNESS / 2, half_y + WALL_THICKNESS, h2)),
        Box((-half_x - WALL_THICKNESS / 2, 0.0, h2), (WALL_THICKNESS / 2, half_y + WALL_THICKNESS, h2)),
        Box((0.0, half_y + WALL_THICKNESS / 2, h2), (half_x + WALL_THICKNESS, WALL_THICKNESS / 2, h2)),
        Box((0.0, -half_y - WALL_THICKNESS / 2, h2), (half_x + WALL_THICKNESS, WALL_THICKNESS / 2, h2)),
    )
    stuff.append(Stuff(V.stuff_element_id("wall"), "wall", paint_name, "paint", paint_rgb, walls))
    stuff.append(Stuff(V.stuff_element_id("ceiling"), "ceiling", "white", "paint", (236, 236, 232),
                       (Box((0.0, 0.0, ROOM_HEIGHT + 0.05), (half_x, half_y, 0.05)),)))

    table_name, (table_tex, table_rgb) = _pick(rng, V.TABLE_FINISHES)
    top = 0.02
    table_boxes = [Box((*table.center, table.height - top), (t_half[0], t_half[1], top), table.yaw)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            lx, ly = _table_local_to_world(table, sx * (t_half[0] - 0.06), sy * (t_half[1] - 0.06))
            leg_h = (table.height - 2 * top) / 2
            table_boxes.append(Box((lx, ly, leg_h), (0.025, 0.025, leg_h), table.yaw))
    stuff.append(Stuff(V.stuff_element_id("table"), "table", table_name, table_tex, table_rgb,
                       tuple(table_boxes), yaw=table.yaw))

    # Floor placement regions must stay clear of the table and cabinet.
    keepout: list[tuple[float, float, float]] = [(*table.center, math.hypot(*t_half) + 0.05)]
    if rng.random() < 0.7:
        cab_name, (cab_tex, cab_rgb) = _pick(rng, V.CABINET_FINISHES)
        w, d, h = rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.3), rng.uniform(0.4, 0.9)
        side = int(rng.integers(4))
        along = rng.uniform(-0.5, 0.5)
        if side < 2:
            x = (half_x - d) * (1 if side == 0 else -1)
            center, half, yaw = (x, along * (half_y - w), h), (d, w, h), 0.0
        else:
            y = (half_y - d) * (1 if side == 2 else -1)
            center, half, yaw = (along * (half_x - w), y, h), (w, d, h), 0.0
        stuff.append(Stuff(V.stuff_element_id("cabinet"), "cabinet", cab_name, cab_tex, cab_rgb,
                           (Box(tuple(float(v) for v in center), tuple(float(v) for v in half), yaw),)))
        keepout.append((center[0], center[1], math.hypot(half[0], half[1]) + 0.05))

    things: list[Thing] = []
    taken: set[tuple[str, str]] = set()
    placed: list[tuple[str, float, float, float]] = []  # support, x, y, footprint
    floor_share = 0.15 if kind == "tabletop" else 0.45
    for index in range(num_things):
        shape, color, size, material, texture = _sample_attributes(rng, taken, distinct, things)
        s = float(rng.uniform(*V.SIZE_RANGES[size]))
        params, lift = _shape_params(shape, s, rng)
        yaw = float(rng.uniform(-math.pi, math.pi))
        probe = Thing(index + 1, shape, color, size, material, texture, "table", s, params, (0.0, 0.0, 0.0), yaw)
        foot = probe.footprint
        support = "floor" if rng.random() < floor_share else "table"
        spot = None
        for _ in range(60):
            if support == "table":
                lx = rng.uniform(-t_half[0] + foot + 0.02, t_half[0] - foot - 0.02)
                ly = rng.uniform(-t_half[1] + foot + 0.02, t_half[1] - foot - 0.02)
                x, y = _table_local_to_world(table, lx, ly)
            else:
                # Floor things stand near the table, where the cameras look.
                ang, dist = rng.uniform(-math.pi, math.pi), rng.uniform(math.hypot(*t_half) + 0.15, math.hypot(*t_half) + 0.9)
                x, y = table.center[0] + dist * math.cos(ang), table.center[1] + dist * math.sin(ang)
                if not (-half_x + foot + 0.05 < x < half_x - foot - 0.05 and -half_y + foot + 0.05 < y < half_y - foot - 0.05):
                    continue
                if any(math.hypot(x - kx, y - ky) < kr + foot for kx, ky, kr in keepout):
                    continue
            # Small gaps allowed: things nearly touch, so views show occlusion and clutter.
            if all(ps != support or math.hypot(x - px, y - py) > foot + pf + 0.01 for ps, px, py, pf in placed):
                spot = (float(x), float(y))
                break
        if spot is None:
            continue  # a crowded surface just gets fewer things
        base_z = table.height if support == "table" else 0.0
        thing = Thing(len(things) + 1, shape, color, size, material, texture, support, s, params,
                      (spot[0], spot[1], base_z + lift), yaw)
        things.append(thing)
        taken.add((shape, color))
        placed.append((support, spot[0], spot[1], foot))

    key = (float(table.center[0] + rng.uniform(-0.8, 0.8)), float(table.center[1] + rng.uniform(-0.8, 0.8)), ROOM_HEIGHT - 0.25)
    fill = (float(rng.uniform(-half_x + 0.5, half_x - 0.5)), float(rng.uniform(-half_y + 0.5, half_y - 0.5)), ROOM_HEIGHT - 0.3)
    warmth = rng.uniform(-0.08, 0.08)
    key_power = rng.uniform(3.2, 4.2)
    lights = (
        Light(key, (key_power * (1 + warmth), key_power, key_power * (1 - warmth))),
        Light(fill, tuple(float(v) for v in key_power * rng.uniform(0.25, 0.4) * np.array([1.0, 1.0, 1.0]))),
    )
    ambient = tuple(float(v) for v in rng.uniform(0.16, 0.24) * np.array([1.0, 1.0, 1.05]))
    return Scene(kind, room_min, room_max, table, tuple(things), tuple(stuff), lights, ambient)
