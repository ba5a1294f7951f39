"""The gunicorn worker class: gevent's, with read deadlines and the service's JSON errors.

Why gevent: a gthread worker gives each connection a thread for as long as
its request takes to arrive, so a handful of clients that send slowly (or not
at all) hold every thread and the service stops answering. Here every
connection is a greenlet, and one that waits for bytes costs a few kB and no
thread; the CPU work (decoding, the forward pass) runs exactly as before, one
request at a time per worker process. Waiting is bounded too:

- the request head must arrive within ``keepalive`` seconds (gunicorn's
  deadline for the gevent worker), else the connection is closed;
- a body read waits at most ``READ_TIMEOUT`` seconds for the next bytes, and
  the whole body must arrive within ``BODY_TIMEOUT`` (see :mod:`service.body`).

Errors gunicorn finds before the app runs (a malformed request line, too many
headers, an unsupported transfer coding) are answered in the service's error
shape instead of gunicorn's HTML page.
"""
import contextvars
import json
import logging
from http import HTTPStatus

import gevent
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker

from service import admission

log = logging.getLogger(__name__)

READ_TIMEOUT = 10.0  # seconds a socket read may wait for the client's next bytes

# gunicorn's parse errors -> (status, code, message). The message is ours: the
# exception's text quotes the client's bytes back, which has no place in a reply.
PARSE_ERRORS = (
    (http_errors.LimitRequestLine, 414, "uri_too_long", "request line too long"),
    (http_errors.LimitRequestHeaders, 431, "headers_too_large", "too many or too large request headers"),
    (http_errors.UnsupportedTransferCoding, 400, "bad_request",
     "unsupported Transfer-Encoding; send the body with Content-Length or chunked"),
    (http_errors.ExpectationFailed, 417, "expectation_failed", "unsupported Expect header"),
    (http_errors.ForbiddenProxyRequest, 403, "forbidden", "request forbidden"),
    ((http_errors.InvalidHeader, http_errors.InvalidHeaderName, http_errors.ObsoleteFolding), 400, "bad_request",
     "malformed request header"),
    (http_errors.ParseException, 400, "bad_request", "malformed HTTP request"),
    (http_errors.NoMoreData, 400, "bad_request", "the request ended early"),
)
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
_request = contextvars.ContextVar("gunicorn_request", default=None)  # per greenlet under gevent


def close_connection():
    """End this request's connection after its response ("Connection: close").

    gunicorn drops a Connection header set by the app (it is hop-by-hop), so
    the app asks here; outside this worker (tests, the debug server) it does nothing.
    """
    req = _request.get()
    if req is not None:
        req.must_close = True


def error_response(status, code, message):
    """The raw bytes of a JSON error response that closes the connection."""
    body = json.dumps({"error": message, "code": code}, separators=(",", ":")).encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close", *(f"{k}: {v}" for k, v in SECURITY_HEADERS)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


def parse_error(exc):
    """``(status, code, message)`` for an error in the client's request, or None for anything else."""
    if isinstance(exc, (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)):
        return None  # a header the app tried to send: our fault, not the client's
    for kind, status, code, message in PARSE_ERRORS:
        if isinstance(exc, kind):
            return status, code, message
    return None


class Worker(GeventWorker):
    """gunicorn's gevent worker with a socket read timeout and JSON parse errors."""

    def handle(self, listener, client, addr):
        client.settimeout(READ_TIMEOUT)  # the parent sets blocking mode, which would wait forever
        super(GeventWorker, self).handle(listener, client, addr)

    def handle_request(self, listener_name, req, sock, addr):
        token = _request.set(req)
        try:
            self.cfg.pre_request(self, req)  # may ask for the connection to close (gunicorn.conf.py)
            refusal = admission.early_refusal(self.wsgi, req, addr, close=req.must_close)
            if refusal is not None:  # the queue is full: answered before the app (service.admission)
                util.write(sock, refusal)
                if req.must_close:
                    raise StopIteration()
                return True
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            _request.reset(token)
            # Serve the other connections before this one's next request. gevent switches only
            # when a read would block, so a client whose next request is already in the socket
            # buffer would be served again and again while the rest wait (docs/reliability.md has
            # the latency it cost); sleep(0) does not help, as it yields without polling the sockets.
            gevent.idle()

    def handle_error(self, req, client, addr, exc):
        known = parse_error(exc)
        if known is not None:
            self.log.info("refused a malformed request from %s: %s", (addr or ("?",))[0], type(exc).__name__)
            status, code, message = known
        elif isinstance(exc, TimeoutError):  # the client stopped sending: nobody is listening
            self.log.debug("closing a connection that stopped sending")
            return
        else:
            self.log.exception("error handling a request")
            status, code, message = 500, "internal_error", "internal server error; see the service log"
        try:
            util.write_nonblock(client, error_response(status, code, message))
        except Exception:  # the client may be gone already
            self.log.debug("could not send the error response")
