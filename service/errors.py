"""One error shape for every failure: ``{"error": "<message>", "code": "<machine_code>"}``.

Views raise :class:`ApiError`; Werkzeug's HTTP errors (404, 405, 413 ...) and
anything unexpected are turned into the same shape here, in one place. The
message is written for the client and never includes exception text or a
traceback; unexpected errors are logged with theirs.
"""
import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Werkzeug's status -> our code, for errors Flask raises before a view runs.
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
              408: "request_timeout", 413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
              429: "too_many_requests", 431: "headers_too_large"}
HTTP_MESSAGES = {404: "no such endpoint", 405: "method not allowed for this endpoint",
                 413: "request body too large"}


class ApiError(Exception):
    """An error response: HTTP ``status``, machine ``code``, human ``message``."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def response(status, code, message, headers=None):
    body = jsonify(error=message, code=code)
    body.status_code = status
    body.headers.update(headers or {})
    return body


def init_app(app):
    @app.errorhandler(ApiError)
    def api_error(exc):
        return response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        status = exc.code or 500
        message = HTTP_MESSAGES.get(status, (exc.description or exc.name).rstrip("."))
        if status == 413:  # bodies over MAX_UPLOAD_BYTES never get here: service.body refuses them first
            message = _form_refused(app.config)
        headers = dict(exc.get_response().headers) if status == 405 else None  # keeps Allow
        headers = {"Allow": headers["Allow"]} if headers and "Allow" in headers else None
        return response(status, HTTP_CODES.get(status, "http_error"), message, headers)

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error")
        return response(500, "internal_error", "internal server error; see the service log")


def _form_refused(config):
    """What a Werkzeug 413 means here: the multipart form's shape, not its size."""
    return (f"multipart form refused: more than {config['MAX_FORM_PARTS']} parts, or a text field over "
            f"{config['MAX_FORM_MEMORY_SIZE']} bytes (send images as file parts)")
