"""CORS from a real page on another origin, in headless Chromium.

A page served from one origin (a plain HTTP server on 127.0.0.1) calls the
service on another (``localhost``, another port): Chromium sends the
preflight that the custom headers call for, then the POST, and the page reads
the answer and the exposed X-Request-ID, or, without CORS_ORIGINS, is kept
from reading anything.
"""
import base64
import functools
import http.server
import shutil
import threading

import pytest

from tests.browser import CHROMIUM, chromium
from tests.helpers import COMMITTED_MODEL, REPO
from tests.live_server import LiveServer, free_port

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: the browser tests need Debian's chromium package", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the test extra)")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIGIT = base64.b64encode((REPO / "examples" / "digit.png").read_bytes()).decode()
CALL = """async ([url, key, digit]) => {
    const png = Uint8Array.from(atob(digit), c => c.charCodeAt(0));
    const headers = {"Content-Type": "image/png", "X-Request-ID": "from-the-other-origin"};
    if (key) headers["Authorization"] = "Bearer " + key;
    try {
        const r = await fetch(url + "/predict", {method: "POST", headers, body: png});
        return {status: r.status, requestId: r.headers.get("X-Request-ID"), body: await r.json()};
    } catch (e) {
        return {error: String(e)};
    }
}"""


@pytest.fixture(scope="module")
def app_origin(tmp_path_factory):
    """A page's origin: a static server on 127.0.0.1 serving an empty page."""
    root = tmp_path_factory.mktemp("other-origin")
    (root / "index.html").write_text("<!doctype html><title>another app</title>")
    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def serve(tmp_path, **env):
    shutil.copytree(COMMITTED_MODEL, tmp_path / "models" / "mnist" / "1")
    return LiveServer(tmp_path / "models", tmp_path, workers=1, **env)


def call_from(browser, origin, service_url, key=None):
    """Run CALL in a page of ``origin``; the result and the service's requests Chromium made."""
    context = browser.new_context()
    try:
        page = context.new_page()
        seen = []
        page.on("request", lambda r: r.url.startswith(service_url) and seen.append((r.method, r.url)))
        page.goto(origin + "/index.html")
        return page.evaluate(CALL, [service_url, key, DIGIT]), seen
    finally:
        context.close()


def test_a_page_on_an_allowed_origin_calls_predict(browser, app_origin, tmp_path):
    with serve(tmp_path, CORS_ORIGINS=app_origin, API_KEY="k3y") as server:
        service_url = f"http://localhost:{server.port}"  # another host name: another origin
        result, seen = call_from(browser, app_origin, service_url, key="k3y")
        log = server.read_log()
    assert result.get("status") == 200, result
    assert result["body"]["predictions"][0]["digit"] == 7 and result["body"]["predictions"][0]["status"] == "ok"
    assert result["requestId"] == "from-the-other-origin"  # an exposed header
    assert ("POST", service_url + "/predict") in seen
    assert '"method":"OPTIONS"' in log and '"status":204' in log  # the preflight, answered without the key


def test_without_cors_origins_the_page_cannot_read_the_answer(browser, app_origin, tmp_path):
    with serve(tmp_path) as server:
        result, _ = call_from(browser, app_origin, f"http://localhost:{server.port}")
    assert "error" in result and "Failed to fetch" in result["error"], result


def test_an_origin_not_listed_cannot_read_the_answer(browser, app_origin, tmp_path):
    with serve(tmp_path, CORS_ORIGINS="https://someone-else.example") as server:
        result, _ = call_from(browser, app_origin, f"http://localhost:{server.port}")
    assert "error" in result, result
