"""The Open Inference Protocol (V2) routes through Flask's test client: contract and every error."""
import json
import shutil

import numpy as np
import pytest

from service import create_app
from service.state import state
from tests.helpers import png, tiny_network, write_version

INFER = "/v2/models/mnist/infer"


def tensor(n=1, datatype="UINT8", shape=None, data=None, name="image"):
    if data is None:
        data = [0] * (784 * n) if datatype == "UINT8" else [0.0] * (784 * n)
    return {"name": name, "shape": shape or [n, 784], "datatype": datatype, "data": data}


def infer(client, *inputs, path=INFER, **body):
    return client.post(path, data=json.dumps({"inputs": list(inputs), **body}))


def outputs(response):
    return {o["name"]: o for o in response.get_json()["outputs"]}


@pytest.fixture
def real_client(real_models_dir):
    return create_app({"models_dir": real_models_dir, "reload_interval": 0, "access_log": False,
                       "log_level": "WARNING"}).test_client()


def test_server_metadata_and_probes(client):
    assert client.get("/v2").get_json() == {"name": "mnist-serving", "version": "0.1.0",
                                            "extensions": ["binary_tensor_data"]}
    assert client.get("/v2/health/live").get_json() == {"live": True}
    r = client.get("/v2/health/ready")
    assert (r.status_code, r.get_json()) == (200, {"ready": True})


def test_ready_is_503_with_a_reason_while_no_model_serves(tmp_path):
    client = create_app({"models_dir": tmp_path, "reload_interval": 0, "access_log": False}).test_client()
    r = client.get("/v2/health/ready")
    assert r.status_code == 503
    assert r.get_json()["ready"] is False and r.get_json()["code"] == "no_model"
    assert "no versions of 'mnist'" in r.get_json()["error"]
    assert client.get("/v2/health/live").status_code == 200
    r = infer(client, tensor())
    assert r.status_code == 503 and r.get_json()["code"] == "no_model"


@pytest.mark.parametrize("path", ["/v2/models/mnist", "/v2/models/mnist/versions/1"])
def test_model_metadata_describes_the_tensors(client, path):
    body = client.get(path).get_json()
    assert body == {
        "name": "mnist", "versions": ["1"], "platform": "numpy_mlp",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 784]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}],
    }


def test_model_ready_names_the_version(client, models_dir):
    assert client.get("/v2/models/mnist/ready").get_json() == {"name": "mnist", "version": "1", "ready": True}
    write_version(models_dir)
    r = client.get("/v2/models/mnist/versions/2/ready")
    assert r.get_json() == {"name": "mnist", "version": "2", "ready": True}


def test_infer_labels_real_digits_in_every_accepted_encoding(real_client, mnist_test):
    images, labels = mnist_test
    x, y = images[:40], labels[:40]
    requests = {
        "UINT8 [n, 28, 28] nested": tensor(40, "UINT8", [40, 28, 28], x.tolist()),
        "UINT8 [n, 784] flat": tensor(40, "UINT8", [40, 784], x.ravel().tolist()),
        "FP32 [n, 784] flat": tensor(40, "FP32", [40, 784], (x / 255).ravel().tolist()),
        "FP32 [n, 784] nested": tensor(40, "FP32", [40, 784], (x / 255).reshape(40, 784).tolist()),
        "FP64 [n, 28, 28] flat": tensor(40, "FP64", [40, 28, 28], (x / 255).ravel().tolist()),
    }
    for kind, t in requests.items():
        r = infer(real_client, t)
        assert r.status_code == 200, (kind, r.get_json())
        out = outputs(r)
        assert out["label"]["shape"] == [40] and out["label"]["datatype"] == "INT64"
        assert np.mean(np.array(out["label"]["data"]) == y) >= 0.95, kind
        p = np.array(out["probabilities"]["data"]).reshape(out["probabilities"]["shape"])
        assert p.shape == (40, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
        assert (p.argmax(axis=1) == out["label"]["data"]).all()


def test_infer_matches_predict_on_the_same_pixels(real_client, mnist_test):
    """Both routes run the same model on the same normalised pixels: identical probabilities."""
    digit = mnist_test[0][7]
    v2 = outputs(infer(real_client, tensor(1, "UINT8", [1, 28, 28], [digit.tolist()])))["probabilities"]["data"]
    rest = real_client.post("/predict", data=png(digit), content_type="image/png").get_json()
    assert np.allclose(v2, rest["predictions"][0]["probabilities"], atol=2e-3)


def test_response_echoes_id_and_honours_requested_outputs(client):
    r = infer(client, tensor(2), id="req-42", outputs=[{"name": "label"}])
    body = r.get_json()
    assert body["model_name"] == "mnist" and body["model_version"] == "1" and body["id"] == "req-42"
    assert [o["name"] for o in body["outputs"]] == ["label"]
    assert body["outputs"][0]["shape"] == [2] and len(body["outputs"][0]["data"]) == 2
    order = infer(client, tensor(), outputs=[{"name": "label"}, {"name": "probabilities"}]).get_json()
    assert [o["name"] for o in order["outputs"]] == ["label", "probabilities"]


def test_request_without_id_gets_the_request_id(client):
    r = client.post(INFER, data=json.dumps({"inputs": [tensor()]}), headers={"X-Request-ID": "abc-123"})
    assert r.get_json()["id"] == "abc-123" == r.headers["X-Request-ID"]


def test_body_without_content_type_is_accepted(client):
    """tritonclient sends no Content-Type at all; curl -d sends a form type."""
    body = json.dumps({"inputs": [tensor()]})
    assert client.post(INFER, data=body, content_type="").status_code == 200
    assert client.post(INFER, data=body, content_type="application/x-www-form-urlencoded").status_code == 200


def test_older_version_is_served_when_asked_for(models_dir):
    write_version(models_dir, tiny_network(seed=1))
    client = create_app({"models_dir": models_dir, "reload_interval": 0, "access_log": False}).test_client()
    assert client.get("/health").get_json()["model"]["version"] == "2"
    latest = infer(client, tensor(1, "UINT8", data=[200] * 784))
    old = infer(client, tensor(1, "UINT8", data=[200] * 784), path="/v2/models/mnist/versions/1/infer")
    assert latest.get_json()["model_version"] == "2" and old.get_json()["model_version"] == "1"
    assert outputs(latest)["probabilities"]["data"] != outputs(old)["probabilities"]["data"]
    assert client.get("/v2/models/mnist").get_json()["versions"] == ["1", "2"]
    assert client.get("/health").get_json()["model"]["version"] == "2"  # serving model unchanged


@pytest.mark.parametrize("path, code, message", [
    ("/v2/models/other", "model_not_found", "unknown model 'other'; this service serves 'mnist'"),
    ("/v2/models/other/infer", "model_not_found", "unknown model 'other'"),
    ("/v2/models/mnist/versions/7", "version_not_found", "no version 7 of 'mnist'; versions on disk: 1"),
    ("/v2/models/mnist/versions/7/infer", "version_not_found", "no version 7"),
    ("/v2/models/mnist/versions/0/ready", "version_not_found", "version must be a positive integer"),
    ("/v2/models/mnist/versions/latest", "version_not_found", "positive integer"),
    ("/v2/nothing", "not_found", "no such endpoint"),
])
def test_unknown_models_and_versions_are_404(client, path, code, message):
    r = infer(client, tensor(), path=path) if path.endswith("/infer") else client.get(path)
    assert r.status_code == 404
    assert r.get_json()["code"] == code and message in r.get_json()["error"]


def test_corrupt_older_version_says_why_it_is_not_served(models_dir):
    broken = write_version(models_dir)
    (broken / "model.npz").write_bytes(b"not a zip")
    write_version(models_dir)
    client = create_app({"models_dir": models_dir, "reload_interval": 0, "access_log": False}).test_client()
    r = client.get("/v2/models/mnist/versions/2/ready")
    assert r.status_code == 404
    assert r.get_json()["error"].startswith("version 2 of 'mnist' failed validation: model.npz")
    assert str(models_dir) not in r.get_json()["error"]  # no server paths in client messages
    assert infer(client, tensor()).status_code == 200  # version 3 keeps serving


def test_pinned_service_serves_only_its_version(models_dir):
    write_version(models_dir)
    client = create_app({"models_dir": models_dir, "model_version": "1", "reload_interval": 0,
                         "access_log": False}).test_client()
    r = infer(client, tensor(), path="/v2/models/mnist/versions/2/infer")
    assert r.status_code == 404 and "pinned to version 1 (MODEL_VERSION)" in r.get_json()["error"]
    assert client.get("/v2/models/mnist").get_json()["versions"] == ["1"]
    assert infer(client, tensor(), path="/v2/models/mnist/versions/1/infer").status_code == 200


def test_version_changed_on_disk_is_reloaded_not_served_stale(models_dir):
    write_version(models_dir)
    client = create_app({"models_dir": models_dir, "reload_interval": 0, "access_log": False}).test_client()
    path = "/v2/models/mnist/versions/1/infer"
    before = outputs(infer(client, tensor(1, "UINT8", data=[90] * 784), path=path))["probabilities"]["data"]
    v1 = models_dir / "mnist" / "1"
    shutil.rmtree(v1)
    write_version(models_dir, tiny_network(seed=7)).rename(v1)
    after = outputs(infer(client, tensor(1, "UINT8", data=[90] * 784), path=path))["probabilities"]["data"]
    assert before != after


BAD_BODIES = [
    (b"not json", "invalid_json", "not valid JSON"),
    (b"[1, 2]", "invalid_json", "must be a JSON object"),
    (b"", "invalid_json", "not valid JSON"),
    (b'{"inputs": [1e999]}', "invalid_json", "out of range"),
    (json.dumps({"inputs": []}), "invalid_tensor", "'inputs' must be a list holding one tensor"),
    (json.dumps({"inputs": [tensor(), tensor()]}), "invalid_tensor", "holding one tensor"),
    (json.dumps({"inputs": [tensor(name="pixels")]}), "unknown_input", "unknown input 'pixels'"),
    (json.dumps({"inputs": [tensor(datatype="INT8")]}), "invalid_datatype", "datatype 'INT8' not accepted"),
    (json.dumps({"inputs": [tensor(shape=[1, 785])]}), "invalid_shape", "shape must be [n, 784] or [n, 28, 28]"),
    (json.dumps({"inputs": [tensor(shape=[0, 784], data=[])]}), "invalid_shape", "n >= 1"),
    (json.dumps({"inputs": [tensor(shape=[1.0, 784])]}), "invalid_shape", "shape must be"),
    (json.dumps({"inputs": [tensor(shape=[2, 784])]}), "invalid_shape", "holds 784 values; shape [2, 784] needs 1568"),
    (json.dumps({"inputs": [tensor(data=[[0] * 784, [0] * 784])]}), "invalid_shape", "2 rows where 'shape'"),
    (json.dumps({"inputs": [tensor(2, data=[[0] * 784, [0] * 783])]}), "invalid_shape", "783 rows"),
    (json.dumps({"inputs": [tensor(data=[0] * 783 + [[0, 0]])]}), "invalid_shape", "mixes numbers and lists"),
    (json.dumps({"inputs": [tensor(data="0" * 784)]}), "invalid_tensor", "'data' must be a list"),
    (json.dumps({"inputs": [tensor(data=["0"] * 784)]}), "invalid_tensor", "only integers"),
    (json.dumps({"inputs": [tensor(data=[None] * 784)]}), "invalid_tensor", "only integers"),
    (json.dumps({"inputs": [tensor(data=[True] * 784)]}), "invalid_tensor", "only integers"),
    (json.dumps({"inputs": [tensor(data=[0.5] * 784)]}), "invalid_tensor", "only integers"),
    (json.dumps({"inputs": [tensor(data=[256] * 784)]}), "invalid_tensor",
     "UINT8 data must lie in 0-255, got 256..256"),
    (json.dumps({"inputs": [tensor(data=[-1] * 784)]}), "invalid_tensor", "0-255"),
    (json.dumps({"inputs": [tensor(datatype="FP32", data=["x"] * 784)]}), "invalid_tensor", "only numbers"),
    (json.dumps({"inputs": [tensor(datatype="FP32", data=[255.0] * 784)]}), "invalid_tensor",
     "FP32 pixels must lie in [0, 1], got 255..255; send 0-255 pixels as UINT8"),
    (json.dumps({"inputs": [tensor(datatype="FP32", data=[-0.5] * 784)]}), "invalid_tensor", "[0, 1]"),
    (json.dumps({"inputs": [tensor()], "outputs": [{"name": "logits"}]}), "unknown_output",
     "unknown output 'logits'; this model has probabilities, label"),
    (json.dumps({"inputs": [tensor()], "outputs": ["label"]}), "invalid_tensor", "'outputs' must be a list of objects"),
    (json.dumps({"inputs": [tensor()], "id": 7}), "invalid_tensor", "'id' must be a string"),
]


@pytest.mark.parametrize("body, code, message", BAD_BODIES)
def test_malformed_requests_are_400_with_the_reason(client, body, code, message):
    r = client.post(INFER, data=body)
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["code"] == code
    assert message in r.get_json()["error"]
    assert infer(client, tensor()).status_code == 200  # and the service keeps serving


def test_too_many_images_is_413(app):
    client = create_app({**state(app).config.__dict__, "max_batch_images": 4}).test_client()
    r = infer(client, tensor(5))
    assert r.status_code == 413
    assert r.get_json() == {"error": "at most 4 images per request, got 5", "code": "too_many_images"}


def test_body_over_the_byte_limit_is_413(config):
    client = create_app({**config, "max_upload_bytes": 2000}).test_client()
    r = infer(client, tensor())
    assert r.status_code == 413 and r.get_json()["code"] == "payload_too_large"


def test_image_uploads_are_pointed_to_predict(client):
    r = client.post(INFER, data=b"\x89PNG", content_type="image/png")
    assert r.status_code == 415 and "/predict" in r.get_json()["error"]


def binary_request(x, datatype, outputs=None, parameters=None, size=None):
    """A body in Triton's binary tensor format: the JSON, then the raw tensor; and its headers."""
    tensor = {"name": "image", "datatype": datatype, "shape": list(x.shape),
              "parameters": {"binary_data_size": x.nbytes if size is None else size}}
    header = json.dumps({"inputs": [tensor], **({"outputs": outputs} if outputs is not None else {}),
                         **({"parameters": parameters} if parameters else {})}).encode()
    return header + x.tobytes(), {"Inference-Header-Content-Length": str(len(header))}


def binary_outputs(response):
    """``{name: array}`` from a response in the binary format (JSON header, then raw outputs)."""
    length = int(response.headers["Inference-Header-Content-Length"])
    raw = response.get_data()
    header, rest, out = json.loads(raw[:length]), raw[length:], {}
    for o in header["outputs"]:
        if "data" in o:
            continue
        size = o["parameters"]["binary_data_size"]
        out[o["name"]] = np.frombuffer(rest[:size], {"FP32": "<f4", "INT64": "<i8"}[o["datatype"]]).reshape(o["shape"])
        rest = rest[size:]
    assert rest == b""
    return header, out


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "UINT8"])
def test_binary_tensors_in_and_out_match_json(real_client, mnist_test, datatype):
    images, labels = mnist_test
    x = images[:16].reshape(16, 784)
    wire = x if datatype == "UINT8" else (x / 255).astype({"FP32": "<f4", "FP64": "<f8"}[datatype])
    body, headers = binary_request(wire, datatype, parameters={"binary_data_output": True})
    r = real_client.post(INFER, data=body, headers=headers)
    assert r.status_code == 200 and r.mimetype == "application/octet-stream"
    header, out = binary_outputs(r)
    assert [o["name"] for o in header["outputs"]] == ["probabilities", "label"]
    assert (out["label"] == labels[:16]).mean() >= 0.9
    as_json = outputs(infer(real_client, tensor(16, "UINT8", data=x.ravel().tolist())))
    assert out["label"].tolist() == as_json["label"]["data"]
    assert np.allclose(out["probabilities"].ravel(), as_json["probabilities"]["data"], atol=1e-6)


def test_binary_and_json_outputs_mix_per_output(client):
    body, headers = binary_request(np.zeros((2, 784), np.uint8), "UINT8", outputs=[
        {"name": "label", "parameters": {"binary_data": True}}, {"name": "probabilities"}])
    header, out = binary_outputs(client.post(INFER, data=body, headers=headers))
    assert out["label"].shape == (2,) and "data" not in header["outputs"][0]
    assert len(header["outputs"][1]["data"]) == 20 and "parameters" not in header["outputs"][1]


def test_json_outputs_of_a_binary_request_are_plain_json(client):
    body, headers = binary_request(np.zeros((1, 784), np.uint8), "UINT8")
    r = client.post(INFER, data=body, headers=headers)
    assert r.is_json and "Inference-Header-Content-Length" not in r.headers
    assert outputs(r)["label"]["shape"] == [1]


@pytest.mark.parametrize("mangle, message", [
    (lambda b, h: (b, {"Inference-Header-Content-Length": "abc"}), "must be the length in bytes of the JSON"),
    (lambda b, h: (b, {"Inference-Header-Content-Length": str(len(b) + 1)}), "must be the length"),
    (lambda b, h: (b + b"\0", h), "binary_data_size must be the 785 bytes"),
    (lambda b, h: (b[:-1], h), "binary_data_size must be the 783 bytes"),
    (lambda b, h: (b[:int(h["Inference-Header-Content-Length"])], h), "binary_data_size must be the 0 bytes"),
])
def test_malformed_binary_requests_are_400(client, mangle, message):
    body, headers = mangle(*binary_request(np.zeros((1, 784), np.uint8), "UINT8"))
    r = client.post(INFER, data=body, headers=headers)
    assert r.status_code == 400 and message in r.get_json()["error"], r.get_json()


def test_binary_size_must_fit_the_shape(client):
    body, headers = binary_request(np.zeros((1, 784), "<f4"), "FP32")
    header_length = int(headers["Inference-Header-Content-Length"])
    squeezed = body[:header_length].replace(b"[1, 784]", b"[2, 784]")
    r = client.post(INFER, data=squeezed + body[header_length:],
                    headers={"Inference-Header-Content-Length": str(len(squeezed))})
    assert r.status_code == 400
    assert r.get_json()["error"] == "binary data holds 3136 bytes; FP32 shape [2, 784] needs 6272"
    stray = json.dumps({"inputs": [tensor()]}).encode()
    r = client.post(INFER, data=stray + b"xx", headers={"Inference-Header-Content-Length": str(len(stray))})
    assert r.status_code == 400 and "2 bytes of binary tensor data follow the JSON" in r.get_json()["error"]


def test_binary_fp32_pixels_are_range_checked(client):
    body, headers = binary_request(np.full((1, 784), 255, "<f4"), "FP32")
    r = client.post(INFER, data=body, headers=headers)
    assert r.status_code == 400 and "FP32 pixels must lie in [0, 1]" in r.get_json()["error"]


def test_get_on_infer_is_405_json(client):
    r = client.get(INFER)
    assert r.status_code == 405 and r.get_json()["code"] == "method_not_allowed" and r.headers["Allow"]


def test_api_key_protects_inference_and_metadata_not_probes(config):
    client = create_app({**config, "api_key": "s3cret"}).test_client()
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/mnist/ready"):
        assert client.get(path).status_code == 200, path
    assert client.get("/v2/models/mnist").status_code == 401
    assert client.get("/v2/models/mnist/versions/1/ready").status_code == 401  # may load a version from disk
    r = infer(client, tensor())
    assert r.status_code == 401 and r.get_json()["code"] == "unauthorized"
    ok = client.post(INFER, data=json.dumps({"inputs": [tensor()]}), headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert client.get("/v2/models/mnist", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_metrics_count_v2_requests_images_and_errors(client):
    infer(client, tensor(3))
    infer(client, tensor(2))
    client.post(INFER, data=b"nope")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mnist_http_requests_total{method="POST",route="/v2/models/<name>/infer",status="200"} 2.0' in text
    assert 'mnist_http_requests_total{method="POST",route="/v2/models/<name>/infer",status="400"} 1.0' in text
    assert "mnist_images_predicted_total 5.0" in text
    assert 'mnist_errors_total{code="invalid_json"} 1.0' in text
    assert "mnist_inference_duration_seconds_count 2.0" in text
