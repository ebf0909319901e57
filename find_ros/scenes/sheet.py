"""A contact sheet of the synthetic world: rendered views, their panoptic ground truth and the
grounded caption, each entity in the colour of its mask (``find-ros scenes sheet``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from find_ros.scenes import vocabulary as V
from find_ros.scenes.dataset import Example, render_example

_BACKGROUND = (24, 26, 30)
_TEXT = (226, 228, 232)
_MUTED = (150, 154, 162)
_MARKUP = re.compile(r"\[(\d+)\]<([^<>]+)>")
# Bright, distinct colours for things; stuff gets muted tones of its category colour.
_THING_COLOURS = [(255, 99, 71), (64, 196, 255), (255, 214, 0), (118, 255, 3), (234, 128, 252), (255, 145, 0),
                  (29, 233, 182), (255, 64, 129), (179, 136, 255), (0, 229, 255), (198, 255, 0), (255, 171, 145)]


def _font(size: int, bold: bool = False):  # noqa: ANN202 - PIL font
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for path in (f"/usr/share/fonts/truetype/dejavu/{name}", name):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)  # Pillow's built-in scalable font


def segment_colours(example: Example) -> dict[int, tuple[int, int, int]]:
    colours = {}
    for k, segment in enumerate(example.annotation.segments):
        if segment.isthing:
            colours[segment.element_id] = _THING_COLOURS[segment.element_id % len(_THING_COLOURS)]
        else:
            c = np.array(V.CATEGORY_BY_NAME[segment.category].color)
            colours[segment.element_id] = tuple(int(v) for v in (0.55 * c + 0.45 * 110))
    return colours


def overlay(example: Example, colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """The image with every segment tinted in its colour and outlined."""
    ids = example.frame.ids
    rgb = example.frame.rgb.astype(np.float64)
    paint = np.zeros_like(rgb)
    for element_id, colour in colours.items():
        paint[ids == element_id] = colour
    things = np.isin(ids, [s.element_id for s in example.annotation.segments if s.isthing])
    alpha = np.where(things, 0.6, 0.45)[..., None]
    out = rgb * (1 - alpha) + paint * alpha
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    out[edge] = (255, 255, 255)
    return out.astype(np.uint8)


def _runs(sentence_raw: str) -> list[tuple[str, int | None]]:
    """Caption split into (text, segment id or None) runs."""
    runs, cursor = [], 0
    for match in _MARKUP.finditer(sentence_raw):
        if match.start() > cursor:
            runs.append((sentence_raw[cursor : match.start()], None))
        runs.append((f"{match.group(2)} [{match.group(1)}]", int(match.group(1))))
        cursor = match.end()
    if cursor < len(sentence_raw):
        runs.append((sentence_raw[cursor:], None))
    return runs


def _draw_caption(draw, x: int, y: int, width: int, sentence_raw: str, colour_of: dict[int, tuple[int, int, int]],
                  font, line_height: int) -> int:  # noqa: ANN001
    """Word-wrapped caption; linked phrases in their segment colour. Returns the y below the text."""
    # (word, colour, glued): a glued word follows the previous one without a space ("[151]" + ".").
    words: list[tuple[str, tuple[int, int, int], bool]] = []
    previous = " "
    for text, segment in _runs(sentence_raw):
        colour = colour_of.get(segment, _TEXT) if segment is not None else _TEXT
        for k, word in enumerate(text.split()):
            words.append((word, colour, k == 0 and not text[0].isspace() and not previous[-1].isspace()))
        previous = text
    cx = x
    space = font.getlength(" ")
    for word, colour, glued in words:
        w = font.getlength(word)
        if glued:
            cx -= space
        if cx > x and cx + w > x + width and not glued:
            cx, y = x, y + line_height
        draw.text((cx, y), word, font=font, fill=colour)
        cx += w + space
    return y + line_height


def contact_sheet(seed: int = 0, views: int = 6, size: tuple[int, int] = (320, 240), columns: int = 2) -> np.ndarray:
    """RGB sheet of ``views`` panels: rendered image, panoptic overlay, grounded paragraph."""
    from PIL import Image, ImageDraw

    if views < 1:
        raise ValueError(f"--views must be at least 1, got {views}")
    examples: list[tuple[int, Example]] = []  # (image id its captions were written with, example)
    index = 0
    while len(examples) < views and index < views * 20:
        example = render_example(seed, "sheet", index, index + 1, size)
        index += 1
        # Show views with several clearly visible objects: that is what the sheet is about.
        if sum(s.eligible and s.isthing for s in example.annotation.segments) >= 3:
            examples.append((index, example))
    w, h = size
    pad, gap = 16, 6
    caption_font, label_font, title_font = _font(13), _font(11, bold=True), _font(18, bold=True)
    line_height = 18
    panel_w = 2 * w + gap
    rows = (len(examples) + columns - 1) // columns
    caption_h = 7 * line_height + 10
    panel_h = h + caption_h
    title_h = 54
    sheet = Image.new("RGB", (pad + columns * (panel_w + pad), title_h + rows * (panel_h + pad) + pad), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 12), "find_ros synthetic world: rendered views, panoptic ground truth, FIND-Bench grounded captions",
              font=title_font, fill=_TEXT)
    draw.text((pad, 34), f"open3d ray casting, shadow rays, procedural materials, sensor noise; seed {seed}, {w}x{h}. "
              "Caption phrases are coloured like their masks; [n] is the panoptic segment id.", font=_font(12), fill=_MUTED)
    for k, (image_id, example) in enumerate(examples):
        col, row = k % columns, k // columns
        x0, y0 = pad + col * (panel_w + pad), title_h + row * (panel_h + pad)
        colours = segment_colours(example)
        sheet.paste(Image.fromarray(example.frame.rgb), (x0, y0))
        sheet.paste(Image.fromarray(overlay(example, colours)), (x0 + w + gap, y0))
        for segment in example.annotation.segments:
            if segment.isthing and segment.eligible:
                bx, by, bw, bh = segment.bbox
                label = str(V.segment_id(image_id, segment.element_id))
                tx, ty = x0 + w + gap + bx + bw / 2 - label_font.getlength(label) / 2, y0 + by + bh / 2 - 6
                draw.text((tx, ty), label, font=label_font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        by_segment = {V.segment_id(image_id, e): c for e, c in colours.items()}
        _draw_caption(draw, x0, y0 + h + 8, panel_w, example.annotation.grounded_long, by_segment, caption_font, line_height)
    return np.asarray(sheet)


def write_contact_sheet(out: str | Path, seed: int = 0, views: int = 6, size: tuple[int, int] = (320, 240)) -> Path:
    from find_ros.scenes.files import write_image

    return write_image(Path(out), contact_sheet(seed, views, size))
