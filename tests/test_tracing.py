"""W3C trace context: parsing, the trace returned on every answer and written into the logs, export off by default."""
import json
import logging
import re
import subprocess
import sys

import pytest

from service import logs
from service.logs import JsonFormatter
from service.tracing import export_requested, parse_traceparent
from tests.helpers import REPO, STROKE

TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
RETURNED = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@pytest.mark.parametrize("value, expected", [
    (TRACEPARENT, (TRACE, PARENT, "01")),
    (f" 00-{TRACE}-{PARENT}-00 ", (TRACE, PARENT, "00")),
    (f"cc-{TRACE}-{PARENT}-01-what-comes-later", (TRACE, PARENT, "01")),  # a later version: read its first fields
])
def test_valid_traceparents(value, expected):
    assert parse_traceparent(value) == expected


@pytest.mark.parametrize("value", [
    "", "garbage", TRACEPARENT.upper(), f"ff-{TRACE}-{PARENT}-01", f"00-{TRACE}-{PARENT}-01-extra",
    f"00-{'0' * 32}-{PARENT}-01", f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE[:-1]}-{PARENT}-01",
    f"00-{TRACE}-{PARENT}-1", f"0-{TRACE}-{PARENT}-01", f"00_{TRACE}_{PARENT}_01", "00-" + "g" * 32 + f"-{PARENT}-01",
])
def test_invalid_traceparents_are_ignored(value):
    assert parse_traceparent(value) is None


def returned(response):
    m = RETURNED.fullmatch(response.headers["traceparent"])
    assert m, response.headers["traceparent"]
    return m.groups()


def test_the_callers_trace_is_continued(client):
    r = client.post("/predict", data=STROKE, content_type="image/png", headers={"traceparent": TRACEPARENT})
    assert r.status_code == 200
    trace, span, flags = returned(r)
    assert trace == TRACE and span not in (PARENT, "0" * 16) and flags == "01"


@pytest.mark.parametrize("given", [None, "garbage", f"00-{'0' * 32}-{PARENT}-01"])
def test_a_request_without_a_valid_traceparent_starts_a_trace(client, given):
    headers = {"traceparent": given} if given else {}
    first, second = (client.get("/health", headers=headers) for _ in range(2))
    assert first.status_code == 200
    (t1, s1, f1), (t2, s2, _) = returned(first), returned(second)
    assert t1 != "0" * 32 and t1 != t2 and s1 != s2 and f1 == "00"


def test_errors_carry_the_trace_too(client):
    for r in (client.get("/nowhere", headers={"traceparent": TRACEPARENT}),
              client.post("/predict", data=b"not an image", content_type="image/png",
                          headers={"traceparent": TRACEPARENT})):
        assert r.status_code in (400, 404) and returned(r)[0] == TRACE


def test_log_lines_of_a_request_carry_its_trace_and_request_id(app):
    formatter, lines = JsonFormatter(), []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(formatter.format(record)))

    handler = Keep()
    logging.getLogger("service.access").addHandler(handler)
    logging.getLogger("service.access").setLevel("INFO")
    try:
        with app.test_request_context("/predict", headers={"traceparent": TRACEPARENT, "X-Request-ID": "req-42"}):
            app.preprocess_request()
            logs.access.info("inside the request")
    finally:
        logging.getLogger("service.access").removeHandler(handler)
    assert lines and lines[-1]["trace_id"] == TRACE and lines[-1]["request_id"] == "req-42"
    assert re.fullmatch(r"[0-9a-f]{16}", lines[-1]["span_id"])


@pytest.mark.parametrize("env, wanted", [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_SERVICE_NAME": "digits"}, False),
])
def test_export_only_when_the_environment_asks(env, wanted):
    assert export_requested(env) is wanted


def test_without_otel_settings_opentelemetry_is_not_even_imported(models_dir):
    code = ("import sys, os; from service import create_app; "
            f"c = create_app({{'models_dir': {str(models_dir)!r}, 'log_level': 'ERROR'}}).test_client(); "
            f"r = c.get('/health', headers={{'traceparent': {TRACEPARENT!r}}}); "
            "print(r.headers['traceparent'][3:35], any(m.startswith('opentelemetry') for m in sys.modules))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == [TRACE, "False"]
