"""Trace context through the real gunicorn: into the JSON logs, and exported over OTLP/HTTP when asked.

The collector is a plain HTTP server on 127.0.0.1 that keeps what it is sent
and decodes it with OpenTelemetry's own protobuf definitions.
"""
import http.server
import json
import shutil
import threading

import pytest
import requests

from tests.helpers import COMMITTED_MODEL, REPO
from tests.live_server import LiveServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRACE, PARENT = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
DIGIT = (REPO / "examples" / "digit.png").read_bytes()


@pytest.fixture
def models(tmp_path):
    shutil.copytree(COMMITTED_MODEL, tmp_path / "models" / "mnist" / "1")
    return tmp_path / "models"


def log_lines(server):
    return [json.loads(line) for line in server.read_log().splitlines() if line.startswith("{")]


def test_the_trace_id_goes_into_the_logs_with_the_request_id(models, tmp_path):
    with LiveServer(models, tmp_path, workers=1) as server:
        server.wait_models_loaded()
        r = requests.post(server.url + "/predict", data=DIGIT, timeout=10, headers={
            "Content-Type": "image/png", "traceparent": f"00-{TRACE}-{PARENT}-01", "X-Request-ID": "trace-me"})
        bad = requests.post(server.url + "/predict", data=b"nope", timeout=10, headers={
            "Content-Type": "image/png", "traceparent": f"00-{TRACE}-{PARENT}-01", "X-Request-ID": "trace-me-2"})
        lines = log_lines(server)
    assert r.status_code == 200 and bad.status_code == 400
    span = r.headers["traceparent"].split("-")[2]
    access = [ln for ln in lines if ln.get("request_id") == "trace-me" and ln["logger"] == "service.access"]
    assert len(access) == 1 and access[0]["trace_id"] == TRACE and access[0]["span_id"] == span
    assert access[0]["status"] == 200 and access[0]["route"] == "/predict"
    refused = [ln for ln in lines if ln.get("request_id") == "trace-me-2"]
    assert refused and all(ln["trace_id"] == TRACE for ln in refused)


class Collector(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    Collector.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Collector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def exported_spans():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans = []
    for path, content_type, body in Collector.received:
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            resource = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                spans += [(resource, s) for s in ss.spans]
    return spans


def test_spans_are_exported_over_otlp_when_the_environment_asks(models, tmp_path, collector):
    pytest.importorskip("opentelemetry.sdk", reason="the OTLP test needs the otel extra")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector, "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_SERVICE_NAME": "digits-test"}
    with LiveServer(models, tmp_path, workers=1, **env) as server:
        server.wait_models_loaded()
        r = requests.post(server.url + "/predict", data=DIGIT, timeout=10, headers={
            "Content-Type": "image/png", "traceparent": f"00-{TRACE}-{PARENT}-01", "X-Request-ID": "exported"})
        assert r.status_code == 200
        ours = r.headers["traceparent"].split("-")
        for _ in range(100):  # the batch processor sends within its 100 ms delay
            spans = [(res, s) for res, s in exported_spans() if s.trace_id.hex() == TRACE]
            if spans:
                break
            threading.Event().wait(0.1)
    assert len(spans) == 1, exported_spans()
    resource, span = spans[0]
    attributes = {a.key: a.value for a in span.attributes}
    assert resource["service.name"] == "digits-test"
    assert span.name == "POST /predict" and span.kind == span.SPAN_KIND_SERVER
    assert span.parent_span_id.hex() == PARENT and span.span_id.hex() == ours[2] and ours[1] == TRACE
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["http.route"].string_value == "/predict"
    assert attributes["mnist.request_id"].string_value == "exported"
