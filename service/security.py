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


def presented_key(headers):
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("X-API-Key", "")


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
    given = presented_key(headers)
    if not given or not hmac.compare_digest(_raw(given), expected.encode("utf-8")):
        raise ApiError(401, "unauthorized", "missing or invalid API key" if given else "API key required",
                       {"WWW-Authenticate": 'Bearer realm="mnist-serving"'})
