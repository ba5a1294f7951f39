"""A small Python client for mnist-serving, for apps that want digits, not HTTP.

    from service.client import Client
    client = Client("http://localhost:8000", api_key=None)
    answer = client.predict("digit.png")           # a path, bytes, file object or PIL image
    answer["status"], answer["digit"]              # "ok", 7; or "not_a_digit", None; ...
    [p["digit"] for p in client.predict_batch([img1, img2])]
    client.read("number.jpg")["text"]              # "1984": the number, left to right
    client.health()

Timeouts on every call. A 503 (no model yet, a replica restarting, or a busy
service answering ``overloaded``) and connection errors are retried with
exponential backoff and jitter, never sooner than the ``Retry-After`` the
service asked for; other errors raise :class:`ServiceError` carrying the
service's error code and message.
"""
import io
import os
import random
import time

import requests


class ServiceError(Exception):
    """An error answer from the service: ``status``, ``code`` and ``message``."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Client:
    def __init__(self, base_url="http://localhost:8000", api_key=None, timeout=10.0, retries=3, backoff=0.25,
                 session=None, rng=None, max_wait=30.0):
        """``max_wait``: the longest pause between attempts, whatever Retry-After asks."""
        self.base_url = base_url.rstrip("/")
        self.timeout, self.retries, self.backoff, self.max_wait = timeout, retries, backoff, max_wait
        self.rng = rng or random.Random()
        self.session = session or requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def predict(self, image):
        """One image -> ``{"status", "digit", "confidence", "probabilities"}``; ``digit`` is None
        unless ``status`` is "ok" or "uncertain"."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images):
        """Several images in one request -> one prediction per image, in order."""
        return self.predict_response(images)["predictions"]

    def predict_response(self, images):
        """The whole /predict answer, including the model name and version."""
        return self._call("POST", "/predict", files=_files(images))

    def read(self, image):
        """The number written in one image -> ``{"text", "status", "confidence", "digits"}``, each
        digit with its own ``digit``, ``status``, ``confidence`` and ``box`` ``[x, y, w, h]``."""
        return self.read_batch([image])[0]

    def read_batch(self, images):
        """Several images in one /read request -> one reading per image, in order."""
        return self._call("POST", "/read", files=_files(images))["readings"]

    def health(self):
        """``/health``'s body; raises ServiceError if no model is serving (after retries)."""
        return self._call("GET", "/health")

    def _call(self, method, path, **kwargs):
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            asked = 0.0
            try:
                r = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout):
                if last:
                    raise
            else:
                if r.status_code != 503 or last:
                    return _json_or_raise(r)
                asked = _retry_after(r.headers.get("Retry-After"))
            time.sleep(self.wait(attempt, asked))

    def wait(self, attempt, retry_after=0.0):
        """Seconds before retry ``attempt + 1``: exponential backoff with jitter, so that clients
        turned away together do not return together, and never less than ``retry_after``."""
        backoff = self.backoff * 2**attempt * (0.5 + self.rng.random())
        return min(self.max_wait, max(backoff, retry_after))


def _retry_after(value):
    """Seconds from a Retry-After header given in seconds; 0 when absent or an HTTP date."""
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 0.0


def _files(images):
    return [("image", (f"image{i}", _bytes(img), "application/octet-stream")) for i, img in enumerate(images)]


def _json_or_raise(r):
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code >= 400:
        raise ServiceError(r.status_code, body.get("code", "http_error"), body.get("error", r.reason))
    return body


def _bytes(image):
    """Encoded image bytes from a path, bytes, a binary file object or a PIL image."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            return f.read()
    if hasattr(image, "save") and hasattr(image, "mode"):  # a PIL image, sent losslessly
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()
    if hasattr(image, "read"):
        return image.read()
    raise TypeError(f"cannot send a {type(image).__name__} as an image")
