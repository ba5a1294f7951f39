"""POST /predict: uploaded digit images in, one prediction per image out."""
import numpy as np
import orjson
from flask import Blueprint, Response, request

from service import answers, decode, preprocess
from service.errors import ApiError
from service.imaging import upright_size
from service.inference import answer, serving_model
from service.state import state
from service.uploads import image_blobs

bp = Blueprint("predict", __name__)


def decode_all(blobs, max_pixels, max_request_pixels, sizes=None):
    """Each upload as pixels: plain greyscale PNGs as arrays, everything else as small PIL images.

    Memory is bounded by the limits, not by what clients send: every image's
    size is read from its header and the batch's total checked before any is
    decoded, and each large image is brought down to preprocessing's working
    size as soon as it is decoded, so one full-size image is alive at a time.
    ``sizes``, if a list, gets each image's ``(width, height)`` as uploaded,
    upright (EXIF orientation applied).
    """
    opened = [_open(i, blob, max_pixels) for i, blob in enumerate(blobs)]
    total = sum(pixels for pixels, _ in opened)
    if total > max_request_pixels:
        raise ApiError(413, "too_many_pixels", f"the images hold {total} pixels in all; the limit per request "
                                               f"is {max_request_pixels} (MAX_REQUEST_PIXELS)")
    images = []
    for i, blob in enumerate(blobs):
        _, img = opened[i]
        opened[i] = None  # from here the loop holds the only reference, so a large image dies with it
        if img is None:  # a plain greyscale PNG (its header checked above), unless libspng refuses it
            pixels = decode.load_grey_png(blob)
            if pixels is not None:
                images.append(pixels)
                if sizes is not None:
                    sizes.append(pixels.shape[::-1])
                continue
            img = _open_with_pillow(i, blob, max_pixels)
        if sizes is not None:
            sizes.append(upright_size(img))
        images.append(_small(i, img))
    return images


def _small(i, img):
    """``img`` decoded and shrunk; a large original is closed, which frees its decoder's buffers too."""
    try:
        small = preprocess.shrink(decode.load(img))
    except decode.InvalidImage as exc:
        raise ApiError(400, "invalid_image", f"image {i}: {exc}") from None
    if small is not img:
        img.close()
    return small


def _open(i, blob, max_pixels):
    """``(pixels it decodes to, lazy PIL image)``; the image is None for a plain greyscale PNG."""
    size = decode.plain_grey_png(blob, max_pixels)
    if size is not None:
        return size[0] * size[1], None
    img = _open_with_pillow(i, blob, max_pixels)
    return img.size[0] * img.size[1], img


def _open_with_pillow(i, blob, max_pixels):
    try:
        return decode.open_image(blob, max_pixels=max_pixels)
    except decode.ImageTooLarge as exc:
        raise ApiError(413, "image_too_large", f"image {i}: {exc}") from None
    except decode.InvalidImage as exc:
        raise ApiError(400, "invalid_image", f"image {i}: {exc}") from None


def uploaded_images(sizes=None):
    """The request's images, decoded within the configured limits (:func:`decode_all`, which
    fills ``sizes``), their bytes counted in the metrics."""
    cfg = state().config
    blobs = image_blobs(request, cfg.max_batch_images)
    state().metrics.upload_bytes.inc(sum(map(len, blobs)))
    return decode_all(blobs, cfg.max_image_pixels, cfg.max_request_pixels, sizes)


@bp.post("/predict")
def predict():
    model = serving_model()  # 503 before the body is read, when there is no model
    x, parts = preprocess.prepare(uploaded_images())
    p, statuses = answer(model, x, parts)
    return Response(encode_predictions(model, p, statuses), mimetype="application/json")


SEVERAL_HINT = "several digits side by side: POST the image to /read to read the number"


def encode_predictions(model, p, statuses):
    """The 200 response body for calibrated probabilities ``p: (n, 10)`` and a status per image."""
    # rounded in float64 so that 0.993 is written as 0.993, not 0.99299997091293
    rows, digits = np.round(p.astype(np.float64), 6).tolist(), p.argmax(axis=1).tolist()
    return orjson.dumps({"model": model_json(model),
                         "predictions": [_prediction(*answer) for answer in zip(rows, digits, statuses)]})


def model_json(model):
    return {"name": model.name, "version": str(model.version)}


def _prediction(row, best, status):
    if status == answers.NO_DIGIT:
        return {"status": status, "digit": None, "confidence": None, "probabilities": None}
    if status in (answers.OK, answers.UNCERTAIN):
        return {"status": status, "digit": best, "confidence": row[best], "probabilities": row}
    out = {"status": status, "digit": None, "confidence": row[best], "probabilities": row}
    if status == answers.SEVERAL:
        out["message"] = SEVERAL_HINT
    return out
