"""JSON-lines logging to stdout, every line tagged with the request's ID.

Log collectors parse one JSON object per line without regexes; the request ID
ties an access-log line to the application's own lines for that request and to
the X-Request-ID the client saw, and the trace ID (:mod:`service.tracing`) to
the caller's traces. Nothing here ever logs a request body.
"""
import json
import logging
import os
import re
import sys
import time
import uuid

from flask import g, has_request_context, request

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        if has_request_context():
            for name in ("request_id", "trace_id", "span_id"):
                if name in g:
                    line[name] = g.get(name)
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def configure(level):
    """Send every logger's records to stdout as JSON lines (idempotent)."""
    root = logging.getLogger()
    if not any(getattr(h, "_mnist", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._mnist = True
        root.addHandler(handler)
    root.setLevel(level.upper())


def request_id(given=None):
    """The client's X-Request-ID (``given``, or the current request's) when it is short and
    plain, else a new one."""
    given = request.headers.get("X-Request-ID", "") if given is None else given
    return given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex


access = logging.getLogger("service.access")


def log_access(response, route, started):
    access_line(request.method, route, request.path, response.status_code, started, request.content_length or 0,
                response.content_length, request.remote_addr)


def access_line(method, route, path, status, started, bytes_in, bytes_out, remote_addr, **ids):
    """One access-log line; ``ids`` (request_id, trace_id, span_id) for a request answered outside Flask."""
    access.info("%s %s %s", method, route, status, extra={"fields": {
        **ids, "method": method, "route": route, "path": path, "status": status,
        "duration_ms": round(1000 * (time.perf_counter() - started), 2),
        "bytes_in": bytes_in, "bytes_out": bytes_out, "remote_addr": remote_addr, "pid": os.getpid()}})
