"""The one inference path that every protocol calls: which model serves, and running it.

/predict and the V2 routes differ in how images arrive and how answers are
written; what happens between (the model chosen, the forward pass, its
timing and the counts of predicted digits) happens here, once.
"""
import time
from collections import Counter

import numpy as np
from numpy.typing import NDArray

from service.answers import Policy, judge
from service.errors import ApiError
from service.model_store import ServedModel, VersionUnavailable
from service.state import state


def serving_model() -> ServedModel:
    """The model /health reports, or 503 ``no_model`` (with Retry-After) while there is none."""
    store = state().store
    model = store.current
    if model is None:
        raise ApiError(503, "no_model", store.reason, {"Retry-After": "5"})
    return model


def model_version(version: int) -> ServedModel:
    """Version ``version`` (the serving one, or another on disk); 404 ``version_not_found`` if unavailable."""
    try:
        return state().store.version(version)
    except VersionUnavailable as exc:
        raise ApiError(404, "version_not_found", str(exc)) from None


def classify(model: ServedModel, x: NDArray[np.float32]) -> tuple[NDArray[np.floating], NDArray[np.intp]]:
    """``(probabilities (n, 10), digits (n,))`` for ``x: (n, 784)``, timed and counted in the metrics."""
    metrics = state().metrics
    start = time.perf_counter()
    p = model.predict(x)
    metrics.inference.observe(time.perf_counter() - start)
    digits = p.argmax(axis=1)
    metrics.images.inc(len(digits))
    for d, n in enumerate(np.bincount(digits, minlength=10).tolist()):
        if n:  # one write per digit seen, not per image: each is a shared-memory update
            metrics.digits.labels(str(d)).inc(n)
    return p, digits


def answer(model: ServedModel, x: NDArray[np.float32], parts: NDArray[np.intp]) -> tuple[NDArray, list[str]]:
    """``(calibrated probabilities (n, 10), status per image)`` for ``x: (n, 784)`` and the marks
    preprocessing found in each image (:func:`service.preprocess.prepare`), timed and counted."""
    p, statuses = judged(model, x, parts)
    count_answers(p, statuses, parts > 0)
    return p, statuses


def judged(model: ServedModel, x: NDArray[np.float32], parts: NDArray[np.intp],
           reading: bool = False) -> tuple[NDArray, list[str]]:
    """:func:`answer` without counting the answers: for candidates of which only some are kept.
    ``reading``: judge them as the marks of a number (:meth:`Policy.from_card`)."""
    metrics, cfg = state().metrics, state().config
    start = time.perf_counter()
    z = model.logits(x)
    metrics.inference.observe(time.perf_counter() - start)
    policy = Policy.from_card(model.card, cfg.confidence_threshold, cfg.digit_score_override, reading)
    return judge(policy, z, parts)


def count_answers(p: NDArray, statuses: list[str], inked: NDArray[np.bool_]) -> None:
    """Count answers in the metrics: images, statuses, and digits and confidence where there was ink.

    Plain Python over the few answers of a request: NumPy's per-call cost would
    be most of the time here.
    """
    metrics = state().metrics
    metrics.images.inc(len(statuses))
    for status, n in Counter(statuses).items():
        metrics.statuses.labels(status).inc(n)
    inked_rows = inked.tolist()
    best = [d for d, ink in zip(p.argmax(axis=1).tolist(), inked_rows) if ink]
    for d, n in Counter(best).items():  # one write per digit seen, not per image: each is a shared-memory update
        metrics.digits.labels(str(d)).inc(n)
    for c, ink in zip(p.max(axis=1).tolist(), inked_rows):
        if ink:
            metrics.confidence.observe(c)
