"""The drawing page at / in a real headless Chromium, against gunicorn serving the committed model.

Digits are drawn stroke by stroke with the mouse (or a touchscreen), so the
page's Pointer Events, its PNG upload and its rendering of the answer are all
exercised together. Every test fails on a console error or an uncaught
exception in the page. Waits go through ``expect`` rather than
``wait_for_function``: the page's Content-Security-Policy forbids eval, and
Playwright's function polling needs it.
"""
import json
import os
import re
import shutil

import numpy as np
import pytest

from tests.browser import (
    CHROMIUM,
    DESKTOP,
    DIGITS,
    PHONE,
    chromium,
    count,
    draw,
    first_prediction,
    number,
    result,
    settled,
    stroke,
    touch_stroke,
)
from tests.helpers import COMMITTED_MODEL, GOOD, REPO, png
from tests.live_server import LiveServer

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: the browser tests need Debian's chromium package",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the test extra)")
expect = sync_api.expect

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Pages:
    """Opens pages in fresh browser contexts and keeps each page's console errors and uncaught exceptions."""

    def __init__(self, browser):
        self.browser, self.contexts, self.errors, self.allowed = browser, [], [], []

    def open(self, url, init_script=None, **options):
        context = self.browser.new_context(**{**DESKTOP, **options})
        self.contexts.append(context)
        page = context.new_page()
        if init_script:
            page.add_init_script(init_script)
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        response = page.goto(url)
        assert response.ok, f"GET {url} answered {response.status}: is service.page.bp registered in create_app?"
        return page

    def allow(self, pattern):
        """Expect console errors matching ``pattern`` (a regex on "console: <text>")."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self):
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn with one worker, serving a copy of the committed model."""
    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(COMMITTED_MODEL, root / "models" / "mnist" / "1")
    with LiveServer(root / "models", root, workers=1) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def pages(browser):
    pages = Pages(browser)
    yield pages
    pages.close()
    assert pages.unexpected() == [], "the page logged errors"


def assert_shows(shown, digit):
    assert shown["digits"] == [str(d) for d in range(10)]
    assert shown["digit"] == str(digit), shown
    assert sum(shown["p"]) == pytest.approx(1, abs=1e-4)
    assert max(range(10), key=shown["p"].__getitem__) == digit
    assert shown["top"] == [str(digit)]  # the winner's bar, and only it, is highlighted
    assert [float(w.rstrip("%")) for w in shown["widths"]] == pytest.approx([100 * p for p in shown["p"]], abs=0.01)
    assert re.fullmatch(r"(>?\d+(\.\d)?)%", shown["confidence"]), shown["confidence"]


def ink(page):
    """Number of lit pixels on the pad's backing store (white ink on black)."""
    return page.evaluate("""() => {
        const pad = document.getElementById("pad");
        const data = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
        let lit = 0;
        for (let i = 0; i < data.length; i += 4) lit += data[i] > 127;
        return lit;
    }""")


# Chromium hands Playwright no body for a multipart request holding a Blob, so the
# page's FormData is read where it is sent.
RECORD_UPLOADS = """
window.uploads = [];
const send = window.fetch;
window.fetch = (url, init = {}) => {
    const image = init.body instanceof FormData ? init.body.get("image") : null;
    if (image) window.uploads.push({url: new URL(url, location.href).href, name: image.name,
                                    type: image.type, size: image.size});
    return send(url, init);
};
"""


def test_drawn_digits_are_recognised_and_clear_resets(server, pages):
    page = pages.open(server.url + "/", init_script=RECORD_UPLOADS)
    expect(page.locator("#version")).to_have_text(re.compile(r"^Model mnist v1 · \d+\.\d\d% test accuracy$"))
    sent = []
    page.on("request", lambda r: r.url.endswith("/predict") and sent.append(r))
    for digit in (0, 1, 7, 4, 3):
        shown = draw(page, DIGITS[digit])
        assert_shows(shown, digit)
        assert (shown["status"], shown["words"], shown["boxes"]) == ("ok", "", [])  # the digit says it all
        page.click("#clear")
        assert ink(page) == 0
        assert result(page)["digit"] == "?" and set(result(page)["p"]) == {0.0}
    assert page.text_content("#status") == "" and result(page)["status"] == ""
    # the canvas went as a PNG file in the multipart field "image", once per drawn stroke at most
    uploads = page.evaluate("() => window.uploads")
    expected = {(server.url + "/predict", "drawing.png", "image/png")}
    assert {(u["url"], u["name"], u["type"]) for u in uploads} == expected
    assert len(sent) == len(uploads) <= sum(len(DIGITS[d]) for d in (0, 1, 7, 4, 3))
    assert all(r.method == "POST" and r.headers["content-type"].startswith("multipart/form-data") for r in sent)
    assert all("authorization" not in r.headers for r in sent)  # no key entered, none sent


def test_undo_removes_the_last_stroke(server, pages):
    page = pages.open(server.url + "/")
    expect(page.locator("#undo")).to_be_disabled()
    bar, diagonal = DIGITS[7]
    bar_only = draw(page, [bar])
    bar_ink = ink(page)
    assert_shows(draw(page, [diagonal]), 7)
    assert ink(page) > bar_ink
    before = count(page)
    page.click("#undo")
    assert ink(page) == bar_ink  # exactly the one-stroke canvas again
    assert settled(page, before) == bar_only  # and it was classified again, as the bar alone was
    page.click("#undo")
    assert ink(page) == 0
    expect(page.locator("#undo")).to_be_disabled()
    assert result(page)["digit"] == "?"


def upload(page, path):
    before = count(page)
    page.set_input_files("#file", path)
    return settled(page, before)


def test_a_blank_picture_shows_nothing_drawn(server, pages, tmp_path):
    """The pad sends nothing until something is drawn, so a blank picture can only be uploaded."""
    page = pages.open(server.url + "/")
    (tmp_path / "blank.png").write_bytes(GOOD)
    shown = upload(page, tmp_path / "blank.png")
    assert (shown["status"], shown["words"]) == ("no_digit", "Nothing drawn")
    assert (shown["digit"], shown["confidence"]) == ("?", "–")
    assert shown["p"] == [0.0] * 10 and shown["top"] == [] and shown["boxes"] == []
    expect(page.locator("#bars .pct").first).to_have_text("–")
    expect(page.locator("#result")).to_have_attribute("aria-live", "polite")


@pytest.mark.parametrize("digits", [(7, 2, 1), (3, 0), (4, 1, 2)], ids=["721", "30", "412"])
def test_a_number_is_read_and_boxed(server, pages, digits):
    """Digits side by side: /predict says several_digits, the page sends the same PNG to /read,
    shows the number and puts a labelled box around each digit, left to right, on the pad."""
    page = pages.open(server.url + "/", init_script=RECORD_UPLOADS)
    shown = draw(page, number(digits))
    text = "".join(map(str, digits))
    assert (shown["digit"], shown["status"], shown["words"]) == (text, "ok", f"{len(text)} digits read"), shown
    assert re.fullmatch(r"(>?\d+(\.\d)?)%", shown["confidence"]) and shown["top"] == []
    boxes, (width, height) = shown["boxes"], shown["pad"]
    assert [b["digit"] for b in boxes] == list(text)
    assert all(0 <= b["left"] and b["left"] + b["width"] <= width + 0.5 for b in boxes)
    assert all(0 <= b["top"] and b["top"] + b["height"] <= height + 0.5 for b in boxes)
    assert all(a["left"] + a["width"] <= b["left"] for a, b in zip(boxes, boxes[1:]))  # apart, left to right
    # each box holds the ink of its digit: the middle of the slice the digit was drawn in
    slice_ = 0.92 / len(digits)
    assert all(b["left"] < (0.04 + (i + 0.5) * slice_) * width < b["left"] + b["width"] for i, b in enumerate(boxes))
    uploads = page.evaluate("() => window.uploads")
    reads = [u for u in uploads if u["url"].endswith("/read")]
    assert reads and reads[-1]["name"] == "drawing.png" and reads[-1]["size"] == uploads[-2]["size"]
    page.click("#clear")
    shown = result(page)
    assert (shown["digit"], shown["status"], shown["words"], shown["boxes"]) == ("?", "", "", [])


def test_number_boxes_follow_the_pad_on_a_phone(server, pages):
    page = pages.open(server.url + "/", **PHONE)
    shown = draw(page, number((1, 7)))
    assert shown["digit"] == "17" and len(shown["boxes"]) == 2
    assert all(b["left"] + b["width"] <= shown["pad"][0] + 0.5 for b in shown["boxes"])
    assert shown["boxes"][1]["left"] > shown["pad"][0] / 2  # the 7 is in the right half, where it was drawn


def committed_answers():
    return json.loads((COMMITTED_MODEL / "model.json").read_text()).get("answers")


SCRIBBLES = {
    "X": [[(0.15, 0.15), (0.85, 0.85)], [(0.85, 0.15), (0.15, 0.85)]],
    "zig-zag": [[(0.15 + 0.07 * i, 0.2 if i % 2 else 0.8) for i in range(11)]],
}


@pytest.mark.skipif(not committed_answers(), reason="the committed model's card has no answers block: "
                                                    "it flags nothing as not a digit")
@pytest.mark.parametrize("name", SCRIBBLES)
def test_a_scribble_is_not_a_digit(server, pages, name):
    page = pages.open(server.url + "/")
    shown = draw(page, SCRIBBLES[name])
    assert (shown["status"], shown["words"], shown["digit"], shown["top"]) == ("not_a_digit", "Not a digit", "?", [])


def canned(page, path, body):
    page.route("**/" + path, lambda route: route.fulfill(json=body))


P = [0.02, 0.01, 0.03, 0.05, 0.41, 0.02, 0.01, 0.03, 0.02, 0.4]


@pytest.mark.parametrize("prediction, digit, words", [
    ({"status": "uncertain", "digit": 4, "confidence": 0.41, "probabilities": P}, "4",
     "Not sure: it may be another digit"),
    ({"status": "not_a_digit", "digit": None, "confidence": 0.41, "probabilities": P}, "?", "Not a digit"),
], ids=["uncertain", "not_a_digit"])
def test_statuses_the_committed_model_may_not_give(server, pages, prediction, digit, words):
    """Answered by the page's own route, so that every status is shown whatever the model says."""
    page = pages.open(server.url + "/")
    canned(page, "predict", {"model": {"name": "mnist", "version": "1"}, "predictions": [prediction]})
    shown = draw(page, DIGITS[4])
    assert (shown["status"], shown["words"], shown["digit"], shown["confidence"]) == (
        prediction["status"], words, digit, "41.0%")
    assert shown["top"] == ([digit] if digit != "?" else []) and shown["p"] == P
    expect(page.locator("#verdict")).to_have_class("warn")


def test_a_number_with_a_mark_that_is_not_a_digit(server, pages):
    page = pages.open(server.url + "/")
    several = {"status": "several_digits", "digit": None, "confidence": 0.5, "probabilities": [0.1] * 10,
               "message": "several digits side by side: POST the image to /read to read the number"}
    canned(page, "predict", {"model": {"name": "mnist", "version": "1"}, "predictions": [several]})
    digits = [{"digit": 7, "status": "ok", "confidence": 0.99, "box": [10, 40, 60, 150]},
              {"digit": None, "status": "not_a_digit", "confidence": 0.3, "box": [100, 40, 60, 150]},
              {"digit": 1, "status": "uncertain", "confidence": 0.6, "box": [200, 0, 20, 150]}]
    canned(page, "read", {"model": {"name": "mnist", "version": "1"},
                          "readings": [{"text": "7?1", "status": "not_a_digit", "confidence": 0.18, "digits": digits}]})
    shown = draw(page, DIGITS[1])
    assert (shown["digit"], shown["status"], shown["confidence"]) == ("7?1", "not_a_digit", "18.0%")
    assert shown["words"] == "Not all of it is digits: ? marks what is not"
    assert [b["digit"] for b in shown["boxes"]] == ["7", "?", "1"]
    side = shown["pad"][0]
    scale = side / page.evaluate("() => Math.min(document.getElementById('pad').width, 280)")  # PNG px to CSS px
    for b, d in zip(shown["boxes"], digits):
        assert [b["left"], b["top"], b["width"], b["height"]] == pytest.approx([v * scale for v in d["box"]], abs=0.5)
    assert page.locator("#boxes > .box").nth(1).get_attribute("class") == "box not_a_digit"
    assert page.locator("#boxes > .box").nth(2).get_attribute("class") == "box uncertain inside"  # at the top edge


def test_uploaded_and_dropped_mnist_digits(server, pages, mnist_test, tmp_path):
    images, labels = mnist_test
    page = pages.open(server.url + "/")
    first = tmp_path / "mnist-0.png"
    first.write_bytes(png(images[0]))
    before = count(page)
    page.set_input_files("#file", first)
    assert_shows(settled(page, before), int(labels[0]))
    expect(page.locator("#clear")).to_be_enabled()  # the upload is previewed on the pad
    # the second one is dropped on the pad, as a photo would be: enlarged and black on white
    dark_on_light = png(np.kron(255 - images[1], np.ones((6, 6), np.uint8)))
    transfer = page.evaluate_handle("""bytes => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "photo.png", {type: "image/png"}));
        return transfer;
    }""", list(dark_on_light))
    before = count(page)
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    assert_shows(settled(page, before), int(labels[1]))


def test_api_key_is_asked_for_then_sent(pages, tmp_path):
    shutil.copytree(COMMITTED_MODEL, tmp_path / "models" / "mnist" / "1")
    # Chromium reports every 4xx fetch on the console; this 401 is the one error this test expects
    pages.allow(r"^console: Failed to load resource: the server responded with a status of 401")
    with LiveServer(tmp_path / "models", tmp_path, workers=1, api_key="s3cret-key") as server:
        page = pages.open(server.url + "/")
        sent = []
        page.on("request", lambda r: r.url.endswith("/predict") and sent.append(r.headers.get("authorization")))
        stroke(page, DIGITS[1][0])
        status = page.locator("#status")
        expect(status).to_have_text("This server requires an API key: enter it below, then press Use key.")
        expect(status).to_have_class("error")
        expect(page.locator("#keyform")).to_have_class(re.compile(r"\bneeded\b"))
        expect(page.locator("#apikey")).to_be_focused()
        assert result(page)["digit"] == "?"
        page.fill("#apikey", "wrong")
        page.press("#apikey", "Enter")  # the drawing is sent again, with this key
        expect(status).to_have_text("The API key was refused: enter it below, then press Use key.")
        before = count(page)
        page.fill("#apikey", "s3cret-key")
        page.click("text=Use key")
        assert_shows(settled(page, before), 1)
        expect(page.locator("#keyform")).not_to_have_class(re.compile(r"\bneeded\b"))
        # one request per key tried, though Enter and a click each fire both change and submit
        assert sent == [None, "Bearer wrong", "Bearer s3cret-key"]
        page.reload()  # the key is remembered in this browser
        expect(page.locator("#apikey")).to_have_value("s3cret-key")
    assert sum("401" in e for e in pages.errors) == 2, "Chromium no longer logs 401s? then drop the allowance"


def test_no_model_is_reported(pages, tmp_path):
    (tmp_path / "models").mkdir()
    # /health and /predict answer 503 while no model is loaded, and Chromium logs both
    pages.allow(r"^console: Failed to load resource: the server responded with a status of 503")
    with LiveServer(tmp_path / "models", tmp_path, workers=1) as server:
        page = pages.open(server.url + "/")
        expect(page.locator("#version")).to_have_text("No model loaded")
        stroke(page, DIGITS[1][0])
        expect(page.locator("#status")).to_have_text(re.compile(r"^Error: .+ \(no_model\)$"))
        expect(page.locator("#status")).to_have_class("error")
        assert result(page)["digit"] == "?" and count(page) == 0


def test_phone_layout_and_touch_drawing(server, pages):
    page = pages.open(server.url + "/", **PHONE)
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] == 390  # no horizontal scrolling
    pad, card = page.locator("#pad").bounding_box(), page.locator("#result").bounding_box()
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= 390 and pad["width"] > 300  # the pad fills the width
    assert card["y"] >= pad["y"] + pad["height"]  # the result is stacked below the pad
    side = page.evaluate("() => [document.getElementById('pad').width, document.getElementById('pad').clientWidth]")
    assert side[0] == round(side[1] * 3)  # backing store at the device pixel ratio: sharp strokes
    cdp = page.context.new_cdp_session(page)
    assert_shows(draw(page, DIGITS[7], lambda page, points: touch_stroke(cdp, page, points)), 7)
    page.click("#clear")
    assert_shows(draw(page, DIGITS[2]), 2)  # the mouse works there too
    cdp.detach()


def test_the_page_times_its_first_prediction(server, pages):
    """The page records when its first answer appeared, after loading and after the last stroke."""
    shown, ms = first_prediction(pages.open(server.url + "/"))
    assert_shows(shown, 1)
    assert 0 < ms["loaded"] < ms["first_prediction"] + ms["drawing"]  # loaded before it answered
    assert ms["answer"] >= 149.8  # never before the debounce has passed (the page's clock is coarsened to 0.1 ms)


def test_screenshot_with_a_prediction(server, pages, tmp_path):
    page = pages.open(server.url + "/")
    assert_shows(draw(page, DIGITS[3]), 3)
    expect(page.locator("#version")).to_contain_text("Model mnist v1")
    shot = page.screenshot(path=tmp_path / "page.png", animations="disabled")  # bars at full width
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "page.png").stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        (REPO / "docs" / "screenshot.png").write_bytes(shot)
