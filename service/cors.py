"""CORS, so that browser apps on other origins can call the service.

Off unless CORS_ORIGINS names the origins allowed (``https://app.example``,
comma-separated, or ``*`` for any): with it unset no response carries a CORS
header, and browsers keep other sites' pages from reading the answers.

For an allowed origin every response, errors included, says so: a page that
cannot read a 401 or a 503 cannot tell its user what went wrong. Preflights
(OPTIONS with ``Access-Control-Request-Method``) are answered without an API
key, as browsers send them without credentials; they allow the headers the
API reads (the key, the content type, request and trace IDs, the V2 binary
extension's) and say how long a browser may cache the answer. Responses
expose the headers a client app needs: the request ID, the trace context and
``Retry-After``. No credentials mode: the key travels in a header the app
sets, never in a cookie.
"""
import re

from flask import request

ALLOWED_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "X-Request-ID", "traceparent", "tracestate",
                   "Inference-Header-Content-Length")
EXPOSED_HEADERS = ("X-Request-ID", "traceparent", "Retry-After")
MAX_AGE_SECONDS = 600
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def parse_origins(value):
    """CORS_ORIGINS as a set of origins, ``{"*"}``, or an empty set; ValueError names a malformed one."""
    origins = {o.strip().rstrip("/") for o in value.split(",") if o.strip()}
    if "*" in origins:
        if len(origins) > 1:
            raise ValueError("'*' allows every origin and cannot be combined with others")
        return origins
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(f"{origin!r} is not an origin such as https://app.example or http://localhost:3000")
    return origins


def allowed(origins, origin):
    """Whether a page of ``origin`` (None: not a cross-origin request) may read the answers."""
    return bool(origins) and origin is not None and ("*" in origins or origin in origins)


def answer_headers(origins, origin, preflight=False):
    """The CORS headers of an answer to a page of ``origin``: none unless it is allowed."""
    if not allowed(origins, origin):
        return []
    # one answer for every origin with "*"; otherwise caches must not hand one origin's answer to another
    shared = [("Access-Control-Allow-Origin", "*")] if "*" in origins else \
        [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    return shared if preflight else shared + [("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS))]


def is_preflight():
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def init_app(app, origins):
    if not origins:
        return

    @app.after_request
    def add_cors_headers(response):
        preflight = is_preflight() and response.status_code < 400
        for name, value in answer_headers(origins, request.headers.get("Origin"), preflight):
            if name == "Vary":
                response.vary.add(value)
            else:
                response.headers[name] = value
        if preflight and "Access-Control-Allow-Origin" in response.headers:
            response.status_code = 204
            response.headers["Access-Control-Allow-Methods"] = response.headers.get("Allow", "")
            response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
            response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
            response.set_data(b"")
            for name in ("Content-Type", "Content-Length"):  # a 204 has no body to describe
                response.headers.pop(name, None)
        return response
