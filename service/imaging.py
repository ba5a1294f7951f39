"""A decoded picture made clean: upright, any Pillow mode brought to L or RGB, and the
desk around a photographed sheet of paper painted over (decoding is :mod:`service.decode`'s).
"""
import warnings

import numpy as np
from PIL import Image, ImageFilter, ImageOps

EXIF_ORIENTATION = 0x0112
OPAQUE = [255 * (a >= 128) for a in range(256)]  # point() table: the pixels that are mostly opaque
DESK_RATIO = 0.65  # a desk is darker than this fraction of the page's lightness (75th percentile)
# a dark region along more of the border than this surrounds the page: a desk, even around an
# empty sheet (strokes of a digit cropped tight cross the border in a few places only)
SURROUNDED = 0.5
WRITING_RATIO = 0.85  # writing on a page darkens its cells below this fraction of the page's lightness


def upright(img):
    """``img`` rotated/flipped as its EXIF orientation tag says (phone photos)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Corrupt EXIF data" and the like
        try:
            if img.getexif().get(EXIF_ORIENTATION, 1) == 1:
                return img
            return ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block is no reason to refuse the pixels
            return img


def upright_size(img):
    """``(width, height)`` of :func:`upright`'s result, without transposing any pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            turned = img.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)  # the quarter turns
        except Exception:  # as in upright: a broken EXIF block leaves the image as it is
            turned = False
    return img.size[::-1] if turned else img.size


def standard(img):
    """``img`` as mode L or RGB, with alpha composited so that strokes stay visible.

    A drawing exported on a transparent canvas carries its strokes in alpha
    only; its colour channels are often black everywhere. Compositing those
    black strokes onto black would erase them, so the backdrop is chosen to
    contrast with the strokes' own colour.
    """
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I") or mode == "F":
        return _stretched(img)
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if alpha else "RGB")
    elif mode == "La":  # premultiplied
        img = img.convert("LA")
    elif mode != "RGBA" and mode != "LA":
        img = img.convert("RGBA" if mode == "RGBa" else "RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    return _flattened(img) if img.mode in ("LA", "RGBA") else img


def _stretched(img):
    """16/32-bit integer or float pixels, min-max stretched to 8-bit L."""
    x = np.array(img, dtype=np.float32)
    finite = np.isfinite(x)  # a float TIFF may hold NaN or infinity: count them as the background
    if not finite.all():
        x[~finite] = x[finite].min() if finite.any() else 0
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:  # constant
        return Image.new("L", img.size, 0)
    return Image.fromarray(np.round((x - lo) * (255 / (hi - lo))).astype(np.uint8), "L")


def _flattened(img):
    """An LA/RGBA image as L or RGB: alpha itself when the colour is uniform, else
    composited onto white or black, whichever the strokes are not."""
    bands = img.getextrema()
    if bands[-1][0] == 255:  # fully opaque: alpha says nothing
        return img.convert("L" if img.mode == "LA" else "RGB")
    alpha = img.getchannel("A")
    if all(lo == hi for lo, hi in bands[:-1]):  # one stroke colour: alpha is the ink (white on black)
        return alpha
    base = img.convert("L" if img.mode == "LA" else "RGB")
    grey = base if base.mode == "L" else base.convert("L")
    hist = np.asarray(grey.histogram(mask=alpha.point(OPAQUE)))  # the strokes' grey levels
    stroke = hist @ np.arange(256) / hist.sum() if hist.any() else 0.0
    level = 255 if stroke < 128 else 0
    backdrop = Image.new(base.mode, img.size, (level,) * len(base.getbands()))  # an int fills band 0 only
    return Image.composite(base, backdrop, alpha)


def border_pixels(x):
    """The outermost ring of pixels of array ``x`` (h, w[, c]), as (n[, c])."""
    return np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])


def paper_only(img):
    """``img`` with any desk around a sheet of paper painted over in the paper's colours.

    A phone photo of a page often shows the table at its edges, and to the ink
    detector a dark desk looks like a huge stroke. On a grid of cells (1/32 of
    the short side) the desk is what is much darker than the page (lighting
    alone dims paper less) and connected to the image border, along a good part
    of it, while the page is one broad region of at least 40% of the picture
    (a fat light stroke on a dark canvas is not) with something written on it
    away from the desk, or dark all around it (a digit cropped so tight that
    it touches the border is all there is: there is no page to read it from). Outside the sheet the
    paper's own colours are extended, so no edge is left for the ink detector.
    """
    w, h = img.size
    if min(w, h) < 64:
        return img
    cells = img.reduce(max(2, min(w, h) // 32))
    grey = np.asarray(cells.convert("L") if cells.mode == "RGB" else cells)
    page = np.percentile(grey, 75)  # the lit part of the page: it covers most photos
    if border_pixels(grey).min() >= DESK_RATIO * page:  # the usual case: nothing dark at the border
        return img
    desk = _from_border(grey < DESK_RATIO * page)
    if border_pixels(desk).mean() < 0.1 or desk.mean() > 0.6 or not _sharp_edge(grey, desk, page):
        return img
    if mean_width(~desk) < 0.25 * min(grey.shape):
        return img  # the bright part is a fat light stroke on a dark canvas, not a page
    near_desk = np.asarray(Image.fromarray(desk.view(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))) > 0
    if border_pixels(desk).mean() < SURROUNDED and not ((grey < WRITING_RATIO * page) & ~near_desk).any():
        return img  # nothing written away from the "desk": it is the digit itself, cropped tight
    sheet = Image.fromarray((~desk).view(np.uint8) * 255).filter(ImageFilter.MinFilter(5))  # 2 cells inside
    fill, covered = Image.composite(cells, Image.new(img.mode, cells.size), sheet), sheet
    while covered.getextrema()[0] < 255:  # spread the sheet's colours outwards, a cell a step
        fill = Image.composite(fill, fill.filter(ImageFilter.MaxFilter(3)), covered)
        covered = covered.filter(ImageFilter.MaxFilter(3))
    fill = fill.filter(ImageFilter.BoxBlur(1)).resize(img.size, Image.Resampling.BILINEAR)
    return Image.composite(img, fill, sheet.resize(img.size, Image.Resampling.BILINEAR))


def mean_width(mask):
    """Mean width in pixels of the shapes in boolean ``mask``: 2 * area / boundary length."""
    area = mask.sum()
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return 2 * area / max(area - inner.sum(), 1)


def _sharp_edge(grey, desk, page):
    """True if ``desk`` ends in a step (a sheet's edge), not a slope (light falling off)."""
    g = grey.astype(np.int16)
    steps = np.concatenate([np.abs(g[:, 1:] - g[:, :-1])[desk[:, 1:] != desk[:, :-1]],
                            np.abs(g[1:] - g[:-1])[desk[1:] != desk[:-1]]])
    return steps.size > 0 and np.median(steps) >= 0.1 * page


def _from_border(mask):
    """The part of boolean grid ``mask`` connected (4-neighbours) to the grid's border."""
    reached = np.zeros_like(mask)
    reached[[0, -1]], reached[:, [0, -1]] = mask[[0, -1]], mask[:, [0, -1]]
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= mask
        if np.array_equal(grown, reached):
            return reached
        reached = grown
