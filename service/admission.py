"""Backpressure: a bound on the model requests a worker holds, and a quick 503 past it.

A worker runs one forward pass at a time, so every request it has taken in
and not yet answered waits for the CPU behind the others: with no bound, a
client pool larger than the service can serve makes every answer slower,
without limit, until clients time out. Here a worker holds at most
MAX_QUEUED_REQUESTS model requests (/predict, /read, V2 inference), waiting or
running; the next one is answered at once with 503 ``overloaded`` and
``Retry-After``, which clients (``service.client`` among them) retry after a
pause, and which a load balancer can send to another replica. An accepted
request then waits for at most that many forward passes.

A request is counted once its body has arrived (:mod:`service.body` bounds
the arrival on its own): clients that upload slowly hold bytes, not places in
the queue, so they cannot turn everyone else away.

Under the gevent worker a request that is admitted yields once before its
work, so every request whose bytes came in with it is counted before any of
them runs: that is what makes ``held`` the length of the worker's queue
rather than 0 or 1. The probes and /metrics are never refused: a deployment
must be able to see a busy replica as alive.

Refusing must cost far less than serving, or the refusals themselves use
up the CPU the accepted requests need: clients that do not wait for
Retry-After send again at once, and under overload most requests are
refused. A refusal through Flask costs about a third of a prediction, so the
gunicorn worker asks :func:`early_refusal` first and, when the queue is
already full, answers from here, before the app, the request's body or its
parsing: the same JSON, status, headers (request ID, trace context, CORS),
metrics and access-log line as the app's answer, written as raw bytes.
docs/reliability.md#overload has what it buys.
"""
import json
import time
from http import HTTPStatus

from flask import g, request
from werkzeug.exceptions import HTTPException

from service import cors, logs, security, tracing
from service.errors import ApiError
from service.state import KEY, state

# the endpoints that run the model; everything else is cheap and always answered
GUARDED = {"predict.predict", "read.read", "v2.infer"}
RETRY_AFTER_SECONDS = 1


class Admission:
    """The model requests one worker holds: admitted and not yet answered."""

    def __init__(self, limit):
        self.limit, self.held = limit, 0
        self.pause = _cooperative_yield()
        self.refusal_body = json.dumps({"error": _message(limit), "code": "overloaded"},
                                       separators=(",", ":")).encode()
        self.routes = self.origins = None  # the app's URL map and CORS origins, read once (early_refusal)

    def try_enter(self):
        # gevent switches greenlets only while one waits for I/O, never between this test
        # and the increment, so the count needs no lock
        if self.held >= self.limit:
            return False
        self.held += 1
        return True

    def leave(self):
        self.held -= 1


def init_app(app):
    """Register after :mod:`service.body`, so that a request is counted once its body is in."""
    app.before_request(admit)
    app.teardown_request(release)


def admit():
    if request.method != "POST" or request.endpoint not in GUARDED:
        return
    st = state()
    if not st.admission.try_enter():
        raise ApiError(503, "overloaded", _message(st.admission.limit), {"Retry-After": str(RETRY_AFTER_SECONDS)})
    g.admitted = True
    st.metrics.held.inc()
    st.admission.pause()


def release(exc=None):
    if g.pop("admitted", False):
        st = state()
        st.admission.leave()
        st.metrics.held.dec()


def _message(limit):
    return f"this worker already holds {limit} requests (MAX_QUEUED_REQUESTS); retry shortly"


def early_refusal(app, req, remote_addr, close=False):
    """The raw HTTP answer to ``req`` (a gunicorn request, head parsed, body unread) when it is a
    model request and this worker's queue is full; None when the app should handle it."""
    st = app.extensions.get(KEY)
    if st is None or req.method != "POST" or st.admission.held < st.admission.limit:
        return None
    started = time.perf_counter()
    route = _guarded_route(st.admission, app, req.path)
    if route is None:
        return None
    headers = {name.lower(): value for name, value in req.headers}
    request_id = logs.request_id(headers.get("x-request-id", ""))
    trace_id, span_id, flags = tracing.local_span(tracing.parse_traceparent(headers.get("traceparent", "")))
    body = st.admission.refusal_body
    head = [f"HTTP/1.1 503 {HTTPStatus(503).phrase}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", f"Retry-After: {RETRY_AFTER_SECONDS}", f"X-Request-ID: {request_id}",
            f"traceparent: 00-{trace_id}-{span_id}-{flags}", *(f"{k}: {v}" for k, v in security.HEADERS.items())]
    if st.admission.origins is None:
        st.admission.origins = st.config.cors_origin_set
    head += [f"{k}: {v}" for k, v in cors.answer_headers(st.admission.origins, headers.get("origin"))]
    if close:
        head.append("Connection: close")
    st.metrics.errors.labels("overloaded").inc()
    st.metrics.observe_request(route, "POST", 503, time.perf_counter() - started)
    if st.config.access_log:
        logs.access_line("POST", route, req.path, 503, started, int(headers.get("content-length", 0) or 0),
                         len(body), (remote_addr or ("",))[0], request_id=request_id, trace_id=trace_id,
                         span_id=span_id)
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _guarded_route(admission, app, path):
    """The route template of a model endpoint ``path`` answers, else None."""
    if admission.routes is None:
        admission.routes = app.url_map.bind("localhost")
    try:
        rule, _ = admission.routes.match(path, "POST", return_rule=True)
    except HTTPException:
        return None
    return rule.rule if rule.endpoint in GUARDED else None


def _cooperative_yield():
    """A call that lets the requests that arrived with this one be counted before it runs:
    ``gevent.sleep(0)`` under the gevent worker, nothing elsewhere (tests, the debug server)."""
    try:
        from gevent import monkey, sleep
    except ImportError:
        return lambda: None
    return (lambda: sleep(0)) if monkey.is_module_patched("socket") else (lambda: None)
