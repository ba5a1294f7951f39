"""The /predict, /health and /metrics contract, through Flask's test client."""
import io
import json
import logging
import re

import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.logs import JsonFormatter
from tests.helpers import png


def sample(families, metric, **labels):
    """The value of one sample in a /metrics scrape (0 if absent)."""
    for family in families:
        for s in family.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def scrape(client):
    return list(text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)))


DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"-ish bar; any ink will do for the tiny model


def test_predict_multipart_single_image(client):
    r = client.post("/predict", data={"image": (io.BytesIO(png(DIGIT)), "d.png")})
    assert r.status_code == 200
    body = r.get_json()
    assert body["model"] == {"name": "mnist", "version": "1"}
    [p] = body["predictions"]
    assert 0 <= p["digit"] <= 9 and len(p["probabilities"]) == 10
    assert p["confidence"] == pytest.approx(max(p["probabilities"]), abs=1e-6)
    assert p["probabilities"].index(max(p["probabilities"])) == p["digit"]
    assert sum(p["probabilities"]) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream"])
def test_predict_raw_body(client, content_type):
    r = client.post("/predict", data=png(DIGIT), content_type=content_type)
    assert r.status_code == 200
    assert len(r.get_json()["predictions"]) == 1


def test_batch_keeps_order_and_matches_single_requests(client):
    rng = np.random.default_rng(1)
    images = [png(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(5)]
    batch = client.post("/predict", data={"image": [(io.BytesIO(b), f"{i}.png") for i, b in enumerate(images)]})
    singles = [client.post("/predict", data=b, content_type="image/png").get_json()["predictions"][0]
               for b in images]
    assert batch.status_code == 200
    got = batch.get_json()["predictions"]
    assert [p["digit"] for p in got] == [p["digit"] for p in singles]
    # a batched matrix product may round differently in the last digit
    np.testing.assert_allclose([p["probabilities"] for p in got], [p["probabilities"] for p in singles], atol=2e-6)


def test_real_digits_with_committed_model(real_models_dir, mnist_test):
    images, labels = mnist_test
    client = create_app({"models_dir": real_models_dir, "reload_interval": 0, "access_log": False}).test_client()
    picks = [int(np.flatnonzero(labels == d)[0]) for d in range(10)]  # one of each digit
    r = client.post("/predict", data={"image": [(io.BytesIO(png(images[i])), f"{i}.png") for i in picks]})
    assert [p["digit"] for p in r.get_json()["predictions"]] == list(range(10))


@pytest.mark.parametrize("mode,fmt", [("1", "PNG"), ("L", "PNG"), ("RGB", "JPEG"), ("RGBA", "PNG"), ("P", "GIF"),
                                      ("RGB", "BMP"), ("L", "TIFF"), ("RGB", "WEBP"), ("I;16", "PNG"),
                                      ("LA", "PNG"), ("CMYK", "JPEG")])
def test_every_common_format_and_mode(client, mode, fmt):
    big = Image.fromarray(255 - DIGIT).resize((140, 140))
    r = client.post("/predict", data=png(big, mode=mode, fmt=fmt), content_type="image/" + fmt.lower())
    assert r.status_code == 200, r.get_json()


def test_health_reports_the_serving_model(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    assert body["model"]["name"] == "mnist" and body["model"]["version"] == "1"
    assert body["model"]["test_accuracy"] == 0.5 and body["model"]["loaded_at"].endswith("+00:00")


def test_health_is_503_without_a_model(tmp_path):
    client = create_app({"models_dir": tmp_path, "reload_interval": 0, "access_log": False}).test_client()
    r = client.get("/health")
    assert r.status_code == 503
    assert r.get_json()["status"] == "unavailable" and r.get_json()["code"] == "no_model"
    assert "no versions" in r.get_json()["reason"]
    assert client.get("/health/live").get_json() == {"status": "alive"}


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    hostile = client.get("/health", headers={"X-Request-ID": "a b\u00e9" + "x" * 200}).headers["X-Request-ID"]
    assert hostile != "a b" and len(hostile) == 32
    assert client.get("/nope").headers["X-Request-ID"]  # errors carry one too


@pytest.mark.parametrize("headers,status", [
    ({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"X-API-Key": "wrong"}, 401),
    ({"Authorization": "Bearer s3cret"}, 200), ({"X-API-Key": "s3cret"}, 200),
    ({"Authorization": "bearer s3cret"}, 200),
    # every key presented must be the key, whichever header carries it
    ({"Authorization": "Bearer s3cret", "X-API-Key": "s3cret"}, 200),
    ({"Authorization": "Bearer s3cret", "X-API-Key": "wrong"}, 401),
    ({"Authorization": "Bearer wrong", "X-API-Key": "s3cret"}, 401),
    ({"Authorization": "Bearer", "X-API-Key": "s3cret"}, 401),
    ({"Authorization": "Bearer ", "X-API-Key": "s3cret"}, 401),
    ({"X-API-Key": ""}, 401),
    # a credential in another scheme is one that cannot match
    ({"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": "s3cret"}, 401),
    ({"Authorization": "s3cret", "X-API-Key": "s3cret"}, 401),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
])
def test_api_key(config, headers, status):
    client = create_app({**config, "api_key": "s3cret"}).test_client()
    r = client.post("/predict", data=png(DIGIT), content_type="image/png", headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.get_json()["code"] == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/health").status_code == 200  # probes stay open
    assert client.get("/metrics").status_code == 200  # and so do scrapers


def test_metrics_count_requests_images_digits_and_errors(client):
    for _ in range(3):
        client.post("/predict", data={"image": [(io.BytesIO(png(DIGIT)), "a.png"), (io.BytesIO(png(DIGIT)), "b.png")]})
    client.post("/predict", data=b"not an image", content_type="image/png")
    client.get("/nope")
    families = scrape(client)
    assert sample(families, "mnist_http_requests_total", route="/predict", method="POST", status="200") == 3
    assert sample(families, "mnist_http_requests_total", route="/predict", method="POST", status="400") == 1
    assert sample(families, "mnist_http_requests_total", route="<unmatched>", status="404") == 1
    assert sample(families, "mnist_images_predicted_total") == 6
    assert sum(sample(families, "mnist_predictions_total", digit=str(d)) for d in range(10)) == 6
    assert sample(families, "mnist_errors_total", code="invalid_image") == 1
    assert sample(families, "mnist_errors_total", code="not_found") == 1
    assert sample(families, "mnist_inference_duration_seconds_count") == 3
    assert sample(families, "mnist_upload_bytes_total") == 6 * len(png(DIGIT)) + len(b"not an image")
    assert sample(families, "mnist_model_info", name="mnist", version="1") == 1
    assert sample(families, "mnist_model_last_reload_timestamp_seconds") > 1.7e9
    assert sample(families, "mnist_http_request_duration_seconds_count", route="/predict", method="POST") == 4


def test_metric_labels_never_come_from_the_url(client):
    for path in ("/a", "/b/c", "/predict/../x", "/%00"):
        client.get(path)
    text = client.get("/metrics").get_data(as_text=True)
    assert "/a" not in text and "/b/c" not in text
    assert 'route="<unmatched>"' in text


def test_access_log_is_json_without_image_bytes(config, caplog):
    client = create_app({**config, "access_log": True, "log_level": "INFO"}).test_client()
    with caplog.at_level("INFO", logger="service.access"):
        client.post("/predict", data=png(DIGIT), content_type="image/png", headers={"X-Request-ID": "req-42"})
    [record] = [r for r in caplog.records if r.name == "service.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/predict" and line["status"] == 200 and line["method"] == "POST"
    assert line["bytes_in"] == len(png(DIGIT)) and line["duration_ms"] >= 0
    assert "PNG" not in json.dumps(line)


def test_log_lines_carry_the_request_id(app):
    with app.test_request_context("/health", headers={"X-Request-ID": "req-7"}):
        app.preprocess_request()
        record = logging.LogRecord("service", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    assert line == {"ts": line["ts"], "level": "warning", "logger": "service", "message": "hello world",
                    "request_id": "req-7", "trace_id": line["trace_id"], "span_id": line["span_id"]}
    assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"]) and re.fullmatch(r"[0-9a-f]{16}", line["span_id"])
