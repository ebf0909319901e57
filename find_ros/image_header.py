"""The size an image declares, read before any pixel is decoded, and the limit it must stay under.

A 400 KB PNG can declare 12000x12000 pixels: decoding it takes half a gigabyte and tens of seconds.
So every compressed image find_ros decodes (camera frames, the frames a memory keeps, image files) has
its size read from its header first (Pillow reads only e.g. the PNG IHDR chunk or the JPEG SOF segment
when an image is opened) and is refused above a pixel limit: the nodes' ``max_image_pixels``, or
:data:`DEFAULT_MAX_PIXELS`. Raw frames and instruction crops are held to the same limit from their
message fields. Compressed frames on a topic are PNG or JPEG, the two formats of image_transport's
``compressed`` plugin.
"""

from __future__ import annotations

import io
import warnings

COMPRESSED_FORMATS = ("PNG", "JPEG")
# Default of the nodes' max_image_pixels: a 4K UHD frame, the largest mode of common cameras.
DEFAULT_MAX_PIXELS = 3840 * 2160


class ImageTooLarge(ValueError):
    """An image that declares more pixels than the limit; refused before decoding."""


def check_pixels(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """Raise :class:`ImageTooLarge` when ``width`` x ``height`` exceeds ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{what} of {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} "
            "(the nodes' parameter max_image_pixels); refused before decoding"
        )


def compressed_size(data: bytes, formats: tuple[str, ...] | None = COMPRESSED_FORMATS) -> tuple[int, int, str]:
    """(width, height, format) declared by the header of an image in one of ``formats`` (Pillow's
    names; None: any format Pillow reads); ValueError if it is none of them."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # Pillow warns about (or refuses) huge declared sizes itself; the caller's limit decides.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=formats) as image:
                return int(image.width), int(image.height), str(image.format)
        except Image.DecompressionBombError as error:
            raise ImageTooLarge(f"compressed image declares too many pixels: {error}") from None
        except UnidentifiedImageError:  # its text names only Pillow's in-memory file
            why = "no format recognises it"
        except (OSError, SyntaxError) as error:
            why = str(error)
    kinds = "image" if formats is None else " or ".join(formats)
    raise ValueError(f"{len(data)} bytes are not a readable {kinds} header ({why})")
