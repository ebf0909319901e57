"""Ground truth of one rendered view: its segments, and what language says about them.

A *segment* is an element (thing, or all stuff of one category) with at least one visible pixel.
Things large enough to be seen (``min_area``) are *eligible*: only they are described, referred to
and used as interleave references; smaller ones still count as distractors, so an expression is
never ambiguous because of a sliver at the image border.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.camera import to_camera
from find_ros.scenes.captions import StuffFacts, grounded_caption, short_captions
from find_ros.scenes.referring import ObjectFacts, referring_expressions
from find_ros.scenes.render import Frame
from find_ros.scenes.world import Scene

MIN_AREA_FRACTION = 0.0015
MIN_AREA_PIXELS = 30


def min_area(width: int, height: int) -> int:
    """Pixels a segment needs to be described: 0.15% of the image, at least 30."""
    return max(MIN_AREA_PIXELS, int(round(MIN_AREA_FRACTION * width * height)))


@dataclass
class Segment:
    element_id: int
    category: str
    area: int
    bbox: tuple[int, int, int, int]
    eligible: bool
    attributes: dict[str, str]
    center_camera: tuple[float, float, float] | None = None  # things only
    radius: float | None = None
    visible_fraction: float | None = None

    @property
    def isthing(self) -> bool:
        return V.CATEGORY_BY_NAME[self.category].isthing

    @property
    def category_id(self) -> int:
        return V.CATEGORY_BY_NAME[self.category].id


@dataclass
class ViewAnnotation:
    segments: list[Segment]
    objects: list[ObjectFacts]
    stuff: list[StuffFacts]
    refs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    captions: list[str] = field(default_factory=list)
    grounded_short: str = ""
    grounded_long: str = ""


def view_facts(scene: Scene, frame: Frame) -> tuple[list[Segment], list[ObjectFacts], list[StuffFacts]]:
    """Segments and language facts of a frame, in element-id order."""
    threshold = min_area(frame.intrinsics.width, frame.intrinsics.height)
    things = {t.id: t for t in scene.things}
    stuff = scene.stuff_by_id()
    segments: list[Segment] = []
    objects: list[ObjectFacts] = []
    stuff_facts: list[StuffFacts] = []
    for element_id in sorted(frame.views):
        view = frame.views[element_id]
        eligible = view.area >= threshold
        if element_id in things:
            t = things[element_id]
            center = tuple(float(v) for v in to_camera(t.center[None, :], frame.world_from_camera)[0])
            attributes = {"shape": t.shape, "color": t.color, "size": t.size, "material": t.material,
                          "texture": t.texture, "support": t.support}
            segments.append(Segment(element_id, t.shape, view.area, view.bbox, eligible, attributes,
                                    center, t.radius, view.visible_fraction))
            objects.append(ObjectFacts(element_id, t.shape, t.color, t.size, t.material, t.texture, t.support,
                                       center, t.radius, view.bbox, view.area, view.visible_fraction, eligible))
        else:
            s = stuff[element_id]
            segments.append(Segment(element_id, s.category, view.area, view.bbox, eligible,
                                    {"finish": s.finish, "texture": s.texture}))
            stuff_facts.append(StuffFacts(element_id, s.category, s.finish, view.area, eligible))
    return segments, objects, stuff_facts


def annotate(scene: Scene, frame: Frame, image_id: int, rng: np.random.Generator) -> ViewAnnotation:
    """Segments, referring expressions, captions and grounded captions of a view of ``scene``.
    Grounded captions link entities by dataset-wide segment id (``vocabulary.segment_id``)."""
    segments, objects, stuff = view_facts(scene, frame)

    def segment_of(element_id: int) -> int:
        return V.segment_id(image_id, element_id)

    annotation = ViewAnnotation(segments, objects, stuff)
    annotation.refs = referring_expressions(objects, frame.intrinsics.width, rng)
    annotation.captions = short_captions(objects, stuff, rng)
    annotation.grounded_short = grounded_caption(objects, stuff, segment_of, rng, long=False)
    annotation.grounded_long = grounded_caption(objects, stuff, segment_of, rng, long=True)
    return annotation
