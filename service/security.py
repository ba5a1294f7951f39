"""Who may call what, and the headers every response carries.

With API_KEY set, clients send it as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``. Only the probes, the scrape endpoint, the server's
metadata and the drawing page stay open: each of them is cheap and says
nothing about the model store. Everything that runs a model, loads a version
or describes versions needs the key. The comparison is constant-time over the
key's UTF-8 bytes, so timing reveals nothing and any key a shell can type works.

``/v2/models/<name>/ready`` stays open as the probe KServe-style deployments
use; ``/v2/models/<name>/versions/<v>/ready`` does not, since it may load an
older version from disk.
"""
import hmac

from flask import request

from service.errors import ApiError
from service.state import state

OPEN_ENDPOINTS = {"health.ready", "health.live", "health.metrics", "page.index",
                  "v2.server_metadata", "v2.live", "v2.ready", "apidocs.openapi", "apidocs.docs"}
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def init_app(app):
    app.before_request(authorise)
    app.after_request(add_headers)


def authorise():
    if request.url_rule is None or request.endpoint in OPEN_ENDPOINTS:
        return  # unknown URLs get their 404 either way
    if request.method == "OPTIONS":
        return  # browsers send CORS preflights without credentials; the answer names methods only
    if request.endpoint == "v2.model_ready" and (request.view_args or {}).get("version") is None:
        return
    require_api_key(state().config.api_key, request.headers)


def add_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def presented_keys(headers):
    """Every credential the request presents: its Authorization header and its X-API-Key.

    Each must be the key: a request that sends a right key in one header and
    anything else in the other is refused, so which header wins can never
    matter. An Authorization header counts as its Bearer token, and one in
    any other scheme as a credential that cannot match.
    """
    keys = []
    if "Authorization" in headers:
        scheme, _, token = headers["Authorization"].partition(" ")
        keys.append(token.strip() if scheme.lower() == "bearer" else None)
    if "X-API-Key" in headers:
        keys.append(headers["X-API-Key"])
    return keys


def _raw(header_value):
    """A header's bytes as the client sent them (WSGI decodes them as Latin-1)."""
    try:
        return header_value.encode("latin-1")
    except UnicodeEncodeError:  # not from a socket: a str built in-process
        return header_value.encode("utf-8")


def require_api_key(expected, headers):
    """Raise 401 unless ``expected`` is empty or the request presents it."""
    if not expected:
        return
    given = presented_keys(headers)
    key = expected.encode("utf-8")
    # every comparison runs, so the time taken says nothing about which key was wrong
    matches = [k is not None and hmac.compare_digest(_raw(k), key) for k in given]
    if not given or not all(matches):
        raise ApiError(401, "unauthorized", "missing or invalid API key" if given else "API key required",
                       {"WWW-Authenticate": 'Bearer realm="mnist-serving"'})
