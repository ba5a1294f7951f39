"""Property tests: whatever a client sends, the answer is JSON, never a 500."""
import io
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import ENCODED, FORMATS, bomb_png, png

VALID = png(np.zeros((28, 28), np.uint8))

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


def check(response, answered=lambda body: len(body["predictions"]) >= 1):
    """A 4xx in the error shape, or a 200 whose body ``answered`` accepts; never a 500."""
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    if response.status_code >= 400:
        assert set(body) >= {"error", "code"}
    else:
        assert answered(body)


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
    r = client.post("/predict", data=bomb_png(width, height), content_type="image/png")
    check(r)
    if width * height > 40_000_000:
        assert r.status_code == 413


# V2 inference requests: JSON of any shape, and requests that are almost right.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats(allow_nan=False, width=32) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
tensor_fields = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["image", "x"]) | json_values,
    "datatype": st.sampled_from(["FP32", "FP64", "UINT8", "INT64", "BYTES"]) | json_values,
    "shape": st.lists(st.integers(-2, 70), max_size=4) | st.sampled_from([[1, 784], [2, 28, 28], [1, 28, 28]]),
    "data": st.one_of(
        json_values,
        st.lists(st.integers(-5, 300), min_size=780, max_size=790),
        st.lists(st.floats(-0.5, 1.5, width=32), min_size=780, max_size=790),
        st.lists(st.lists(st.integers(0, 255), min_size=27, max_size=29), min_size=27, max_size=29)),
})
output_lists = st.lists(st.fixed_dictionaries({"name": st.sampled_from(["label", "probabilities", "x"])}),
                        max_size=3)
infer_requests = st.fixed_dictionaries({}, optional={
    "id": json_values, "inputs": st.lists(tensor_fields, max_size=2) | json_values,
    "outputs": output_lists | json_values,
})


@st.composite
def near_valid_requests(draw):
    """One well-formed image tensor, then perhaps one thing wrong with it."""
    n = draw(st.integers(1, 3))
    datatype = draw(st.sampled_from(["FP32", "FP64", "UINT8"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))  # pixels from a seed: small examples
    data = (rng.integers(0, 256, 784 * n) if datatype == "UINT8" else rng.random(784 * n)).tolist()
    layout, nested = draw(st.sampled_from([([n, 784], False), ([n, 28, 28], False), ([n, 784], True),
                                           ([n, 28, 28], True)]))
    shape = layout
    flaw = draw(st.sampled_from([None, None, None, "short", "value", "shape", "ragged"]))
    if flaw == "short":
        data = data[:-1]
    elif flaw == "value":
        data[draw(st.integers(0, len(data) - 1))] = draw(st.sampled_from([-1, 256, 1.5, "x", None, True]))
    elif flaw == "shape":
        shape = draw(st.sampled_from([[n + 1, 784], [n, 783], [n], [n, 28, 28, 1]]))
    if nested and len(data) == 784 * n:
        data = np.asarray(data, dtype=object).reshape(layout).tolist()
    if flaw == "ragged" and nested:
        data[-1] = data[-1][:-1]
    request = {"inputs": [{"name": "image", "datatype": datatype, "shape": shape, "data": data}]}
    if draw(st.booleans()):
        request["outputs"] = draw(output_lists)
    return request


def outputs_agree(body):
    """Every output has the same number of rows, and as many values as its shape says."""
    n = body["outputs"][0]["shape"][0]
    return all(o["shape"][0] == n and len(o["data"]) == n * (10 if o["name"] == "probabilities" else 1)
               for o in body["outputs"])


def check_v2(response):
    check(response, answered=outputs_agree)


V2_INFER = "/v2/models/mnist/infer"
V2_VALID = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 784], "data": [0] * 784}]})


@FUZZ
@given(request=infer_requests | near_valid_requests())
def test_v2_requests(client, request):
    check_v2(client.post(V2_INFER, data=json.dumps(request)))
    check_v2(client.post(V2_INFER, data=V2_VALID))  # still serving


@FUZZ
@given(body=st.binary(max_size=512) | st.integers(0, len(V2_VALID)).map(lambda n: V2_VALID[:n].encode()))
def test_v2_bytes(client, body):
    check_v2(client.post(V2_INFER, data=body))
