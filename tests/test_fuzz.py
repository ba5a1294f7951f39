"""Property tests: whatever a client sends, the answer is JSON, never a 500."""
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import png

VALID = png(np.zeros((28, 28), np.uint8))
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]


def encoded(fmt):
    img = np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8)
    return png(img, mode="RGB", fmt=fmt)


ENCODED = {fmt: encoded(fmt) for fmt in FORMATS}

bodies = st.one_of(
    st.binary(max_size=2048),
    st.sampled_from(FORMATS).flatmap(lambda f: st.integers(0, len(ENCODED[f])).map(lambda n: ENCODED[f][:n])),
    st.sampled_from(FORMATS).flatmap(
        lambda f: st.tuples(st.integers(0, len(ENCODED[f]) - 1), st.integers(0, 255)).map(
            lambda t: ENCODED[f][:t[0]] + bytes([t[1]]) + ENCODED[f][t[0] + 1:])),
)
field_names = st.sampled_from(["image", "images", "file", "", "IMAGE", "image[]"])
content_types = st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", "text/plain",
                                 "application/json", "", "image/", "multipart/form-data", "image/png; charset=x"])


def check(response):
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    if response.status_code >= 400:
        assert set(body) >= {"error", "code"}
    else:
        assert len(body["predictions"]) >= 1


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=bodies, content_type=content_types)
def test_raw_bodies(client, body, content_type):
    check(client.post("/predict", data=body, content_type=content_type))
    check(client.post("/predict", data=VALID, content_type="image/png"))  # still serving


@FUZZ
@given(parts=st.lists(st.tuples(field_names, bodies), max_size=4))
def test_multipart_parts(client, parts):
    data = {}
    for name, body in parts:
        data.setdefault(name or "x", []).append((io.BytesIO(body), "f.bin"))
    check(client.post("/predict", data=data, content_type="multipart/form-data"))


@FUZZ
@given(width=st.integers(1, 200_000), height=st.integers(1, 200_000))
def test_absurd_dimensions_from_the_header(client, width, height):
    from tests.test_errors import bomb_png

    r = client.post("/predict", data=bomb_png(width, height), content_type="image/png")
    check(r)
    if width * height > 40_000_000:
        assert r.status_code == 413
