"""Driving the drawing page in headless Chromium: launch settings, strokes, and what the page shows.

Shared by tests/test_browser.py and benchmarks/page_bench.py. Importing this
module needs neither Chromium nor Playwright; driving a page needs both.
"""
import contextlib
import math
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
DESKTOP = {"viewport": {"width": 1000, "height": 640}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless, driven by Playwright; closed on the way out."""
    from playwright.sync_api import sync_playwright  # here: importing this module needs no playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def arc(cx, cy, rx, ry, start, end, n=24):
    """Points on an ellipse from ``start`` to ``end`` degrees, clockwise from 12 o'clock."""
    angles = [math.radians(start + (end - start) * i / n) for i in range(n + 1)]
    return [(cx + rx * math.sin(t), cy - ry * math.cos(t)) for t in angles]


# Strokes in pad coordinates, (0, 0) top left to (1, 1) bottom right.
DIGITS = {
    0: [arc(0.5, 0.5, 0.22, 0.32, 0, 360, n=36)],
    1: [[(0.54, 0.18), (0.46, 0.82)]],
    2: [[(0.3, 0.3), (0.4, 0.18), (0.6, 0.18), (0.68, 0.32), (0.6, 0.5), (0.3, 0.82), (0.72, 0.82)]],
    3: [arc(0.5, 0.33, 0.17, 0.15, -60, 180)[:-4] + arc(0.5, 0.66, 0.2, 0.18, 0, 240)[4:]],
    4: [[(0.35, 0.18), (0.28, 0.58), (0.72, 0.58)], [(0.6, 0.3), (0.6, 0.85)]],
    7: [[(0.28, 0.22), (0.72, 0.22)], [(0.72, 0.22), (0.45, 0.82)]],
}


def within(strokes, left, top, width, height):
    """``strokes`` (pad coordinates) squeezed into the rectangle at ``(left, top)`` of that size."""
    return [[(left + x * width, top + y * height) for x, y in points] for points in strokes]


def number(digits, top=0.15, height=0.7, margin=0.04):
    """The strokes of ``digits`` written side by side across the pad, each in an equal slice of its width."""
    width = (1 - 2 * margin) / len(digits)
    slices = [within(DIGITS[d], margin + i * width, top, width, height) for i, d in enumerate(digits)]
    return [points for strokes in slices for points in strokes]


def pad_path(page, points, spacing=12):
    """Page coordinates along ``points`` (pad-relative), about ``spacing`` px apart: pointermove fires all along."""
    box = page.locator("#pad").bounding_box()
    xy = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    out = [xy[0]]
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        steps = max(1, round(math.hypot(x1 - x0, y1 - y0) / spacing))
        out += [(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(1, steps + 1)]
    return out


def stroke(page, points):
    path = pad_path(page, points)
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y)
    page.mouse.up()


def touch_stroke(cdp, page, points):
    """One finger dragged along ``points``: real touch input, which the page receives as touch pointers."""
    path = pad_path(page, points)
    kinds = ["touchStart"] + ["touchMove"] * (len(path) - 1)
    for kind, (x, y) in zip(kinds, path):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def count(page):
    return int(page.get_attribute("body", "data-predictions"))


def settled(page, before):
    """The result once the prediction for everything drawn so far is shown (``before``: count before drawing)."""
    from playwright.sync_api import expect  # here: importing this module needs no playwright

    expect(page.locator("#result")).to_have_attribute("aria-busy", "false")
    expect(page.locator("body")).not_to_have_attribute("data-predictions", str(before))
    return result(page)


def draw(page, strokes, draw_stroke=stroke):
    before = count(page)
    for points in strokes:
        draw_stroke(page, points)
    return settled(page, before)


def result(page):
    """What the page shows: the digit (or number), the confidence, the status (its name and in words),
    the ten bars, and the boxes on the pad as ``{"digit", "left", "top", "width", "height"}`` in
    CSS pixels relative to the pad."""
    shown = page.evaluate("""() => {
        const bars = [...document.querySelectorAll("#bars > li")];
        const pad = document.getElementById("pad").getBoundingClientRect();
        const boxes = [...document.querySelectorAll("#boxes > .box")].map(box => {
            const r = box.getBoundingClientRect();
            return {digit: box.dataset.digit, left: r.left - pad.left, top: r.top - pad.top,
                    width: r.width, height: r.height};
        });
        return {digit: document.getElementById("digit").textContent,
                confidence: document.getElementById("confidence").textContent,
                status: document.getElementById("result").dataset.status || "",
                words: document.getElementById("verdict").textContent, boxes,
                pad: [pad.width, pad.height],
                digits: bars.map(li => li.dataset.digit), p: bars.map(li => li.dataset.p),
                widths: bars.map(li => li.querySelector(".fill").style.width),
                top: bars.filter(li => li.classList.contains("top")).map(li => li.dataset.digit)};
    }""")
    shown["p"] = [float(p) for p in shown["p"]]
    return shown


def first_prediction(page):
    """Draw a "1" on a freshly loaded page; ``(what it showed, timings in ms by the page's own clock)``.

    ``first_prediction``: navigation start to the digit on screen, less the
    time the mouse spent drawing; ``loaded``: navigation start to the load
    event; ``answer``: last pointerup to the digit on screen (150 ms of it is
    the debounce); ``drawing``. benchmarks/page_bench.py reports these.
    """
    before, now = count(page), "() => performance.now()"
    drawing_from = page.evaluate(now)
    for points in DIGITS[1]:
        stroke(page, points)
    shown = settled(page, before)
    # the page's own stamp of the last stroke's end: a later evaluate() would
    # start the clock late by however long the round trip to Chromium took
    first, loaded, drawn_at = page.evaluate(
        "() => [window.firstPredictionMs, performance.getEntriesByType('navigation')[0].loadEventEnd,"
        " window.predictionScheduledMs]")
    return shown, {"first_prediction": first - (drawn_at - drawing_from), "loaded": loaded,
                   "answer": first - drawn_at, "drawing": drawn_at - drawing_from}
