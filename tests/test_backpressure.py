"""Backpressure: a worker holds at most MAX_QUEUED_REQUESTS model requests; past it a quick 503 ``overloaded``.

The in-process tests fill the worker's count by hand; tests/test_overload.py
drives a real gunicorn past its capacity.
"""
import json

import pytest

from service import admission, create_app
from service.client import Client
from service.state import state
from tests.helpers import STROKE, assert_error

V2_BLANK = b'{"inputs":[{"name":"image","shape":[1,784],"datatype":"FP32","data":[' + b",".join([b"0"] * 784) + b"]}]}"
GUARDED = [("/predict", "image/png", STROKE), ("/read", "image/png", STROKE),
           ("/v2/models/mnist/infer", "application/json", V2_BLANK)]


@pytest.fixture
def full_app(config):
    app = create_app({**config, "max_queued_requests": 2})
    state(app).admission.held = 2  # two requests already waiting for this worker
    return app


def held_gauge(client):
    text = client.get("/metrics").get_data(as_text=True)
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith("mnist_requests_held ")))


@pytest.mark.parametrize("path, content_type, body", GUARDED)
def test_past_the_bound_model_requests_get_503_overloaded(full_app, path, content_type, body):
    c = full_app.test_client()
    r = c.post(path, data=body, content_type=content_type)
    assert_error(r, 503, "overloaded")
    assert r.headers["Retry-After"] == "1" and "MAX_QUEUED_REQUESTS" in r.json["error"]
    metrics = c.get("/metrics").get_data(as_text=True)
    assert 'mnist_errors_total{code="overloaded"} 1.0' in metrics
    assert state(full_app).admission.held == 2  # a refused request holds nothing


@pytest.mark.parametrize("path", ["/health", "/health/live", "/metrics", "/v2/health/ready", "/v2/models/mnist"])
def test_probes_and_reads_of_state_are_always_answered(full_app, path):
    assert full_app.test_client().get(path).status_code == 200


def test_preflights_are_not_counted(full_app):
    assert full_app.test_client().options("/predict").status_code == 200


@pytest.mark.parametrize("path, content_type, body", GUARDED)
def test_every_admitted_request_is_released(client, app, path, content_type, body):
    assert client.post(path, data=body, content_type=content_type).status_code == 200
    assert client.post(path, data=b"not an image", content_type=content_type).status_code == 400
    assert state(app).admission.held == 0 and held_gauge(client) == 0


def test_the_bound_is_per_worker_and_configurable(config):
    app = create_app({**config, "max_queued_requests": 1})
    c = app.test_client()
    assert c.post("/predict", data=STROKE, content_type="image/png").status_code == 200  # 1 held while it ran
    state(app).admission.held = 1
    assert c.post("/predict", data=STROKE, content_type="image/png").status_code == 503


class FakeSession:
    """Answers from a script: (status, headers) pairs, then 200 {"ok": true}."""

    def __init__(self, script):
        self.script, self.headers, self.calls = list(script), {}, 0

    def request(self, method, url, **kwargs):
        import requests

        self.calls += 1
        status, headers = self.script.pop(0) if self.script else (200, {})
        r = requests.Response()
        r.status_code, r.headers = status, requests.structures.CaseInsensitiveDict(headers)
        r._content = b'{"ok": true}' if status == 200 else b'{"error": "busy", "code": "overloaded"}'
        return r


def test_the_client_retries_overloaded_no_sooner_than_retry_after(monkeypatch):
    slept = []
    monkeypatch.setattr("service.client.time.sleep", slept.append)
    session = FakeSession([(503, {"Retry-After": "2"}), (503, {"Retry-After": "1"})])
    assert Client("http://x", session=session, retries=3, backoff=0.01)._call("GET", "/health") == {"ok": True}
    assert session.calls == 3 and slept[0] >= 2 and slept[1] >= 1


def test_the_client_gives_up_after_its_retries(monkeypatch):
    monkeypatch.setattr("service.client.time.sleep", lambda s: None)
    from service.client import ServiceError

    session = FakeSession([(503, {"Retry-After": "1"})] * 5)
    with pytest.raises(ServiceError) as err:
        Client("http://x", session=session, retries=2)._call("GET", "/health")
    assert err.value.status == 503 and err.value.code == "overloaded" and session.calls == 3


def test_backoff_grows_with_jitter_and_is_capped():
    import random

    c = Client("http://x", backoff=0.25, rng=random.Random(1))
    waits = [[c.wait(attempt) for _ in range(200)] for attempt in range(4)]
    for attempt, w in enumerate(waits):
        base = 0.25 * 2**attempt
        assert 0.5 * base <= min(w) and max(w) <= 1.5 * base and len(set(w)) > 100  # spread, not in lockstep
    assert c.wait(0, retry_after=3600) == 30.0  # the default max_wait
    assert c.wait(0, retry_after=2) == 2


class GunicornRequest:
    """The parts of a gunicorn request that the worker's early refusal reads."""

    def __init__(self, method, path, headers=()):
        self.method, self.path, self.headers = method, path, [(k.upper(), v) for k, v in headers]


def parse_raw(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    return status_line, dict(line.split(": ", 1) for line in lines), body


@pytest.mark.parametrize("close", [False, True])
def test_the_worker_refuses_a_full_queue_before_the_app_with_the_same_answer(config, close):
    app = create_app({**config, "max_queued_requests": 2, "cors_origins": "https://app.example"})
    state(app).admission.held = 2
    req = GunicornRequest("POST", "/v2/models/mnist/infer", [
        ("X-Request-ID", "early-1"), ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("Origin", "https://app.example"), ("Content-Length", "1234")])
    status, headers, body = parse_raw(admission.early_refusal(app, req, ("127.0.0.1", 5555), close=close))
    through_flask = app.test_client().post("/v2/models/mnist/infer", data=V2_BLANK, content_type="application/json")
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert json.loads(body) == through_flask.json and through_flask.json["code"] == "overloaded"
    assert headers["Content-Length"] == str(len(body)) and headers["Content-Type"] == "application/json"
    assert headers["Retry-After"] == "1" and headers["X-Request-ID"] == "early-1"
    assert headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example" and headers["Vary"] == "Origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert ("Connection" in headers) is close
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'mnist_errors_total{code="overloaded"} 2.0' in metrics  # this refusal and the one through Flask
    assert ('mnist_http_requests_total{method="POST",route="/v2/models/<name>/infer",status="503"} 2.0'
            in metrics)


@pytest.mark.parametrize("method, path, held", [
    ("POST", "/predict", 1),            # room in the queue: the app takes it
    ("GET", "/health", 2),              # never refused
    ("GET", "/v2/models/mnist", 2),
    ("POST", "/nowhere", 2),            # the app's 404
    ("OPTIONS", "/predict", 2),         # a preflight
])
def test_the_worker_leaves_everything_else_to_the_app(config, method, path, held):
    app = create_app({**config, "max_queued_requests": 2})
    state(app).admission.held = held
    assert admission.early_refusal(app, GunicornRequest(method, path), ("127.0.0.1", 1)) is None


def test_early_refusals_count_as_refusals_of_the_full_queue(config):
    app = create_app({**config, "max_queued_requests": 1})
    for path in ("/predict", "/read", "/v2/models/mnist/versions/1/infer"):
        state(app).admission.held = 1
        assert admission.early_refusal(app, GunicornRequest("POST", path), None).startswith(b"HTTP/1.1 503 ")
