"""Any picture of a digit -> the 28x28 input an MNIST model expects.

MNIST's recipe: white ink on black, the digit's bounding box scaled to fit
20x20 (aspect kept, anti-aliased), then placed so that its centre of mass is
the centre (14, 14) of a 28x28 field. Uploads need work before that recipe
applies: the paper may be any colour, lit unevenly, darker or lighter than the
ink, and the digit may be a speck in a large photo. After ``service.imaging``
has brought the picture to L or RGB (orientation, alpha, any desk painted
over):

1. ``ink_map``: measure every pixel's difference from the paper along the
   colour direction in which the ink differs most (handles coloured ink,
   coloured paper and either polarity), and subtract a smooth local paper
   level (uneven lighting);
2. ``digit_crop``: threshold (Otsu), keep the row and column span carrying
   the most ink (drops specks and smudges away from the digit), crop, stretch
   contrast;
3. ``fit_box`` and ``centred``: widen strokes that would be hair-thin at
   20x20, scale into 20x20 and centre by mass in 28x28.

Plain 28x28 grayscale digits that are already MNIST-like skip all of it.
"""
import numpy as np
from PIL import Image, ImageChops, ImageFilter

from service.imaging import border_pixels, mean_width, paper_only, standard, upright

__all__ = ["shrink", "to_mnist", "to_batch", "prepare"]

SIDE, BOX, CENTRE = 28, 20, 14.0  # MNIST: 20x20 box, mean centre of mass (14.0, 14.0)
WORK_SIDE = 256      # larger images are box-reduced first: a 20x20 digit needs far fewer pixels
MIN_CONTRAST = 40    # of 255: weaker differences from the paper are not ink (blank page)
MARGIN = 48          # the ink signal keeps this much room below the paper level, for lighting dips
STROKE = 2.6         # MNIST's median stroke width at 20x20 scale, in pixels
FAT, THICK = 4.8, 3.6  # strokes wider than FAT (MNIST's widest 5%) are thinned to THICK
MID = 4 * BOX        # strokes are thickened at this intermediate size
SAMPLES = 20_000     # pixels looked at to learn the ink's colour
MEAN_OF_CHANNELS = (1 / 3, 1 / 3, 1 / 3, 0)
FLAT = 4             # paper whose border varies less than this (10th-50th percentile) is even
SPECK = 0.08         # marks smaller than this part of the picture's longer side may be specks


def to_batch(images):
    """``images``: list of PIL images or (h, w) uint8 greyscale arrays -> ``(n, 784)`` float32 in [0, 1]."""
    return prepare(images)[0]


def prepare(images):
    """:func:`to_batch`, and how many separate marks of digit size each image holds: ``(x, parts)``.

    ``parts: (n,)`` int is 0 for an image without ink, 1 for one digit (or one
    mark of any kind), more when several marks of comparable size stand side
    by side, as the digits of a number do; ``x`` then holds the largest.
    Images that are already MNIST-like 28x28 greyscale digits (what batch
    clients mostly send) are checked all at once, with the same rules as
    :func:`already_mnist`; 28x28 greyscale ones that fail the check go
    straight to the full recipe, and the rest through :func:`to_mnist`'s
    steps, one by one. The result equals :func:`to_mnist` image by image.
    """
    out = np.zeros((len(images), SIDE * SIDE), np.float32)
    parts = np.zeros(len(images), np.intp)
    plain = [i for i, img in enumerate(images) if _plain(img)]
    done = set()
    if plain:
        ready, rows = already_mnist_batch(np.stack([np.asarray(images[i]) for i in plain]))
        index = np.array(plain)[ready]
        out[index], parts[index] = rows[ready], 1
        done = set(index.tolist())
    plain = set(plain)
    for i, img in enumerate(images):
        if i in done:
            continue
        if isinstance(img, np.ndarray):
            img = Image.fromarray(img, "L")
        # a plain image the check refused (or a blank one) needs only the full recipe
        out[i], parts[i] = _normalised(img) if i in plain else _prepared(img)
    return out, parts


def shrink(img):
    """A decoded image over WORK_SIDE brought upright, to L or RGB, and down to WORK_SIDE at once.

    :func:`to_mnist` would do the same steps later; doing them as soon as an
    image is decoded lets the full-size pixels go before the next image of a
    batch is decoded. The result is the same: the reduced image is already
    upright and standard, and too large for the 28x28 shortcut either way.
    """
    return reduced(standard(upright(img))) if max(img.size) > WORK_SIDE else img


def _plain(img):
    """True for a 28x28 greyscale picture (array, or PIL image with no rotation due)."""
    if isinstance(img, np.ndarray):
        return img.shape == (SIDE, SIDE)
    return img.size == (SIDE, SIDE) and img.mode == "L" and upright(img) is img


def already_mnist_batch(x):
    """:func:`already_mnist` for a stack ``x: (n, 28, 28)`` uint8 -> ``(ok: (n,) bool, (n, 784) float32)``.

    Blank images are not ``ok`` here (:func:`to_mnist` answers them at once).
    Written for the small batches of a request, where each NumPy call costs
    more than its arithmetic: a border within MIN_CONTRAST of black or white
    is the same test as :func:`already_mnist`'s median polarity and then its
    maximum, with two reductions instead of a sort.
    """
    n = len(x)
    ring = np.concatenate((x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]), axis=1)
    dark, light = ring.max(axis=1) <= MIN_CONTRAST, ring.min(axis=1) >= 255 - MIN_CONTRAST
    if light.any():
        x = x.copy()
        x[light] = 255 - x[light]
    # Sums over a 28-long axis run faster as products with ones (BLAS) than as
    # NumPy reductions; every sum here is an integer below 2**24, exact in float32.
    ones = np.ones(SIDE, np.float32)
    mass, strong = x.astype(np.float32), (x > 127).astype(np.float32)
    row_mass, col_mass = mass @ ones, ones @ mass
    total = row_mass @ ones
    safe = np.where(total > 0, total, 1)
    offsets = np.abs(np.stack((row_mass, col_mass)) @ np.arange(SIDE, dtype=np.float32) / safe - CENTRE)
    ok = (dark | light) & (offsets <= 1).all(axis=0)
    ok &= (_extent(strong @ ones > 0) < BOX + 2) & (_extent(ones @ strong > 0) < BOX + 2)
    return ok, (mass / 255).reshape(n, -1)


def _extent(flags):
    """Per row of ``flags: (n, 28)``: last - first True index (28 when none)."""
    first, last = flags.argmax(axis=1), SIDE - 1 - flags[:, ::-1].argmax(axis=1)
    return np.where(flags.any(axis=1), last - first, SIDE)


def to_mnist(img):
    """One PIL image of any mode and size -> ``(784,)`` float32 in [0, 1], MNIST-like.

    A picture without ink (blank, a uniform colour, or nothing but a speck) gives all zeros.
    """
    return _prepared(img)[0]


def _prepared(img):
    img = standard(upright(img))
    ready = already_mnist(img)
    if ready is not None:
        return ready, int(ready.any())
    return _normalised(img)


def normalised(img):
    """MNIST's recipe for an upright L or RGB image: ink, crop, fit, centre -> ``(784,)``."""
    return _normalised(img)[0]


def _normalised(img):
    """``(normalised(img), parts)``: see :func:`prepare`."""
    ink = ink_map(paper_only(reduced(img)))
    patch = None if ink is None else digit_crop(ink)
    if patch is None:
        return np.zeros(SIDE * SIDE, np.float32), 0
    return centred(fit_box(*patch[:2])).ravel(), patch[2]


def already_mnist(img):
    """``(784,)`` if ``img`` is already a clean, centred 28x28 digit (either polarity), else None.

    Plain MNIST images pass through untouched: re-cropping and rescaling them
    could only blur them.
    """
    if img.size != (SIDE, SIDE) or img.mode != "L":
        return None
    x = np.asarray(img)
    ring = border_pixels(x)
    # within MIN_CONTRAST of black or of white: the same as "median > 127 -> invert, then max"
    if ring.min() >= 255 - MIN_CONTRAST:
        x = 255 - x
    elif ring.max() > MIN_CONTRAST:
        return None
    mass = x.astype(np.float32)
    total = mass.sum()
    if total == 0:
        return mass.ravel()
    rows, cols = np.flatnonzero((x > 127).any(1)), np.flatnonzero((x > 127).any(0))
    if rows.size == 0 or rows[-1] - rows[0] >= BOX + 2 or cols[-1] - cols[0] >= BOX + 2:
        return None
    cy, cx = _centre_of_mass(mass, total)
    if abs(cy - CENTRE) > 1 or abs(cx - CENTRE) > 1:
        return None
    return (mass / 255).ravel()


def _centre_of_mass(mass, total):
    h, w = mass.shape
    return (mass.sum(1) @ np.arange(h)) / total, (mass.sum(0) @ np.arange(w)) / total


def reduced(img):
    """``img`` box-averaged by an integer factor so its longer side is at most WORK_SIDE."""
    factor = -(-max(img.size) // WORK_SIDE)
    return img.reduce(factor) if factor > 1 else img


# -- 1. ink ------------------------------------------------------------------------
def ink_map(img):
    """L or RGB image -> L image of ink strength (0 = paper), or None if there is no ink."""
    x = np.asarray(img)
    paper = _median(border_pixels(x))
    direction = _ink_direction(img, paper, x)
    if direction is None:
        return None
    level = _paper_level(img, direction, paper)
    if isinstance(level, Image.Image):
        return ImageChops.subtract(_signal(img, direction, paper, MARGIN), level)
    return _signal(img, direction, paper, MARGIN - level)  # even paper: one pass, no subtraction


def _median(pixels):
    """``np.median(pixels, axis=0)`` for ``(n[, c])`` integers, by a sort: faster than
    np.median on a border's few hundred."""
    s = np.sort(pixels, axis=0)
    n = len(s)
    return s[n // 2].astype(np.float64) if n % 2 else (s[n // 2 - 1].astype(np.float64) + s[n // 2]) / 2


def _signal(img, direction, paper, offset):
    """L image: each pixel's difference from ``paper`` along ``direction``, plus ``offset``, clipped to 0..255."""
    if img.mode == "RGB":
        return img.convert("L", (*direction, offset - float(direction @ paper)))
    lut = np.round(np.clip(direction * (np.arange(256) - paper) + offset, 0, 255)).astype(np.uint8)
    return Image.fromarray(lut[np.asarray(img)], "L")


def _ink_direction(img, paper, x):
    """Colour vector (L1 norm 1) from the paper towards the ink, or None if nothing differs enough.

    The pixels differing most from the border's median colour are taken as
    ink; their mean difference says whether ink is darker or lighter and in
    which hue, so blue ink on yellow paper is measured along blue-vs-yellow.
    A subsample of about SAMPLES pixels is plenty to learn the ink's colour.
    ``x`` is ``img``'s pixels.
    """
    w, h = img.size
    step = int(np.ceil(np.sqrt(w * h / SAMPLES)))
    if step > 1:  # box averages: a thin line fades but keeps its hue, and noise averages out
        img = img.reduce(step)
        x = np.asarray(img)
    dist = ImageChops.difference(img, Image.new(img.mode, img.size, _colour(paper)))
    dist = np.asarray(dist.convert("L", MEAN_OF_CHANNELS) if img.mode == "RGB" else dist)
    far = int(dist.max())
    if far < MIN_CONTRAST / step:
        return None
    strong = (dist >= far / 2).ravel().astype(np.float32)
    mean = strong @ x.reshape(strong.size, -1).astype(np.float32) / strong.sum() - paper
    norm = np.abs(mean).sum()
    return None if norm == 0 else mean / norm


def _colour(paper):
    return tuple(int(round(c)) for c in paper) if np.ndim(paper) else int(round(paper))


def _paper_level(img, direction, paper):
    """The paper's level in the ink signal: a number for evenly lit paper, else a smooth L image.

    On cells (1/16 of the short side): when the picture's border is even (every
    digital drawing), the paper is; its level is the border's median. Otherwise light
    falls unevenly, and the level is the lowest local signal, blurred: a
    minimum over 5x5 cells spans more than a pen or brush stroke is wide,
    leaving only the paper under the ink. (On even paper that local minimum
    would be wrong under strokes fatter than that, so it is not used there.)
    """
    w, h = img.size
    if min(w, h) < 64:
        return MARGIN
    cells = _signal(img.reduce(max(2, min(w, h) // 16)), direction, paper, MARGIN)
    low, median = np.percentile(border_pixels(np.asarray(cells)), [10, 50])  # not higher: strokes
    if median - low <= FLAT:                                                  # may reach the border
        return int(median)
    level = cells.filter(ImageFilter.MinFilter(5)).filter(ImageFilter.BoxBlur(1))
    return level.resize(img.size, Image.Resampling.BILINEAR)


# -- 2. crop -----------------------------------------------------------------------
def digit_crop(ink):
    """L image of ink -> ``(patch, mask, parts)`` cropped to the digit, patch float32 in [0, 1]; or None.

    ``parts``: how many marks of comparable size stand side by side in the
    digit's rows (see :func:`prepare`); the crop keeps the one with the most ink.
    """
    found = ink_levels(ink)
    if found is None:
        return None
    x, mask, lo, hi = found
    gap = max(2, round(0.05 * max(x.shape)))
    for _ in range(4):  # the inkiest span, unless it is a speck: then the next one
        ones = mask.view(np.uint8)
        if not ones.any():
            return None
        r0, r1 = _main_span(ones.sum(1, dtype=np.int32), gap)
        c0, c1 = _main_span(ones[r0:r1].sum(0, dtype=np.int32), gap)
        parts = _marks(ones, (r0, r1), gap)
        r0, r1 = _main_span(ones[:, c0:c1].sum(1, dtype=np.int32), gap)
        if not speck(r0, r1, c0, c1, x.shape):
            break
        mask = mask.copy()
        mask[r0:r1, c0:c1] = False
    else:
        return None
    crop, mask = x[r0:r1, c0:c1].astype(np.float32), mask[r0:r1, c0:c1]
    return np.clip((crop - lo) / max(hi - lo, 1.0), 0, 1), mask, parts


def speck(r0, r1, c0, c1, shape):
    """True for a mark in rows r0:r1 and columns c0:c1 of a ``shape`` picture that nobody wrote:
    a dot, a small blot at the edge, or a line along the edge (slivers of a desk around a page)."""
    side, longest = max(r1 - r0, c1 - c0), max(shape)
    at_border = r0 == 0 or c0 == 0 or r1 == shape[0] or c1 == shape[1]
    along_border = (r1 - r0 <= 3 and (r0 == 0 or r1 == shape[0])) or (c1 - c0 <= 3 and (c0 == 0 or c1 == shape[1]))
    return along_border or side < SPECK * longest and (at_border or side <= 3)


def ink_levels(ink):
    """L image of ink -> ``(ink array, mask of ink, lo, hi)`` with ruled lines cleared; None if blank.

    ``lo`` and ``hi`` are the levels that :func:`digit_crop` stretches to 0 and 1.
    """
    hist = np.asarray(ink.histogram())
    if hist[MIN_CONTRAST:].sum() == 0:
        return None
    # On a nearly empty page Otsu splits paper from shading; a third of the peak ink is a floor.
    t = max(otsu(hist), MIN_CONTRAST // 2, _percentile(hist, 0, 0.999) // 3)
    x, mask = _without_rules(np.asarray(ink), t)
    return x, mask, t / 2, _percentile(hist, t + 1, 0.9)  # hi: typical strong ink, from the whole image


def _marks(ones, rows, gap):
    """Marks side by side in ``ones``'s rows ``rows[0]:rows[1]``: runs of inked columns split by
    more than ``gap`` empty ones that are not specks, counting those with a fifth of the largest
    one's ink and half its height. At least 1: the caller found a mark there."""
    band = ones[rows[0]:rows[1]]
    marks = []
    for c0, c1, mass in column_runs(band.sum(0, dtype=np.int32), gap):
        inked = np.flatnonzero(band[:, c0:c1].any(1)) + rows[0]
        if not speck(inked[0], inked[-1] + 1, c0, c1, ones.shape):
            marks.append((mass, inked[-1] - inked[0] + 1))
    if len(marks) < 2:
        return 1
    most, tallest = max(m for m, _ in marks), max(h for _, h in marks)
    return sum(m >= 0.2 * most and h >= 0.5 * tallest for m, h in marks)


def column_runs(profile, gap):
    """``[(start, stop, mass)]`` of the runs of nonzero ``profile`` entries, bridging gaps up to ``gap``."""
    on = np.flatnonzero(profile)
    if not on.size:
        return []
    cuts = np.flatnonzero(np.diff(on) > gap)
    starts = np.concatenate((on[:1], on[cuts + 1]))
    stops = np.concatenate((on[cuts], on[-1:])) + 1
    cumulative = np.concatenate(([0], np.cumsum(profile)))
    return [(int(a), int(b), int(cumulative[b] - cumulative[a])) for a, b in zip(starts, stops)]


def _without_rules(x, t):
    """(ink, mask above ``t``) with ruled lines cleared: thin bands of rows or columns inked
    across 3/4 of the picture (a notebook's lines, its margin). A digit's own bar in a
    tight crop is thicker, and a tall 1 holds most of the ink: both are kept."""
    mask = x > t
    ones = mask.view(np.uint8)
    rows = _thin_runs(ones.sum(1, dtype=np.int32) >= 0.75 * x.shape[1], max(2, 0.02 * x.shape[0]))
    cols = _thin_runs(ones.sum(0, dtype=np.int32) >= 0.75 * x.shape[0], max(2, 0.02 * x.shape[1]))
    if not (rows.any() or cols.any()):
        return x, mask
    cleared = x.copy()
    cleared[rows], cleared[:, cols] = 0, 0
    kept = cleared > t
    return (cleared, kept) if kept.sum() >= 0.3 * mask.sum() else (x, mask)


def _thin_runs(flags, longest):
    """``flags`` (n,) bool, keeping only the runs of consecutive True at most ``longest`` long."""
    if not flags.any():
        return flags
    edges = np.diff(np.concatenate(([0], flags.view(np.uint8), [0])).astype(np.int8))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    thin = np.zeros_like(flags)
    for start, stop in zip(starts, stops):  # a handful of runs at most
        thin[start:stop] = stop - start <= longest
    return thin


def _percentile(hist, start, q):
    """The level below which a fraction ``q`` of the pixels at ``start`` and above lie."""
    cumulative = np.cumsum(hist[start:])
    return start + int(np.searchsorted(cumulative, q * cumulative[-1]))


def otsu(hist):
    """Otsu's threshold for a 256-bin histogram: the level maximising the between-class variance."""
    p = hist / hist.sum()
    omega, mu = np.cumsum(p), np.cumsum(p * np.arange(256))
    spread = omega * (1 - omega)  # 0 where either class is empty: no split there
    between = np.divide((mu[-1] * omega - mu) ** 2, spread, out=np.zeros(256), where=spread > 0)
    return int(np.argmax(between))


def _main_span(profile, gap):
    """(start, stop) of the run of nonzero ``profile`` entries, bridging gaps up to ``gap``, with the most mass."""
    runs = column_runs(profile, gap)
    start, stop, _ = max(runs, key=lambda run: run[2])  # the first of equals, as argmax
    return start, stop


# -- 3. fit ------------------------------------------------------------------------
def fit_box(patch, mask):
    """Crop (h, w) -> the digit scaled to fit BOX x BOX, aspect kept, strokes of MNIST's widths.

    Strokes that would end up hair-thin at 20x20 (a ballpoint in a photo) are
    widened, and marker strokes so fat that loops would close are thinned:
    a grey dilation or erosion at 4x the final size, so the result stays smooth.
    """
    h, w = patch.shape
    img = Image.fromarray(patch, "F")
    width = mean_width(mask) * BOX / max(h, w)
    target = STROKE if width < 0.7 * STROKE else THICK if width > FAT else width
    radius = round((target - width) * MID / BOX / 2)
    if radius:
        img = img.resize(_fit((w, h), MID), Image.Resampling.BOX if max(h, w) > MID else Image.Resampling.BILINEAR)
        x = np.asarray(img)
        x = dilate(np.pad(x, radius), radius) if radius > 0 else _trimmed(erode(x, -radius))
        img = Image.fromarray(x, "F")
    return np.asarray(img.resize(_fit(img.size, BOX), Image.Resampling.BILINEAR)).clip(0, 1)


def _fit(size, side):
    w, h = size
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def dilate(x, r):
    """Grey dilation of ``x`` (h, w) by a (2r+1) square: the max over shifted copies."""
    return _rank(x, r, np.maximum)


def erode(x, r):
    """Grey erosion of ``x`` (h, w) by a (2r+1) square; outside ``x`` counts as background."""
    return _rank(x, r, np.minimum)


def _rank(x, r, pick):
    h, w = x.shape
    out = x.copy()
    for axis_shifts in ((lambda p, d: p[d:d + h, r:r + w]), (lambda p, d: p[r:r + h, d:d + w])):
        padded = np.pad(out, r)
        for d in range(2 * r + 1):
            pick(out, axis_shifts(padded, d), out=out)
    return out


def _trimmed(x, floor=0.05):
    """``x`` cropped to the rows and columns holding values above ``floor`` (all of it if none)."""
    rows, cols = np.flatnonzero((x > floor).any(1)), np.flatnonzero((x > floor).any(0))
    return x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] if rows.size else x


def centred(box):
    """(h, w) <= (20, 20) -> (28, 28) float32 with the centre of mass at (14, 14)."""
    out = np.zeros((SIDE, SIDE), np.float32)
    h, w = box.shape
    total = box.sum()
    cy, cx = _centre_of_mass(box, total) if total > 0 else ((h - 1) / 2, (w - 1) / 2)
    top = min(max(round(CENTRE - cy), 0), SIDE - h)
    left = min(max(round(CENTRE - cx), 0), SIDE - w)
    out[top:top + h, left:left + w] = box
    return out
