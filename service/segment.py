"""Reading a written number: one picture -> a box and a 28x28 input per digit, left to right.

Digits of a number stand side by side, so the columns that carry no ink
separate them. After the same ink map and threshold as single digits
(:mod:`service.preprocess`):

1. every run of inked columns is one mark: a digit, digits that touch, or a
   speck; the rows of each run are found on their own, so digits of
   different sizes and baselines are boxed tightly;
2. specks (little ink, or short beside the line's tallest mark) are dropped;
3. a run much wider than a digit of its height is digits that touch: it is
   cut into as many digit widths as it holds, each cut at the column with
   the least ink near where it is expected;
4. each box goes through MNIST's recipe (fit into 20x20, centre by mass).
"""
import numpy as np

from service.imaging import paper_only, standard, upright
from service.preprocess import WORK_SIDE, centred, column_runs, fit_box, ink_levels, ink_map

MIN_INK = 0.12      # of the inkiest mark's ink: less is a speck, a dot or a stray line
MIN_HEIGHT = 0.35   # of the tallest mark's height: shorter is a comma, a dot or a dash
DIGIT_WIDTH = 0.8   # a digit's typical width over its height (MNIST's median is 0.75)
TOUCHING = 1.6      # a mark wider than this over its height holds more than one digit (1 in 200 of
                    # MNIST's digits is wider: a wide 0, 2 or 5)
SEARCH = 0.3        # a cut is sought within this fraction of a digit width of where it is expected


def digits(img, size=None):
    """PIL image of any mode and size -> ``(boxes, x)``: ``boxes`` a list of ``[left, top, width, height]``
    left to right, and ``x: (len(boxes), 784)`` float32 inputs.

    Boxes are in the pixels of the upright picture, or of ``size`` ``(width,
    height)`` if given: the picture as uploaded, when ``img`` is a reduced copy.
    No ink gives no boxes.
    """
    img = standard(upright(img))
    factor = -(-max(img.size) // WORK_SIDE)
    work = paper_only(img.reduce(factor) if factor > 1 else img)
    size = img.size if size is None else size
    sx, sy = size[0] / work.size[0], size[1] / work.size[1]
    ink = ink_map(work)
    found = None if ink is None else ink_levels(ink)
    if found is None:
        return [], np.zeros((0, 784), np.float32)
    levels, mask, lo, hi = found
    boxes = [box for mark in _marks(mask) for box in _split(mask, *mark)]
    x = np.zeros((len(boxes), 784), np.float32)
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        patch = np.clip((levels[r0:r1, c0:c1].astype(np.float32) - lo) / max(hi - lo, 1.0), 0, 1)
        x[i] = centred(fit_box(patch, mask[r0:r1, c0:c1])).ravel()
    scaled = [_scaled(box, sx, sy, size) for box in boxes]
    return scaled, x


def _marks(mask):
    """``[(r0, r1, c0, c1)]`` of the marks in ``mask`` that are not specks, left to right."""
    marks = []
    for c0, c1, mass in column_runs(mask.sum(0, dtype=np.int32), 1):  # any empty column separates
        rows = np.flatnonzero(mask[:, c0:c1].any(1))
        marks.append((int(rows[0]), int(rows[-1]) + 1, c0, c1, mass))
    if not marks:
        return []
    most = max(m[4] for m in marks)
    tallest = max(m[1] - m[0] for m in marks)
    return [m[:4] for m in marks if m[4] >= MIN_INK * most and m[1] - m[0] >= MIN_HEIGHT * tallest]


def _split(mask, r0, r1, c0, c1):
    """The box ``(r0, r1, c0, c1)``, cut into digits if it is too wide to hold one."""
    width, height = c1 - c0, r1 - r0
    if width <= TOUCHING * height:
        return [(r0, r1, c0, c1)]
    n = max(2, round(width / (DIGIT_WIDTH * height)))
    profile = mask[r0:r1, c0:c1].sum(0, dtype=np.int32)
    step = width / n
    cuts = [0]
    for j in range(1, n):
        lo = max(cuts[-1] + 1, round(j * step - SEARCH * step))
        hi = min(width - 1, round(j * step + SEARCH * step))
        if lo >= hi:
            continue
        cuts.append(lo + int(np.argmin(profile[lo:hi + 1])))
    cuts.append(width)
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        rows = np.flatnonzero(mask[r0:r1, c0 + a:c0 + b].any(1))
        if rows.size:
            pieces.append((r0 + int(rows[0]), r0 + int(rows[-1]) + 1, c0 + a, c0 + b))
    return pieces


def _scaled(box, sx, sy, size):
    """A working-scale ``(r0, r1, c0, c1)`` as ``[left, top, width, height]`` in the picture's pixels."""
    r0, r1, c0, c1 = box
    left, top = int(c0 * sx), int(r0 * sy)
    right, bottom = min(size[0], int(np.ceil(c1 * sx))), min(size[1], int(np.ceil(r1 * sy)))
    return [left, top, right - left, bottom - top]
