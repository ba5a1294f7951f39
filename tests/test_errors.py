"""Every way a request can go wrong gets the one JSON error shape and a 4xx (or 503)."""
import io

import pytest

from service import create_app
from service.state import state
from tests.helpers import GOOD, assert_error, bomb_png


@pytest.mark.parametrize("kwargs,status,code", [
    ({}, 400, "missing_image"),
    ({"data": {"file": (io.BytesIO(GOOD), "d.png")}}, 400, "missing_image"),
    ({"data": {"text": "hello"}, "content_type": "multipart/form-data"}, 400, "missing_image"),
    ({"data": {"image": "text, not a file"}, "content_type": "multipart/form-data"}, 400, "missing_image"),
    ({"data": {"image": (io.BytesIO(b""), "d.png")}}, 400, "empty_image"),
    ({"data": b"", "content_type": "image/png"}, 400, "empty_image"),
    ({"data": b"GIF89a not really", "content_type": "image/gif"}, 400, "invalid_image"),
    ({"data": GOOD[: len(GOOD) // 2], "content_type": "image/png"}, 400, "invalid_image"),
    ({"data": b"%PDF-1.4", "content_type": "image/png"}, 400, "invalid_image"),
    ({"data": bomb_png(), "content_type": "image/png"}, 413, "image_too_large"),
    ({"data": b"x" * 5000, "content_type": "image/png"}, 413, "payload_too_large"),
    ({"data": {"image": [(io.BytesIO(GOOD), f"{i}.png") for i in range(5)]}}, 413, "too_many_images"),
    ({"data": b"{}", "content_type": "application/json"}, 415, "unsupported_media_type"),
    ({"data": b"hello", "content_type": "text/plain"}, 415, "unsupported_media_type"),
])
def test_bad_predict_requests(config, kwargs, status, code):
    app = create_app({**config, "max_upload_bytes": 4000, "max_batch_images": 4, "max_image_pixels": 10**6})
    client = app.test_client()
    assert_error(client.post("/predict", **kwargs), status, code)
    # and the app still serves afterwards
    assert client.post("/predict", data=GOOD, content_type="image/png").status_code == 200


def multipart(*parts):
    """A multipart body from ``(name, filename or None, data)`` parts, built by hand: the
    test client spools bodies over 500 kB to a temporary file that it never closes."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return {"data": out + b"--b--\r\n", "content_type": "multipart/form-data; boundary=b"}


def test_no_surprise_413_below_the_upload_limit(config):
    """Werkzeug alone refuses a 600 kB text field with 413; here the body limit is the only one."""
    client = create_app(config).test_client()  # MAX_UPLOAD_BYTES: 10 MiB
    r = client.post("/predict", **multipart(("image", None, b"x" * 600_000), ("note", None, b"y" * 600_000)))
    assert_error(r, 400, "missing_image")
    assert "sent as text" in r.get_json()["error"]


def test_the_form_part_limit_follows_the_batch_limit(config):
    client = create_app({**config, "max_batch_images": 1100}).test_client()
    r = client.post("/predict", **multipart(*[("image", f"{i}.png", GOOD) for i in range(1001)]))
    assert r.status_code == 200  # Werkzeug's default would refuse the 1,001st part
    assert len(r.get_json()["predictions"]) == 1001


def test_a_form_refused_while_parsing_says_why(config):
    client = create_app({**config, "max_batch_images": 4}).test_client()
    r = client.post("/predict", **multipart(*[("x", None, b"1")] * 1001))
    assert_error(r, 413, "payload_too_large")
    assert "more than 1000 parts" in r.get_json()["error"]


def test_the_second_bad_image_of_a_batch_is_named(client):
    r = client.post("/predict", data={"image": [(io.BytesIO(GOOD), "a.png"), (io.BytesIO(b"junk"), "b.png")]})
    assert_error(r, 400, "invalid_image")
    assert r.get_json()["error"].startswith("image 1:")


def test_unknown_route_and_wrong_method_are_json(client):
    assert_error(client.get("/nope"), 404, "not_found")
    r = client.get("/predict")
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    assert_error(client.delete("/health"), 405, "method_not_allowed")


def test_no_model_is_503_with_retry_after(tmp_path):
    client = create_app({"models_dir": tmp_path, "reload_interval": 0, "access_log": False}).test_client()
    r = client.post("/predict", data=GOOD, content_type="image/png")
    assert_error(r, 503, "no_model")
    assert r.headers["Retry-After"] == "5"


def test_pinned_version_missing_says_so(models_dir):
    client = create_app({"models_dir": models_dir, "model_version": "7", "reload_interval": 0,
                         "access_log": False}).test_client()
    r = client.get("/health")
    assert r.status_code == 503 and "pinned version 7" in r.get_json()["reason"]


def test_an_unexpected_failure_is_a_json_500_without_details(app, monkeypatch):
    model = state(app).store.current

    def explode(x):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(model.network, "_in_batches", lambda *args: explode(args))
    r = app.test_client().post("/predict", data=GOOD, content_type="image/png")
    assert_error(r, 500, "internal_error")
    assert "secret" not in r.get_data(as_text=True)
