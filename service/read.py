"""POST /read: the number written in each uploaded image, read digit by digit, left to right.

Takes the same uploads, limits and key as /predict. Each image is cut into
digits (:mod:`service.segment`); all the digits of a request go through the
model in one batch and are judged as /predict judges images
(:mod:`service.answers`). A reading's status is its worst digit's: a mark
that is not a digit makes the reading ``not_a_digit`` (its place in ``text``
is ``?``), an uncertain digit makes it ``uncertain``; no ink is ``no_digit``.
"""
import numpy as np
import orjson
from flask import Blueprint, Response, request
from PIL import Image

from service import answers, segment
from service.inference import answer, serving_model
from service.predict import decode_all, model_json
from service.state import state
from service.uploads import image_blobs

bp = Blueprint("read", __name__)

MAX_DIGITS = 24  # marks in one image; more is texture or noise, not a number anyone reads whole
WORST_FIRST = (answers.NOT_A_DIGIT, answers.UNCERTAIN, answers.OK)


@bp.post("/read")
def read():
    model = serving_model()
    cfg = state().config
    blobs = image_blobs(request, cfg.max_batch_images)
    state().metrics.upload_bytes.inc(sum(map(len, blobs)))
    sizes = []
    images = decode_all(blobs, cfg.max_image_pixels, cfg.max_request_pixels, sizes)
    found = [segment.digits(_pil(img), size) for img, size in zip(images, sizes)]
    found = [(boxes, x) if len(boxes) <= MAX_DIGITS else ([], None) for boxes, x in found]
    x = np.concatenate([x for _, x in found if x is not None] or [np.zeros((0, 784), np.float32)])
    p, statuses = answer(model, x, np.ones(len(x), np.intp)) if len(x) else (np.zeros((0, 10)), [])
    readings, start = [], 0
    for boxes, x_image in found:
        n = len(boxes)
        readings.append(_reading(boxes, p[start:start + n], statuses[start:start + n], x_image is None))
        start += n
    blank = sum(1 for r in readings if r["status"] == answers.NO_DIGIT)
    if blank:
        state().metrics.statuses.labels(answers.NO_DIGIT).inc(blank)
    return Response(orjson.dumps({"model": model_json(model), "readings": readings}), mimetype="application/json")


def _pil(img):
    return Image.fromarray(img, "L") if isinstance(img, np.ndarray) else img


def _reading(boxes, p, statuses, too_many):
    """One image's reading from its digits' boxes, calibrated probabilities and statuses."""
    if too_many:
        return {"text": "", "status": answers.NOT_A_DIGIT, "confidence": None, "digits": [],
                "message": f"more than {MAX_DIGITS} separate marks: not a number"}
    if not boxes:
        return {"text": "", "status": answers.NO_DIGIT, "confidence": None, "digits": []}
    best, confidence = p.argmax(axis=1).tolist(), np.round(p.max(axis=1).astype(np.float64), 6).tolist()
    digits = [{"digit": d if s != answers.NOT_A_DIGIT else None, "status": s, "confidence": c, "box": box}
              for d, s, c, box in zip(best, statuses, confidence, boxes)]
    status = next(s for s in WORST_FIRST if s in statuses)
    text = "".join("?" if s == answers.NOT_A_DIGIT else str(d) for d, s in zip(best, statuses))
    return {"text": text, "status": status, "confidence": round(float(np.prod(confidence)), 6), "digits": digits}
