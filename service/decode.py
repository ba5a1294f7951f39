"""Uploaded bytes to pixels, safely: the only code that parses what clients send as images.

Decoding is where hostile input arrives, so the pixel limit is checked from the
header, before a single row is decompressed: a 50-byte PNG can declare
100000x100000 pixels, and loading it would allocate ten gigabytes. Only the
formats people upload are opened, and every failure becomes one of the two
errors below, whose messages never quote a decoder's own.
"""
import io
import math
import struct
import warnings

import pyspng
from PIL import Image

# Formats a browser, phone or scanner produces. Pillow can open more (EPS even
# runs Ghostscript), but every extra parser is attack surface for no user.
# (Phone photos that are MPO files are opened by the JPEG parser.)
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
JPEG_DRAFT_SIDE = 1024  # big JPEGs decode at 1/2, 1/4 or 1/8 scale, never below this side
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


Image.init()  # register the decoders now rather than during a worker's first request


class ImageError(ValueError):
    """An upload that cannot become a digit image; ``str()`` is safe to show a client."""


class ImageTooLarge(ImageError):
    """More pixels than allowed (HTTP 413)."""


class InvalidImage(ImageError):
    """Empty, not an image, or undecodable (HTTP 400)."""


def decode_image(data, *, max_pixels):
    """The first frame of the image in ``data`` (bytes), loaded, at most ``max_pixels`` pixels.

    Raises ImageTooLarge or InvalidImage with a short message that never
    quotes Pillow's exception text (it can name internals or file paths).
    """
    return load(open_image(data, max_pixels=max_pixels))


def open_image(data, *, max_pixels):
    """The image in ``data``, its header read and checked but no pixel decoded.

    ``img.size`` is the size it will decode at: big JPEGs are set to decode
    at reduced scale, and it is that size the limit applies to. Loading is
    left to :func:`load`, so that a request can check all of its images'
    sizes before it decodes any.
    """
    if not data:
        raise InvalidImage("the upload is empty")
    # Pillow warns (rather than raises) between 1x and 2x its own bomb limit;
    # here that is an error too. catch_warnings is process-global, which is
    # safe here: a gevent worker runs this code in one greenlet at a time.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data" on odd files
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return _open(data, max_pixels)


def load(img):
    """Decode ``img`` (from :func:`open_image`): its first frame only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img.load()  # multi-frame images are opened at frame 0
        except Exception:  # Pillow raises OSError, SyntaxError, ValueError, struct.error ...
            raise InvalidImage("the image data is truncated or corrupt") from None
    return img


def decode_grey_png(data, *, max_pixels):
    """The pixels of ``data`` as a (height, width) uint8 array if it is a plain 8-bit
    greyscale PNG, else None, which leaves the file to :func:`decode_image`.

    That is the file MNIST tools and NumPy clients write, and batches are
    mostly made of it. libspng (pyspng) decodes a 28x28 one in about a fifth of
    the time Pillow takes, most of which is Python. Only files whose pixels
    Pillow would give unchanged take this path: no transparency key, no EXIF
    rotation, not interlaced. The header is read here, so the pixel limit
    holds before anything is decompressed; any file libspng refuses goes to
    Pillow, which decides what the client is told.
    """
    return load_grey_png(data) if plain_grey_png(data, max_pixels) is not None else None


def load_grey_png(data):
    """libspng's decoding of a PNG that :func:`plain_grey_png` accepted, or None if it refuses the file."""
    try:
        return pyspng.load(data)
    except Exception:  # RuntimeError for corrupt data, ValueError and others for odd input
        return None


def plain_grey_png(data, max_pixels):
    """``(width, height)`` from the header if ``data`` is a PNG :func:`decode_grey_png` takes, else None."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if (depth, colour, interlace) != (8, 0, 0) or not 0 < width * height <= max_pixels:
        return None
    if b"tRNS" in data or b"eXIf" in data:  # (a false hit in compressed bytes only costs speed)
        return None
    return width, height


def _open(data, max_pixels):
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("the image has too many pixels") from None
    except Image.UnidentifiedImageError:
        raise InvalidImage("the upload is not an image in a supported format "
                           "(PNG, JPEG, GIF, BMP, TIFF, WebP)") from None
    except Exception:
        raise InvalidImage("the image header is corrupt") from None
    width, height = img.size
    if width < 1 or height < 1:
        raise InvalidImage("the image has no pixels")
    if img.format in ("JPEG", "MPO") and max(width, height) > 2 * JPEG_DRAFT_SIDE:
        scale = JPEG_DRAFT_SIDE / max(width, height)  # DCT scaling: decode 4-64x less
        img.draft(img.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    if img.size[0] * img.size[1] > max_pixels:  # as decoded: a 48 MP photo decodes at 12 or 3 MP
        raise ImageTooLarge(f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels")
    return img
