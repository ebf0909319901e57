"""Inputs a perception node must survive: what the node tests and the soak benchmark send it.

Kept in the package so the tests and ``benchmarks/perception.py --soak`` attack the nodes with the
same messages. Each entry names the reason the node is expected to give.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np


def png_bomb(width: int = 12000, height: int = 12000) -> bytes:
    """A valid PNG of width x height black pixels: a few hundred kB that decode to width*height*3
    bytes (12000 x 12000: 420 kB of file, 432 MB of pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(width * 3)  # filter byte + one row of pixels
    rows_per_block = 200
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * rows_per_block) for _ in range(height // rows_per_block))
    idat += packer.compress(row * (height % rows_per_block)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def malformed_compressed_frames(rgb: np.ndarray) -> list[tuple[str, Any]]:
    """(expected reason, sensor_msgs/CompressedImage) pairs: a bomb, no image, empty, and a PNG of
    ``rgb`` cut in half (its header is fine, its pixels are not there)."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()
    return [
        ("exceeds the limit", CompressedImage(format="png", data=png_bomb())),
        ("is not a readable PNG or JPEG header", CompressedImage(format="jpeg", data=b"\x00not an image" * 50)),
        ("compressed image has no data", CompressedImage(format="jpeg", data=b"")),
        ("does not decode", CompressedImage(format="png", data=png[: len(png) // 2])),
    ]


def malformed_raw_frames(rgb: np.ndarray) -> list[tuple[str, Any]]:
    """(expected reason, sensor_msgs/Image) pairs: wrong encoding, bad step, empty."""
    from find_ros.nodes.images import numpy_to_image_msg

    def broken(**fields: Any) -> Any:
        msg = numpy_to_image_msg(rgb, "rgb8")
        for key, value in fields.items():
            setattr(msg, key, value)
        return msg

    return [
        ("unsupported image encoding", broken(encoding="yuv422_yuy2")),
        ("smaller than one row", broken(step=7)),
        ("empty image", broken(height=0, width=0, data=b"")),
    ]
