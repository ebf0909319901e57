"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

cv_bridge is not installable outside a ROS 2 distribution, and its conversions are simple enough to
state exactly here: every common encoding, row padding through ``step``, and big-endian 16-bit data.
Bad messages raise :class:`ImageConversionError` (too large ones
:class:`~find_ros.image_header.ImageTooLarge`), both ValueErrors naming what is wrong, so a node
can log it, publish a diagnostic and keep serving.

The model side always receives RGB ``uint8`` arrays of shape (H, W, 3) (:func:`to_rgb8`). Every
decoder takes a pixel limit and checks it before any copy or decode (find_ros.image_header).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from find_ros.image_header import DEFAULT_MAX_PIXELS, ImageTooLarge, check_pixels

# encoding -> (channels, numpy dtype of one channel)
ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    "rgb8": (3, np.dtype(np.uint8)),
    "bgr8": (3, np.dtype(np.uint8)),
    "rgba8": (4, np.dtype(np.uint8)),
    "bgra8": (4, np.dtype(np.uint8)),
    "mono8": (1, np.dtype(np.uint8)),
    "8UC1": (1, np.dtype(np.uint8)),
    "8UC3": (3, np.dtype(np.uint8)),
    "mono16": (1, np.dtype(np.uint16)),
    "16UC1": (1, np.dtype(np.uint16)),
    "32FC1": (1, np.dtype(np.float32)),
}


class ImageConversionError(ValueError):
    """A message that cannot be turned into an image; the text says what was wrong."""


def image_to_numpy(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/Image into an array of shape (H, W) or (H, W, C) in its own encoding.

    The array owns its memory (it is a copy), so the message may be released afterwards. Images of
    more than ``max_pixels`` are refused before anything is copied.
    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(sorted(ENCODINGS))}"
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image: {width}x{height}")
    check_pixels(width, height, max_pixels)
    channels, dtype = ENCODINGS[encoding]
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than one row of {width} {encoding} pixels ({row_bytes} bytes)"
        )
    data = msg.data
    buffer = data if isinstance(data, (bytes, bytearray, memoryview)) else np.asarray(data, np.uint8)
    size = len(buffer)
    if size != step * height:
        raise ImageConversionError(
            f"data holds {size} bytes but step*height = {step}*{height} = {step * height}"
        )
    rows = np.frombuffer(buffer, dtype=np.uint8).reshape(height, step)[:, :row_bytes]
    pixel_dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    array = np.ascontiguousarray(rows).view(pixel_dtype).astype(dtype, copy=False)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return array.reshape(shape).copy()


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Any decoded colour or mono8 image as RGB uint8 (H, W, 3); depth encodings are refused."""
    if encoding in ("rgb8", "8UC3"):
        rgb = array
    elif encoding == "bgr8":
        rgb = array[..., ::-1]
    elif encoding == "rgba8":
        rgb = array[..., :3]
    elif encoding == "bgra8":
        rgb = array[..., 2::-1]
    elif encoding in ("mono8", "8UC1"):
        rgb = np.repeat(array[..., None], 3, axis=2)
    else:
        raise ImageConversionError(f"{encoding!r} is not a colour encoding the model can take")
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def image_msg_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/Image -> RGB uint8 (H, W, 3)."""
    return to_rgb8(image_to_numpy(msg, max_pixels), msg.encoding)


def compressed_msg_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/CompressedImage (PNG or JPEG) -> RGB uint8 (H, W, 3); the size its header declares
    is checked against ``max_pixels`` before decoding (:func:`find_ros.image_io.decode_image`)."""
    from find_ros.image_io import decode_image  # deferred: only compressed streams need OpenCV

    raw = bytes(msg.data)
    if not raw:
        raise ImageConversionError("compressed image has no data")
    try:
        return decode_image(raw, max_pixels)
    except ImageTooLarge:
        raise
    except ValueError as error:
        raise ImageConversionError(f"compressed image ({msg.format!r}, {len(raw)} bytes): {error}") from None


def numpy_to_image_msg(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """An array in ``encoding`` -> sensor_msgs/Image (little-endian, no row padding)."""
    from sensor_msgs.msg import Image

    if encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}")
    channels, dtype = ENCODINGS[encoding]
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ImageConversionError(f"array of shape {array.shape} does not fit encoding {encoding!r}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels * dtype.itemsize
    msg.data = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes()
    return msg
