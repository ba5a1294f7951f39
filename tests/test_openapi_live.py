"""The contract against a live gunicorn: schemathesis fuzzes every operation, and /docs renders it in Chromium.

schemathesis (its CLI, as CI would run it) sends examples, boundary cases,
random and deliberately invalid requests to every operation the description
lists, with its default checks: no 5xx, every status, content type, header
and body as documented, invalid input refused, a declared API key enforced.
tests/schemathesis.toml holds the one allowance, and says why. A fixed seed
and a bounded number of examples per operation keep a run reproducible and
within about 30 s.
"""
import json
import re
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.browser import ARGS, CHROMIUM
from tests.helpers import COMMITTED_MODEL, REPO
from tests.live_server import LiveServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261130
EXAMPLES = 25  # per operation and phase
KEY = "fuzz-key-1"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("openapi")
    shutil.copytree(COMMITTED_MODEL, root / "models" / "mnist" / "1")
    return root


def schemathesis(server, workdir, *options):
    """Run the schemathesis CLI against ``server``; ``(exit code, output, seconds)``.

    It reads the description from a copy of what the server serves: loaded from
    its URL, schemathesis would leave out the operation that serves it.
    """
    (workdir / "openapi.json").write_bytes(requests.get(server.url + "/openapi.json").content)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(REPO / "tests" / "schemathesis.toml"),
               "run", "openapi.json", "--url", server.url, "--max-examples", str(EXAMPLES), "--seed", str(SEED),
               "--workers", "2", "--generation-database", "none", "--no-color",
               "--report", "ndjson", "--report-dir", str(workdir), *options]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=100)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def operations_tested(workdir):
    """The operations schemathesis reports it tested, from its ndjson event log."""
    seen = set()
    for path in workdir.glob("*.ndjson"):
        for line in path.read_text().splitlines():
            seen.update(_labels(json.loads(line)))
    return seen


def _labels(event):
    """Every ``"label": "GET /path"`` in an event, however deep."""
    if isinstance(event, dict):
        for key, value in event.items():
            if key == "label" and isinstance(value, str) and value.split(" ")[0] in ("GET", "POST"):
                yield value
            else:
                yield from _labels(value)
    elif isinstance(event, list):
        for value in event:
            yield from _labels(value)


# The second server needs the key, and has limits small enough for fuzzed requests to reach them.
SMALL = {"max_upload_bytes": 3000, "max_batch_images": 2, "max_image_pixels": 1000, "max_request_pixels": 1500}


@pytest.mark.parametrize("api_key, limits, sent_as", [("", {}, None), (KEY, SMALL, "Authorization: Bearer {}"),
                                                     (KEY, SMALL, "X-API-Key: {}")],
                         ids=["open", "bearer-key", "x-api-key"])
def test_schemathesis_finds_nothing(models, tmp_path, api_key, limits, sent_as):
    with LiveServer(models / "models", tmp_path, workers=2, api_key=api_key, access_log="false",
                    **limits) as server:
        operations = {f"{m.upper()} {p}" for p, item in requests.get(server.url + "/openapi.json").json()[
            "paths"].items() for m in item}
        options = ["--header", sent_as.format(api_key)] if api_key else []
        code, output, seconds = schemathesis(server, tmp_path, *options)
    # every generated case passed; a warning (such as "mostly rejected generated data" for random
    # bytes posted as an image, which tests/schemathesis.toml allows) is not a failure
    assert code == 0 and re.search(r"(\d+) generated, \1 passed", output), output[-6000:]
    assert f"{len(operations)} selected / {len(operations)} total" in output, output[-3000:]
    assert operations_tested(tmp_path) >= operations
    assert seconds < 60, f"schemathesis took {seconds:.0f} s"


def test_docs_page_renders_every_operation(models, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: the browser tests need Debian's chromium package")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
    with LiveServer(models / "models", tmp_path, workers=1, api_key=KEY) as server, \
            sync_api.sync_playwright() as pw:
        doc = requests.get(server.url + "/openapi.json").json()
        described = [(m, p) for p, item in doc["paths"].items() for m in item]
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page()
        errors, elsewhere = [], []
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        origin = urlsplit(server.url)[:2]
        page.on("request", lambda r: urlsplit(r.url)[:2] != origin and elsewhere.append(r.url))
        assert page.goto(server.url + "/docs").ok
        sync_api.expect(page.locator("#ops")).to_have_attribute("aria-busy", "false")
        shown = page.eval_on_selector_all("details.op", "ops => ops.map(o => [o.dataset.method, o.dataset.path,"
                                          " o.querySelector('summary').textContent])")
        locks = page.locator("details.op summary [title='needs the API key']").count()
        page.locator("details.op").first.click()  # opening one shows its responses
        first = page.locator("details.op").first.locator("tr").count()
        browser.close()
    assert sorted((m, p) for m, p, _ in shown) == sorted(described)
    assert all(m in text and p in text for m, p, text in shown)
    assert locks == sum("security" in op for item in doc["paths"].values() for op in item.values()) > 0
    assert first > 3
    assert errors == [] and elsewhere == []
