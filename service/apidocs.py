"""GET /openapi.json, the service's contract, and GET /docs, a page that renders it for people.

The document is built once per app from its Config (:mod:`service.openapi`)
and served as JSON. The page is one static file that fetches it; like the
drawing page it loads nothing from anywhere else, under the same CSP.
"""
import orjson
from flask import Blueprint, Response, current_app, send_from_directory

from service.openapi import description
from service.page import CSP, STATIC
from service.state import state

bp = Blueprint("apidocs", __name__)
KEY = "openapi"


@bp.get("/openapi.json")
def openapi():
    cached = current_app.extensions.get(KEY)
    if cached is None:  # the Config never changes while the app runs
        cached = current_app.extensions[KEY] = orjson.dumps(description(state().config))
    return Response(cached, mimetype="application/json")


@bp.get("/docs")
def docs():
    response = send_from_directory(STATIC, "docs.html", mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response
