"""Reading a written number: one picture -> its marks left to right, each a digit or digits that touch.

Digits of a number stand side by side, so the columns that carry no ink
separate them. After the same ink map and threshold as single digits
(:mod:`service.preprocess`):

1. every run of inked columns is one mark: a digit, digits that touch, or a
   speck; the rows of each run are found on their own, so digits of
   different sizes and baselines are boxed tightly;
2. specks (little ink, or short beside the line's tallest mark) are dropped;
3. a mark wider than a digit of its height may be digits that touch: it is
   also cut into as many digit widths as it holds, each cut at the column
   with the least ink near where it is expected, and the reader keeps
   whichever of the whole and the pieces the model reads with more
   confidence (a wide 0 stays whole, "00" is cut);
4. each box goes through MNIST's recipe (fit into 20x20, centre by mass).
"""
from dataclasses import dataclass

import numpy as np

from service.imaging import paper_only, standard, upright
from service.preprocess import centred, column_runs, fit_box, ink_levels, ink_map, reduced, speck

MIN_INK = 0.12      # of the inkiest mark's ink: less is a speck, a dot or a stray line
MIN_HEIGHT = 0.35   # of the tallest mark's height: shorter is a comma, a dot or a dash
DIGIT_WIDTH = 0.8   # a digit's typical width over its height (MNIST's median is 0.75)
WIDE = 1.2          # a mark wider than this over its height may hold touching digits (a quarter
                    # of MNIST's 0s and 2s are wider, so the model has the last word)
SEARCH = 0.3        # a cut is sought within this fraction of a digit width of where it is expected


@dataclass
class Mark:
    """One mark: ``whole`` as one digit, and ``pieces`` if it is wide enough to be several.
    Each is a list of ``(box, x)``: ``[left, top, width, height]`` and a ``(784,)`` input."""
    whole: list
    pieces: list | None = None


def marks(img, size=None):
    """PIL image of any mode and size -> its marks (:class:`Mark`), left to right; [] without ink.

    Boxes are in the pixels of the upright picture, or of ``size`` ``(width,
    height)`` if given: the picture as uploaded, when ``img`` is a reduced copy.
    """
    img = standard(upright(img))
    work = paper_only(reduced(img))
    size = img.size if size is None else size
    sx, sy = size[0] / work.size[0], size[1] / work.size[1]
    ink = ink_map(work)
    found = None if ink is None else ink_levels(ink)
    if found is None:
        return []
    levels, mask, lo, hi = found

    def digit(box):
        r0, r1, c0, c1 = box
        patch = np.clip((levels[r0:r1, c0:c1].astype(np.float32) - lo) / max(hi - lo, 1.0), 0, 1)
        return _scaled(box, sx, sy, size), centred(fit_box(patch, mask[r0:r1, c0:c1])).ravel()

    out = []
    for box in _marks(mask):
        pieces = _split(mask, *box)
        out.append(Mark([digit(box)], [digit(piece) for piece in pieces] if len(pieces) > 1 else None))
    return out


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
    return [m[:4] for m in marks if m[4] >= MIN_INK * most and m[1] - m[0] >= MIN_HEIGHT * tallest
            and not speck(*m[:4], mask.shape)]


def _split(mask, r0, r1, c0, c1):
    """The box ``(r0, r1, c0, c1)``, cut into digits if it is too wide to hold one."""
    width, height = c1 - c0, r1 - r0
    if width <= WIDE * height:
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
