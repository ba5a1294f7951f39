"""POST /read: the number written in each uploaded image, read digit by digit, left to right.

Takes the same uploads, limits and key as /predict. Each image is cut into
marks (:mod:`service.segment`); every candidate digit of a request goes
through the model in one batch and is judged as /predict judges images
(:mod:`service.answers`). A mark wide enough to be digits that touch is read
both whole and in pieces, and whichever the model is surer of is kept. A
reading's status is its worst digit's: a mark that is not a digit makes the
reading ``not_a_digit`` (its place in ``text`` is ``?``), an uncertain digit
makes it ``uncertain``; no ink is ``no_digit``. Inside a number most marks
are digits: when fewer than half of a reading's marks fall below the digit
score threshold, those are read as their likeliest digit and marked
``uncertain`` instead, since one rejected digit would spoil the whole number.
"""
import numpy as np
import orjson
from flask import Blueprint, Response
from PIL import Image

from service import answers, segment
from service.inference import count_answers, judged, serving_model
from service.predict import model_json, uploaded_images
from service.state import state

bp = Blueprint("read", __name__)

MAX_MARKS = 24  # in one image; more is texture or noise, not a number anyone reads whole
WORST_FIRST = (answers.NOT_A_DIGIT, answers.UNCERTAIN, answers.OK)


@bp.post("/read")
def read():
    model = serving_model()
    sizes = []
    images = uploaded_images(sizes)
    found = [segment.marks(_pil(img), size) for img, size in zip(images, sizes)]
    candidates = [digit for marks in found if len(marks) <= MAX_MARKS for mark in marks
                  for digit in mark.whole + (mark.pieces or [])]
    x = np.stack([x for _, x in candidates]) if candidates else np.zeros((0, 784), np.float32)
    p, statuses = judged(model, x, np.ones(len(x), np.intp), reading=True) if candidates else (np.zeros((0, 10)), [])
    judgements = iter(zip(candidates, p, statuses))
    readings, kept = [], []
    for marks in found:
        if len(marks) > MAX_MARKS:
            readings.append(_too_many())
            continue
        digits = [d for mark in marks for d in _best(mark, judgements)]
        kept += digits
        readings.append(_reading(digits))
    count_answers(np.array([d[1] for d in kept]).reshape(-1, 10), [d[2] for d in kept], np.ones(len(kept), bool))
    blank = sum(1 for r in readings if r["status"] == answers.NO_DIGIT)
    if blank:
        state().metrics.statuses.labels(answers.NO_DIGIT).inc(blank)
    return Response(orjson.dumps({"model": model_json(model), "readings": readings}), mimetype="application/json")


def _pil(img):
    return Image.fromarray(img, "L") if isinstance(img, np.ndarray) else img


def _best(mark, judgements):
    """``mark`` as one digit or as its pieces, whichever the model gives the higher joint confidence;
    each digit as ``((box, x), probabilities, status)``, taken in order from ``judgements``."""
    whole = [next(judgements)]
    if mark.pieces is None:
        return whole
    pieces = [next(judgements) for _ in mark.pieces]
    return pieces if np.prod([p.max() for _, p, _ in pieces]) > whole[0][1].max() else whole


def _too_many():
    return {"text": "", "status": answers.NOT_A_DIGIT, "confidence": None, "digits": [],
            "message": f"more than {MAX_MARKS} separate marks: not a number"}


def _reading(digits):
    """One image's reading from its digits, each ``((box, x), probabilities, status)``."""
    if not digits:
        return {"text": "", "status": answers.NO_DIGIT, "confidence": None, "digits": []}
    doubtful = sum(status == answers.NOT_A_DIGIT for _, _, status in digits)
    if 2 * doubtful < len(digits):  # mostly digits: a doubtful mark is read, and flagged
        digits = [(d, p, answers.UNCERTAIN if s == answers.NOT_A_DIGIT else s) for d, p, s in digits]
    out, text = [], ""
    for (box, _), p, status in digits:
        best, confidence = int(p.argmax()), round(float(p.max()), 6)
        out.append({"digit": None if status == answers.NOT_A_DIGIT else best, "status": status,
                    "confidence": confidence, "box": box})
        text += "?" if status == answers.NOT_A_DIGIT else str(best)
    status = next(s for s in WORST_FIRST if any(d["status"] == s for d in out))
    confidence = round(float(np.prod([d["confidence"] for d in out])), 6)
    return {"text": text, "status": status, "confidence": confidence, "digits": out}
