"""The drawing page: from navigation to the first prediction on screen, in a real browser.

    python benchmarks/page_bench.py              # 20 cold page loads, about 30 s
    python benchmarks/page_bench.py --runs 50

Starts gunicorn (default config, 2 workers) with the committed model and
Debian's headless Chromium (``/usr/bin/chromium``, driven by Playwright). Each
run opens the page in a fresh browser context (empty cache), draws a "1" with
mouse events as soon as the page has loaded, and reads the page's own clock:

- ``loaded``: navigation start to the load event;
- ``answer``: last pointerup to the digit on screen (150 ms of it is the page's
  debounce, which waits for a possible next stroke);
- ``first_prediction``: navigation start to the digit on screen, less the time
  the mouse spent drawing (a person would take longer; that is not the page's).
"""
import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import ARGS, CHROMIUM, DESKTOP, first_prediction  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402


def one_run(browser, url):
    context = browser.new_context(**DESKTOP)
    errors = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    shown, ms = first_prediction(page)
    context.close()
    if errors or shown["digit"] != "1":
        raise RuntimeError(f"the page showed {shown['digit']!r}, errors: {errors}")
    return ms


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp, LiveServer(REPO / "models", tmp) as server, \
            sync_playwright() as pw:
        server.wait_models_loaded()
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        one_run(browser, server.url + "/")  # the browser's own first start is not the page's
        runs = [one_run(browser, server.url + "/") for _ in range(args.runs)]
        browser.close()
    print(f"\n{args.runs} cold page loads, ms{'':<14}{'median':>8}{'p90':>8}{'max':>8}")
    for key in ("first_prediction", "loaded", "answer", "drawing"):
        v = np.array([r[key] for r in runs])
        print(f"{key:<32}{np.median(v):>8.0f}{np.percentile(v, 90):>8.0f}{v.max():>8.0f}")


if __name__ == "__main__":
    main()
