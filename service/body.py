"""Receiving request bodies: within the size limit, in bounded time, within a memory budget.

Every POST body is read here once, before the view runs, and handed on as an
in-memory stream, so the views, Werkzeug's form parser and the V2 parser all
see a complete body and none of them meets the network. Here the body:

- must fit MAX_UPLOAD_BYTES whether it comes with a Content-Length or chunked
  (413, never silently cut short);
- must arrive within BODY_TIMEOUT seconds in all, each read waiting at most
  the worker's read timeout (408 otherwise): a client that trickles a byte a
  second holds a connection for a minute at most;
- must be well framed (a malformed chunk is a 400, not an exception);
- must fit the worker's budget of bytes held for request bodies,
  MAX_PENDING_BYTES (503 ``overloaded`` with Retry-After when full, at once).
  Bytes are charged as they arrive, not as a Content-Length promises them,
  so holding the budget costs a client the bytes themselves.

A failed body read ends the connection (``Connection: close``): what is left
of the body on the socket cannot be told apart from a next request.
"""
import contextlib
import io

from flask import g, request

from service.errors import ApiError
from service.state import state
from service.worker import close_connection

CHUNK = 1 << 16


class PendingBytes:
    """The bytes of request bodies a worker holds, charged a read (at most CHUNK) ahead.

    gevent switches greenlets only while one waits for the network, never
    between the check and the update below, so no lock is needed.
    """

    def __init__(self, budget):
        self.budget, self.held = budget, 0

    def reserve(self, n):
        if self.held + n > self.budget:
            return False
        self.held += n
        return True

    def release(self, n):
        self.held -= n


def init_app(app):
    app.before_request(receive)
    app.teardown_request(_release)


def receive():
    """Read a POST body into memory and put it back as the request's input stream."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    cfg = state().config
    length, chunked = request.content_length, request.environ.get("wsgi.input_terminated", False)
    if length is not None and length > cfg.max_upload_bytes:
        raise _too_large(cfg.max_upload_bytes)
    g.pending_bytes = 0
    body = _read(request.environ["wsgi.input"], length if length is not None else (None if chunked else 0),
                 cfg.max_upload_bytes, state().pending, cfg.body_timeout)
    request.environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                            "wsgi.input_terminated": False})


def _read(stream, length, limit, pending, seconds):
    """``length`` bytes of ``stream`` (None: until it ends), refusing more than ``limit`` or ``seconds``."""
    parts, size = [], 0
    want = limit + 1 if length is None else length
    try:
        with deadline(seconds):
            while size < want:
                n = min(CHUNK, want - size)
                if not pending.reserve(n):
                    raise _failed(503, "overloaded", "too many uploads in progress; retry shortly",
                                  {"Retry-After": "1"})
                g.pending_bytes += n
                part = stream.read(n)
                if not part:
                    break
                parts.append(part)
                size += len(part)
    except ApiError:
        raise
    except BodyDeadline:
        raise _failed(408, "request_timeout", f"the body did not arrive within {seconds:g} s") from None
    except TimeoutError:
        raise _failed(408, "request_timeout", "the client stopped sending the body") from None
    except Exception:  # gunicorn's chunk errors, a connection that closed early
        raise _failed(400, "bad_request", "the request body is malformed or ended early") from None
    if size > limit:
        raise _too_large(limit)
    if length is not None and size < length:
        raise _failed(400, "bad_request", "the request body ended before its Content-Length")
    return b"".join(parts)


class BodyDeadline(Exception):
    """The whole body took longer than BODY_TIMEOUT."""


def deadline(seconds):
    """A limit on the time a block may take, where the worker can impose one.

    Under the gevent worker a timer interrupts a read that is still waiting
    when the time is up: the socket's own timeout only bounds each wait, and
    a client sending a byte every few seconds never trips it. Elsewhere (the
    debug server, tests) reads are bounded by their socket timeouts alone.
    """
    try:
        from gevent import Timeout, monkey
    except ImportError:
        return contextlib.nullcontext()
    return Timeout(seconds, BodyDeadline) if monkey.is_module_patched("socket") else contextlib.nullcontext()


def _too_large(limit):
    return _failed(413, "payload_too_large", f"request body larger than {limit} bytes (MAX_UPLOAD_BYTES)")


def _failed(status, code, message, headers=None):
    close_connection()
    return ApiError(status, code, message, headers)


def _release(exc=None):
    promised = g.pop("pending_bytes", 0)
    if promised:
        state().pending.release(promised)
