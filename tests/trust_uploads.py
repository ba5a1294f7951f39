"""Uploads for checking answers an app can trust: things that are no digit, and written numbers.

Beside :mod:`tests.uploads` (one known digit per upload), these are the
pictures a service must not answer with a confident digit -- letters, clothes
from Fashion-MNIST, scribbles, noise, empty canvases and empty paper -- and
numbers of 2-6 MNIST test digits side by side, for ``/read``. Each generator
returns the encoded bytes a person would really send; numbers also return
their text. All randomness comes from the ``rng`` passed in.

    data = letter(np.random.default_rng(0), held_out_fonts(find_fonts()))
    data, text = number(images, labels, np.random.default_rng(0), length=4, touching=True, background="paper")
"""
import fnmatch
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tests.uploads import (
    DESKS,
    INKS,
    PAPERS,
    encode,
    font_digit,
    jitter,
    lighting,
    noisy,
    painted,
    pick,
    placed,
    strokes,
)
from trainer import nondigits

MISSING = "\U000F0000"  # a private-use code point no font draws: what a font shows for a glyph it lacks


# -- not digits ------------------------------------------------------------------
def held_out_fonts(fonts):
    """The fonts of ``fonts`` from families the trainer never draws non-digits in."""
    return [f for f in fonts if not any(fnmatch.fnmatch(f, g) for g in nondigits.FONT_GLOBS)]


@lru_cache(maxsize=64)
def drawn_characters(font_path):
    """The characters of ``nondigits.CHARACTERS`` that ``font_path`` really draws (not a box, not nothing)."""
    font = ImageFont.truetype(font_path, 48)

    def ink(char):
        img = Image.new("L", (96, 96))
        ImageDraw.Draw(img).text((48, 48), char, font=font, fill=255, anchor="mm")
        return np.asarray(img)

    lacking = ink(MISSING)
    return "".join(c for c in nondigits.CHARACTERS if ink(c).any() and not np.array_equal(ink(c), lacking))


def letter(rng, fonts):
    """A letter or symbol of ``nondigits.CHARACTERS`` typed in one of ``fonts``, as ``font_digit``
    types digits: any size, on paper or in dark mode, PNG or JPEG. Fonts lacking it are not asked."""
    font = pick(rng, fonts)
    chars = drawn_characters(font)
    return font_digit(pick(rng, chars), rng, [font])


def fashion(image):
    """A Fashion-MNIST image (28x28 uint8, white on black) as it is, a greyscale PNG."""
    return encode(Image.fromarray(image), "PNG")


def fashion_on_paper(image, rng):
    """The same garment printed dark on paper and photographed: enlarged, lit unevenly, noisy, JPEG."""
    side = int(rng.integers(150, 400))
    up = Image.fromarray(image).resize((int(side * rng.uniform(0.5, 0.9)),) * 2, Image.Resampling.BICUBIC)
    alpha = placed(np.asarray(up, np.float32) / 255, (side, side), rng)
    rgb = painted(alpha, jitter(pick(rng, PAPERS), rng), pick(rng, INKS)) * lighting((side, side), rng, 0.2)
    return encode(Image.fromarray(noisy(rgb, rng, 3)), "JPEG", quality=int(rng.integers(70, 90)))


def scribble(rng):
    """A tangle drawn on a canvas: 1-3 smooth strokes through 6-15 random points each, thick brush."""
    side = int(rng.choice([200, 280, 300, 400]))
    img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    width = int(side * rng.uniform(0.02, 0.06))
    for _ in range(int(rng.integers(1, 4))):
        points = rng.uniform(0.1, 0.9, (int(rng.integers(6, 16)), 2)) * side
        draw.line([tuple(p) for p in _smooth(points)], fill=255, width=width, joint="curve")
    alpha = np.asarray(img.filter(ImageFilter.GaussianBlur(1)), np.float32) / 255
    return encode(Image.fromarray(painted(alpha, (255, 255, 255), pick(rng, INKS))), "PNG")


def _smooth(points, steps=10):
    """A Catmull-Rom curve through ``points: (k, 2)``: ``(steps * (k - 1), 2)`` points."""
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for a, b, c, d in zip(p, p[1:], p[2:], p[3:]):
        out.append(0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t ** 2
                          + (3 * b - a - 3 * c + d) * t ** 3))
    return np.concatenate(out)


NOISE_SIZES = [(28, 28), (64, 64), (200, 200), (280, 280), (640, 480)]


def noise(rng):
    """Random noise of a random size: uniform, Gaussian, salt-and-pepper or blotchy; grey or colour."""
    w, h = pick(rng, NOISE_SIZES)
    channels = (h, w) if rng.random() < 0.5 else (h, w, 3)
    kind = rng.integers(4)
    if kind == 0:
        pixels = rng.uniform(0, 255, channels)
    elif kind == 1:
        pixels = rng.normal(128, rng.uniform(20, 70), channels)
    elif kind == 2:
        pixels = np.where(rng.random(channels) < rng.uniform(0.02, 0.3), rng.choice([0, 255], channels), 200.0)
    else:
        small = rng.uniform(0, 255, (max(h // 16, 2), max(w // 16, 2)) + channels[2:]).astype(np.uint8)
        pixels = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), np.float32)
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return encode(img, "PNG") if rng.random() < 0.5 else encode(img.convert("RGB"), "JPEG", quality=85)


def blank_canvas(rng):
    """An empty canvas as the page and apps send it: the page's black 280x280 pad, a 28x28 black
    field, white (RGB or opaque RGBA), fully transparent, or dark mode; PNG."""
    kind = rng.integers(6)
    side = int(rng.choice([200, 280, 300, 400, 512]))
    if kind == 0:
        return encode(Image.new("RGB", (280, 280), (0, 0, 0)), "PNG")
    if kind == 1:
        return encode(Image.new("L", (28, 28), 0), "PNG")
    if kind == 2:
        return encode(Image.new("RGB", (side, side), (255, 255, 255)), "PNG")
    if kind == 3:
        return encode(Image.new("RGBA", (side, side), (255, 255, 255, 255)), "PNG")
    if kind == 4:
        return encode(Image.new("RGBA", (side, side), (0, 0, 0, 0) if rng.random() < 0.5 else (255,) * 3 + (0,)), "PNG")
    return encode(Image.new("RGB", (side, side), (30, 30, 35)), "PNG")


def blank_paper(rng, ruled=False, desk=None):
    """A phone photo of an empty sheet: paper colour, uneven light, sensor noise, blur, JPEG.
    ``ruled``: a notebook page, blue or grey lines; ``desk``: the sheet lies turned on a darker
    desk that shows around it (None: 40% of the time)."""
    w, h = pick(rng, [(640, 480), (480, 640), (800, 600)])
    page = np.ones((h, w, 3), np.float32) * jitter(pick(rng, PAPERS), rng)
    if ruled:
        spacing = int(rng.uniform(0.06, 0.1) * h)
        line = np.asarray(pick(rng, [(120, 160, 220), (150, 150, 150)]), np.float32)
        for y in range(int(rng.integers(spacing)), h, spacing):
            page[y:y + 2] = page[y:y + 2] * 0.5 + line * 0.5
    if rng.random() < 0.4 if desk is None else desk:
        sheet = _sheet((h, w), rng)
        page = page * sheet + jitter(pick(rng, DESKS), rng, 12) * (1 - sheet)
    rgb = page * lighting((h, w), rng, rng.uniform(0.05, 0.35))
    img = Image.fromarray(noisy(rgb, rng, rng.uniform(2, 6))).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    return encode(img, "JPEG", quality=int(rng.integers(60, 86)))


def _sheet(shape, rng):
    """``(h, w, 1)`` float32: 1 on a sheet filling 70-95% of the frame, slightly turned, 0 on the desk."""
    h, w = shape
    img = Image.new("L", (w, h), 255).resize((int(w * rng.uniform(0.7, 0.95)), int(h * rng.uniform(0.7, 0.95))))
    img = img.rotate(rng.uniform(-8, 8), Image.Resampling.BILINEAR, expand=True)
    frame = Image.new("L", (w, h), 0)
    frame.paste(img, ((w - img.width) // 2, (h - img.height) // 2))
    return np.asarray(frame, np.float32)[..., None] / 255


# -- numbers ---------------------------------------------------------------------
def number(images, labels, rng, length, touching=False, background="canvas"):
    """``length`` random MNIST digits from ``images``/``labels`` written left to right: ``(bytes, text)``.

    Each digit is scaled to a common ink height, then by up to 15% either way,
    and shifted up or down by up to 8% of the height. Apart (default), 15-50%
    of the height lies between two digits' ink boxes; ``touching``, the boxes
    abut or overlap by 1-2 pixels. ``background``: ``"canvas"`` (dark ink on
    white, PNG) or ``"paper"`` (a phone photo: paper colour, light, noise,
    blur, JPEG). A margin of a quarter of the height keeps the number off
    the picture's edges.
    """
    picks = rng.integers(len(images), size=length)
    scales, shifts = rng.uniform(0.85, 1.15, length), rng.uniform(-0.08, 0.08, length)
    gaps = rng.integers(0, 3, length - 1) if touching else rng.uniform(0.15, 0.5, length - 1)
    pen = rng.uniform(0.25, 0.45) if background == "canvas" else rng.uniform(0.3, 0.5)
    text = "".join(str(int(labels[j])) for j in picks)

    def written(height):
        return np.pad(number_alpha(images[picks], scales, shifts, gaps, touching, height, pen), height // 4)

    if background == "canvas":
        alpha = written(int(rng.integers(40, 121)))
        h, w = alpha.shape
        frame = (int(h * rng.uniform(1.1, 2)), int(w + h * rng.uniform(0, 1)))
        rgb = painted(placed(alpha, frame, rng), (255, 255, 255), pick(rng, INKS))
        return encode(Image.fromarray(rgb), "PNG"), text
    w, h = pick(rng, [(640, 480), (800, 600), (1024, 768)])
    height = int(rng.uniform(0.12, 0.3) * h)
    alpha = written(height)
    if alpha.shape[1] > 0.9 * w:  # too long for the frame at that size: written smaller
        alpha = written(int(height * 0.85 * w / alpha.shape[1]))
    rgb = painted(placed(alpha, (h, w), rng), jitter(pick(rng, PAPERS), rng), pick(rng, INKS))
    rgb = rgb * lighting((h, w), rng, rng.uniform(0.1, 0.35))
    img = Image.fromarray(noisy(rgb, rng, rng.uniform(2, 5))).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
    return encode(img, "JPEG", quality=int(rng.integers(65, 90))), text


def number_alpha(digits, scales, shifts, gaps, touching, height, pen):
    """The ink of ``digits: (k, 28, 28)`` side by side, ``(h, w)`` float32 in [0, 1], tightly cropped.

    Each digit's ink is ``height`` pixels tall times its ``scale``; a
    ``shift`` moves it down by that fraction of ``height``; ``gaps`` are
    fractions of ``height`` between ink boxes, or when ``touching`` pixels by
    which the boxes overlap (0 = they abut).
    """
    inks = [digit_ink(d, height * s, pen) for d, s in zip(digits, scales)]
    bottoms = [int(height * (1.4 + shift)) for shift in shifts]  # a baseline, with room above for tall digits
    lefts = [0]
    for ink, gap in zip(inks, gaps):
        lefts.append(lefts[-1] + ink.shape[1] + (-int(gap) if touching else int(gap * height)))
    out = np.zeros((max(bottoms) + 1, lefts[-1] + inks[-1].shape[1]), np.float32)
    for ink, left, bottom in zip(inks, lefts, bottoms):
        region = out[bottom - ink.shape[0]:bottom, left:left + ink.shape[1]]
        np.maximum(region, ink, out=region)
    return ink_crop(out)


def digit_ink(digit, height, pen):
    """An MNIST digit's strokes (:func:`tests.uploads.strokes`) cropped to its ink box, about ``height``
    pixels tall: MNIST fits a digit's longer side to 20 pixels, so a wide digit is less tall."""
    rows = np.flatnonzero(digit.max(1) >= 128)
    tall = max(rows[-1] - rows[0] + 1, 8) if rows.size else 20
    return ink_crop(strokes(digit, max(int(height * 28 / tall), 8), pen))


def ink_crop(alpha, level=0.5):
    """``alpha`` cropped to the box of its pixels of at least ``level``: its ink box."""
    rows, cols = np.flatnonzero(alpha.max(1) >= level), np.flatnonzero(alpha.max(0) >= level)
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def font_number(rng, fonts, length):
    """``length`` random digits typed in a handwriting font, as ``font_digit`` types one: ``(bytes, text)``."""
    text = "".join(str(d) for d in rng.integers(0, 10, length))
    return font_digit(text, rng, fonts), text
