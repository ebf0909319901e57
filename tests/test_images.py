"""sensor_msgs/Image conversions: every common encoding, row padding, endianness, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image

from find_ros.nodes.images import ImageConversionError, image_msg_to_rgb, image_to_numpy, numpy_to_image_msg

RNG = np.random.default_rng(3)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def _padded(array: np.ndarray, encoding: str, pad: int, bigendian: bool = False) -> Image:
    """A message whose rows carry `pad` bytes of padding, as some camera drivers send."""
    a = array.astype(array.dtype.newbyteorder(">" if bigendian else "<"))
    rows = a.reshape(a.shape[0], -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=int(bigendian))
    msg.step = rows.shape[1]
    msg.data = rows.tobytes()
    return msg


@pytest.mark.parametrize(
    "encoding, array, expected_rgb",
    [
        ("rgb8", RGB, RGB),
        ("bgr8", RGB[..., ::-1].copy(), RGB),
        ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)]), RGB),
        ("bgra8", np.dstack([RGB[..., ::-1], np.full(RGB.shape[:2], 9, np.uint8)]), RGB),
        ("mono8", RGB[..., 0].copy(), np.repeat(RGB[..., :1], 3, axis=2)),
    ],
)
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_with_and_without_row_padding(encoding, array, expected_rgb, pad) -> None:
    msg = _padded(array, encoding, pad)
    assert np.array_equal(image_msg_to_rgb(msg), expected_rgb)


@pytest.mark.parametrize("bigendian", [False, True])
def test_16uc1_depth_keeps_values_in_either_byte_order(bigendian) -> None:
    depth = RNG.integers(0, 65535, (4, 6), dtype=np.uint16)
    got = image_to_numpy(_padded(depth, "16UC1", 2, bigendian))
    assert got.dtype == np.uint16 and np.array_equal(got, depth)


def test_round_trip_through_numpy_to_image_msg() -> None:
    assert np.array_equal(image_msg_to_rgb(numpy_to_image_msg(RGB, "rgb8")), RGB)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: setattr(m, "encoding", "yuv422_yuy2"), "unsupported image encoding"),
        (lambda m: setattr(m, "step", 3), "smaller than one row"),
        (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "step\\*height"),
        (lambda m: (setattr(m, "height", 0), setattr(m, "data", b"")), "empty image"),
    ],
)
def test_bad_messages_raise_a_clear_error(mutate, message) -> None:
    msg = numpy_to_image_msg(RGB, "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=message):
        image_msg_to_rgb(msg)


def test_depth_is_not_taken_as_colour() -> None:
    with pytest.raises(ImageConversionError, match="not a colour encoding"):
        image_msg_to_rgb(numpy_to_image_msg(np.zeros((2, 2), np.uint16), "16UC1"))


def test_a_compressed_bomb_is_refused_from_its_header() -> None:
    from sensor_msgs.msg import CompressedImage

    from find_ros.nodes.bad_input import png_bomb
    from find_ros.image_header import ImageTooLarge, compressed_size
    from find_ros.nodes.images import compressed_msg_to_rgb

    bomb = png_bomb(12000, 12000)
    assert compressed_size(bomb) == (12000, 12000, "PNG")
    with pytest.raises(ImageTooLarge, match="12000x12000 = 144000000 pixels exceeds the limit of 8294400"):
        compressed_msg_to_rgb(CompressedImage(format="png", data=bomb))


def test_compressed_frames_are_png_or_jpeg_and_their_size_is_read_from_the_header() -> None:
    import cv2
    from sensor_msgs.msg import CompressedImage

    from find_ros.image_header import ImageTooLarge, compressed_size
    from find_ros.nodes.images import compressed_msg_to_rgb

    jpeg = cv2.imencode(".jpg", RGB)[1].tobytes()
    assert compressed_size(jpeg) == (7, 5, "JPEG")
    assert compressed_msg_to_rgb(CompressedImage(format="jpeg", data=jpeg)).shape == (5, 7, 3)
    with pytest.raises(ImageTooLarge, match="exceeds the limit of 34"):
        compressed_msg_to_rgb(CompressedImage(format="jpeg", data=jpeg), max_pixels=34)
    bmp = cv2.imencode(".bmp", RGB)[1].tobytes()
    with pytest.raises(ValueError, match="not a readable PNG or JPEG header"):
        compressed_msg_to_rgb(CompressedImage(format="bmp", data=bmp))


def test_a_raw_frame_over_the_limit_is_refused_before_it_is_copied() -> None:
    from find_ros.image_header import ImageTooLarge

    msg = numpy_to_image_msg(RGB, "rgb8")
    msg.height, msg.width = 12000, 12000  # the header alone decides; the data is never looked at
    with pytest.raises(ImageTooLarge, match="12000x12000"):
        image_msg_to_rgb(msg)
    assert image_msg_to_rgb(numpy_to_image_msg(RGB, "rgb8"), max_pixels=35).shape == (5, 7, 3)
    with pytest.raises(ImageTooLarge, match="exceeds the limit of 34"):
        image_msg_to_rgb(numpy_to_image_msg(RGB, "rgb8"), max_pixels=34)


def test_every_decoder_reads_the_declared_size_first(tmp_path) -> None:
    """decode_image and read_rgb (memories' pictures, image files) refuse a bomb from its header, as
    the camera path does, and name the file; a limit of the caller's own is honoured."""
    import cv2

    from find_ros.image_header import ImageTooLarge
    from find_ros.image_io import decode_image, read_rgb
    from find_ros.nodes.bad_input import png_bomb

    with pytest.raises(ImageTooLarge, match="PNG image of 12000x12000"):
        decode_image(png_bomb())
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    with pytest.raises(ImageTooLarge, match=f"{bomb}: compressed PNG image of 12000x12000"):
        read_rgb(bomb)
    jpeg = cv2.imencode(".jpg", RGB)[1].tobytes()
    assert decode_image(jpeg).shape == (5, 7, 3)
    with pytest.raises(ImageTooLarge, match="7x5 = 35 pixels exceeds the limit of 34"):
        decode_image(jpeg, max_pixels=34)
    with pytest.raises(ValueError, match="not a readable PNG or JPEG header"):
        decode_image(b"not an image at all")
    bmp = tmp_path / "frame.bmp"  # files may be any format Pillow reads, camera frames only PNG or JPEG
    bmp.write_bytes(cv2.imencode(".bmp", np.ascontiguousarray(RGB[..., ::-1]))[1].tobytes())
    assert np.array_equal(read_rgb(bmp), RGB)
