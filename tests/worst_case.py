"""The heaviest requests the default limits allow, and a worker's peak memory while serving them.

Each batch is built to spend a limit to the full: the request's pixel budget
(MAX_REQUEST_PIXELS) in the formats that cost the most memory per pixel to
decode, the body limit in metadata Pillow must parse, the batch limit in
images. Shared by tests/test_memory.py and benchmarks/worst_case_memory.py.
"""
import io
import subprocess

import numpy as np
from PIL import Image

from service.config import Config

DEFAULTS = Config(models_dir=".")


def _encode(img, fmt, **options):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def _largest_square(pixels):
    side = int(pixels ** 0.5)
    while side * side > pixels:
        side -= 1
    return side


def _stroke(mode, side):
    """A blank ``side``-square image of ``mode`` with one bar of ink: compresses to almost nothing."""
    img = Image.new(mode, (side, side))
    ink = {"L": 255, "RGB": (255, 255, 255), "RGBA": (255, 255, 255, 255), "I;16": 65535}[mode]
    img.paste(ink, (side // 3, side // 4, side // 2, 3 * side // 4))
    return img


def batch(kind, limits=DEFAULTS):
    """The images (bytes) of the worst legal batch of ``kind``."""
    per_image = min(limits.max_image_pixels, limits.max_request_pixels)
    count = min(limits.max_request_pixels // per_image, limits.max_batch_images)
    side = _largest_square(per_image)
    if kind == "webp_rgba":  # lossless RGBA: the decoder holds several copies of the canvas
        return [_encode(_stroke("RGBA", side), "WEBP", lossless=True)] * count
    if kind == "png_rgba":
        return [_encode(_stroke("RGBA", side), "PNG", optimize=True)] * count
    if kind == "png_grey_bomb":
        return [_encode(_stroke("L", side), "PNG", optimize=True)] * count
    if kind == "tiff_16bit":  # 16-bit pixels are stretched in float32
        return [_encode(_stroke("I;16", side), "TIFF", compression="tiff_deflate")] * count
    if kind == "png_many_small":  # the batch limit in images, the pixel budget shared among them
        n = limits.max_batch_images
        return [_encode(_stroke("L", _largest_square(limits.max_request_pixels // n)), "PNG", optimize=True)] * n
    if kind == "webp_over_limit":  # the review's 16 WebP of 6300x6300, 1.5 kB each: refused from the header
        return [_encode(_stroke("RGBA", 6300), "WEBP", lossless=True)] * 16
    if kind == "png_iccp":  # the body limit in colour profiles that Pillow reads
        profile = np.random.default_rng(0).integers(0, 256, 150_000, dtype=np.uint8).tobytes()
        one = _encode(Image.new("RGB", (28, 28)), "PNG", icc_profile=profile)
        return [one] * min(limits.max_batch_images, limits.max_upload_bytes // (len(one) + 200))
    raise ValueError(kind)


KINDS = ("webp_rgba", "png_rgba", "png_grey_bomb", "tiff_16bit", "png_many_small", "png_iccp", "webp_over_limit")


def multipart(images, boundary="worstcaseboundary"):
    """``(body, content_type)`` of a multipart form with ``images`` in the field ``image``."""
    parts = [b"--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"%d.img\"\r\n"
             b"Content-Type: application/octet-stream\r\n\r\n%s\r\n" % (boundary.encode(), i, data)
             for i, data in enumerate(images)]
    return b"".join(parts) + b"--%s--\r\n" % boundary.encode(), f"multipart/form-data; boundary={boundary}"


def worker_pids(master_pid):
    out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def peak_rss_mb(pid):
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")
