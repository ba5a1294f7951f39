"""GET /: the drawing page, one self-contained HTML file that talks to /predict, /read and /health.

The page inlines its CSS and JavaScript, so it needs no other URL and no build
step. Its Content-Security-Policy lets it talk to this origin only: a page
that holds an API key should not be able to send it anywhere else, nor be
framed by another site.
"""
from pathlib import Path

from flask import Blueprint, send_from_directory

bp = Blueprint("page", __name__)

STATIC = Path(__file__).resolve().parent / "static"
CSP = "; ".join([
    "default-src 'none'",
    "script-src 'unsafe-inline'",  # the page's one inline script; nothing is loaded from anywhere
    "style-src 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])


@bp.get("/")
def index():
    response = send_from_directory(STATIC, "index.html", mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
