"""The words of the synthetic world: categories, colours, sizes, materials, textures and their names.

Everything that language ground truth says about an object comes from these tables, and the
exporters take the COCO category list from here, so a reader of the exported files and the
renderer agree on ids and names.

Category ids follow COCO's split: things (countable objects, ``isthing=1``) have ids 1..5, stuff
(amorphous regions and furniture, ``isthing=0``) ids 101..105. Scene *element* ids (the per-pixel
ids the renderer writes) are 1..49 for things and ``STUFF_ELEMENT_BASE + index`` for stuff; a
panoptic segment id is ``image_id * SEGMENTS_PER_IMAGE + element id``.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES: tuple[str, ...] = ("sphere", "box", "cylinder", "cone", "torus")

# Nouns a sentence may use for a shape; the first is the canonical name.
SHAPE_NOUNS: dict[str, tuple[str, ...]] = {
    "sphere": ("sphere", "ball"),
    "box": ("box", "block"),
    "cylinder": ("cylinder", "column"),
    "cone": ("cone",),
    "torus": ("torus", "ring"),
}

# Thing colours as sRGB 0..255. Names are what sentences say; hues are far enough apart that the
# name of a colour stays true under shading.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (196, 32, 30),
    "orange": (236, 118, 22),
    "yellow": (232, 196, 36),
    "green": (44, 150, 62),
    "blue": (34, 78, 196),
    "purple": (116, 52, 168),
    "pink": (236, 126, 172),
    "white": (232, 232, 228),
    "black": (34, 34, 36),
    "gray": (128, 128, 130),
}

SIZES: tuple[str, ...] = ("small", "large")
# Characteristic half-extent of a thing, metres: the gap between the ranges keeps "small" and
# "large" true whatever the shape.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.040, 0.055), "large": (0.085, 0.110)}

MATERIALS: tuple[str, ...] = ("matte", "glossy", "metallic")
MATERIAL_WEIGHTS: tuple[float, ...] = (0.5, 0.35, 0.15)

TEXTURES: tuple[str, ...] = ("plain", "striped", "checkered")
TEXTURE_WEIGHTS: tuple[float, ...] = (0.6, 0.2, 0.2)
# How a texture is said after the noun ("the red sphere with stripes"); plain says nothing.
TEXTURE_PHRASES: dict[str, str] = {"plain": "", "striped": "with stripes", "checkered": "with a checkered pattern"}

SUPPORTS: tuple[str, ...] = ("table", "floor")


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    isthing: bool
    supercategory: str
    color: tuple[int, int, int]  # panoptic visualisation colour, as in COCO's category list

    def to_coco(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "supercategory": self.supercategory,
            "isthing": int(self.isthing),
            "color": list(self.color),
        }


THING_CATEGORIES: tuple[Category, ...] = (
    Category(1, "sphere", True, "shape", (220, 20, 60)),
    Category(2, "box", True, "shape", (0, 82, 0)),
    Category(3, "cylinder", True, "shape", (0, 0, 142)),
    Category(4, "cone", True, "shape", (250, 170, 30)),
    Category(5, "torus", True, "shape", (119, 11, 32)),
)
STUFF_CATEGORIES: tuple[Category, ...] = (
    Category(101, "floor", False, "room", (128, 64, 128)),
    Category(102, "wall", False, "room", (102, 102, 156)),
    Category(103, "ceiling", False, "room", (190, 153, 153)),
    Category(104, "table", False, "furniture", (152, 251, 152)),
    Category(105, "cabinet", False, "furniture", (70, 130, 180)),
)
CATEGORIES: tuple[Category, ...] = THING_CATEGORIES + STUFF_CATEGORIES
CATEGORY_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
CATEGORY_BY_ID: dict[int, Category] = {c.id: c for c in CATEGORIES}

MAX_THINGS = 49
STUFF_ELEMENT_BASE = 50
SEGMENTS_PER_IMAGE = 100
# Panoptic PNGs hold ids below 256**3; with 100 ids per image that allows this many images.
MAX_IMAGE_ID = (256**3 - 1) // SEGMENTS_PER_IMAGE - 1


def stuff_element_id(category: str) -> int:
    """The per-pixel element id of a stuff category (one element per category, as panoptic wants)."""
    names = [c.name for c in STUFF_CATEGORIES]
    if category not in names:
        raise ValueError(f"unknown stuff category {category!r}; known: {', '.join(names)}")
    return STUFF_ELEMENT_BASE + names.index(category)


def segment_id(image_id: int, element_id: int) -> int:
    """The dataset-wide panoptic segment id (= COCO instance annotation id) of an element in an image."""
    if not 0 <= element_id < SEGMENTS_PER_IMAGE:
        raise ValueError(f"element id {element_id} out of range 0..{SEGMENTS_PER_IMAGE - 1}")
    if not 1 <= image_id <= MAX_IMAGE_ID:
        raise ValueError(f"image id {image_id} out of range 1..{MAX_IMAGE_ID}")
    return image_id * SEGMENTS_PER_IMAGE + element_id


# Stuff appearance: named paint and floor finishes. The names are what captions say about stuff.
WALL_PAINTS: dict[str, tuple[int, int, int]] = {
    "white": (226, 224, 216),
    "beige": (214, 196, 160),
    "gray": (160, 162, 164),
    "light blue": (164, 190, 214),
    "pale green": (178, 204, 170),
    "salmon": (220, 150, 128),
    "yellow": (222, 200, 120),
}
FLOOR_FINISHES: dict[str, tuple[str, tuple[int, int, int]]] = {
    # name: (texture, base colour)
    "light wooden": ("planks", (190, 146, 96)),
    "dark wooden": ("planks", (112, 72, 44)),
    "gray tiled": ("tiles", (150, 150, 148)),
    "white tiled": ("tiles", (210, 208, 200)),
    "blue carpeted": ("carpet", (70, 90, 130)),
    "red carpeted": ("carpet", (140, 50, 46)),
}
TABLE_FINISHES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "wooden": ("grain", (160, 110, 64)),
    "dark wooden": ("grain", (96, 60, 36)),
    "white": ("plain", (222, 222, 218)),
    "black": ("plain", (44, 44, 46)),
    "green": ("plain", (70, 120, 80)),
}
CABINET_FINISHES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "white": ("plain", (218, 216, 210)),
    "wooden": ("grain", (150, 104, 62)),
    "red": ("plain", (170, 40, 36)),
    "blue": ("plain", (50, 80, 150)),
    "gray": ("plain", (110, 112, 116)),
}
