"""Images as RGB uint8 arrays: files read and written, in-memory JPEG (the frames the nodes
remember), and crops cut around a box. Every decode is held to a pixel limit read from the image's
header first (find_ros.image_header). Errors name the file or what did not decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from find_ros.image_header import COMPRESSED_FORMATS, DEFAULT_MAX_PIXELS, check_pixels, compressed_size


def read_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file (png, jpg, ...) as RGB uint8 of shape (H, W, 3); the size its header declares
    is held to ``max_pixels`` before decoding (:func:`decode_image`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        return decode_image(path.read_bytes(), max_pixels, formats=None)
    except ValueError as error:
        raise type(error)(f"{path}: {error}") from None


def write_rgb(path: str | Path, rgb: np.ndarray) -> Path:
    """Write RGB uint8 (H, W, 3) to ``path``; the format follows the suffix."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise ValueError(f"{path}: could not write image (unsupported suffix?)")
    return path


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """RGB uint8 (H, W, 3) as JPEG bytes."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("image could not be JPEG-encoded")
    return data.tobytes()


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                 formats: tuple[str, ...] | None = COMPRESSED_FORMATS) -> np.ndarray:
    """Compressed image bytes as RGB uint8 (H, W, 3). The size their header declares is read first
    and refused above ``max_pixels`` (:class:`~find_ros.image_header.ImageTooLarge`), so no caller
    can be made to decode a bomb, whoever wrote the bytes (a camera, a memory loaded from disk, a
    file). ValueError if they are not an image in one of ``formats`` (None: any that Pillow knows),
    do not decode, or decode to another size than their header declares."""
    import cv2

    width, height, kind = compressed_size(data, formats)
    check_pixels(width, height, max_pixels, f"compressed {kind} image")
    buffer = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{kind} image ({buffer.size} bytes) does not decode")
    # The decoder must read the size the header declared (turned a quarter by an EXIF orientation).
    if bgr.shape[:2] not in ((height, width), (width, height)):
        raise ValueError(f"{kind} image decoded to {bgr.shape[1]}x{bgr.shape[0]}, its header declares {width}x{height}")
    return np.ascontiguousarray(bgr[..., ::-1])


# How much a visual entity's crop grows around its object's box when a demo or an evaluation cuts
# one for a user: some background, as a person cropping a photo would leave.
ENTITY_CROP_CONTEXT = 1.3


def crop_around(rgb: np.ndarray, box: tuple[float, float, float, float], context: float = 1.0,
                min_side: int = 1) -> np.ndarray:
    """The part of ``rgb`` around ``box`` (x0, y0, x1, y1; x1/y1 exclusive), grown ``context``
    times about its centre and to at least ``min_side`` pixels a side, shifted to stay inside the
    image: how a visual entity's crop is cut from a frame, alike in training, demos and benchmarks."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"empty box {box}")
    ch = int(min(h, max(min_side, round(context * (y1 - y0)))))
    cw = int(min(w, max(min_side, round(context * (x1 - x0)))))
    top = int(np.clip(round((y0 + y1) / 2 - ch / 2), 0, h - ch))
    left = int(np.clip(round((x0 + x1) / 2 - cw / 2), 0, w - cw))
    return rgb[top : top + ch, left : left + cw]

