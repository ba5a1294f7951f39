"""Each status of /predict and /read on clear cases, through gunicorn serving the committed model,
with the thresholds its card records (and the card and configuration changing them)."""
import json
import shutil

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw, ImageFont

from tests.helpers import COMMITTED_MODEL, GOOD, edit_card, png
from tests.live_server import LiveServer
from tests.test_read import number

pytestmark = pytest.mark.integration
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def typed(text, size=(120, 120), points=80):
    """``text`` typed black on white in DejaVu Sans, as the issue tried it: a PNG."""
    img = Image.new("L", size, 255)
    ImageDraw.Draw(img).text((size[0] // 2, size[1] // 2), text, font=ImageFont.truetype(DEJAVU, points),
                             fill=0, anchor="mm")
    return png(np.asarray(img))


def answers(server, route, *images):
    r = requests.post(server.url + route, files=[("image", (f"{i}.png", img)) for i, img in enumerate(images)],
                      timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions" if route == "/predict" else "readings"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("answers")
    shutil.copytree(COMMITTED_MODEL, root / "models" / "mnist" / "1")
    return root


@pytest.fixture(scope="module")
def server(store):
    with LiveServer(store / "models", store, access_log="false") as live:
        live.wait_models_loaded()
        yield live


def test_the_committed_model_carries_its_answers_block():
    block = json.loads((COMMITTED_MODEL / "model.json").read_text())["answers"]
    assert 0.2 < block["temperature"] < 5
    assert 0 < block["read_digit_score_threshold"] <= block["digit_score_threshold"] < 1
    assert 0 < block["confidence_threshold"] < 1 and block["score"] == "top2_probability"


def test_each_status_on_a_clear_case(server, mnist_test):
    images, labels = mnist_test
    three, text, _ = number(images, labels, range(0, 3), gap=6)
    blank_photo = np.clip(np.random.default_rng(0).normal(235, 3, (300, 400)), 0, 255).astype(np.uint8)
    got = answers(server, "/predict", png(images[0]), GOOD, png(blank_photo), typed("A"), typed("#"), png(three))
    assert [p["status"] for p in got] == ["ok", "no_digit", "no_digit", "not_a_digit", "not_a_digit",
                                          "several_digits"]
    ok, blank, _, letter, _, several = got
    assert ok["digit"] == labels[0] and ok["confidence"] > 0.99
    assert blank == {"status": "no_digit", "digit": None, "confidence": None, "probabilities": None}
    assert letter["digit"] is None and len(letter["probabilities"]) == 10
    assert several["digit"] is None and "/read" in several["message"]
    [reading] = answers(server, "/read", png(three))
    assert reading["text"] == text and reading["status"] == "ok"


def test_noise_and_scribbles_are_not_digits(server):
    rng = np.random.default_rng(1)
    noise = png(rng.integers(0, 256, (64, 64), dtype=np.uint8))
    scribble = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(scribble).line([tuple(p) for p in rng.uniform(10, 190, (14, 2))], fill=0, width=6)
    statuses = [p["status"] for p in answers(server, "/predict", noise, png(np.asarray(scribble)))]
    assert statuses == ["not_a_digit", "not_a_digit"]


def test_thresholds_come_from_the_card(store, mnist_test, tmp_path):
    images, _ = mnist_test
    # the same version again, as version 2, demanding a confidence no answer reaches
    shutil.copytree(store / "models" / "mnist" / "1", tmp_path / "mnist" / "1")
    edit_card(tmp_path / "mnist" / "1", lambda c: c["answers"].update(confidence_threshold=1.0))
    with LiveServer(tmp_path, tmp_path, access_log="false") as live:
        live.wait_models_loaded()
        [p] = answers(live, "/predict", png(images[0]))
        assert p["status"] == "uncertain" and p["digit"] == 7  # the digit is still given
    # and the configuration overrides the card
    with LiveServer(tmp_path, tmp_path, access_log="false", confidence_threshold="0.5",
                    digit_score_threshold="0.0") as live:
        live.wait_models_loaded()
        [p, letter] = answers(live, "/predict", png(images[0]), typed("A"))
        assert p["status"] == "ok" and letter["status"] in ("ok", "uncertain")


def test_statuses_and_confidence_are_counted_across_workers(server, mnist_test):
    before = requests.get(server.url + "/metrics", timeout=10).text
    images, _ = mnist_test
    answers(server, "/predict", *(png(images[i]) for i in range(8)), GOOD)
    after = requests.get(server.url + "/metrics", timeout=10).text

    def value(text, name):
        line = next((line for line in text.splitlines() if line.startswith(name + " ")), f"{name} 0")
        return float(line.split()[-1])

    ok = 'mnist_predictions_by_status_total{status="ok"}'
    blank = 'mnist_predictions_by_status_total{status="no_digit"}'
    assert value(after, ok) - value(before, ok) == 8
    assert value(after, blank) - value(before, blank) == 1
    count = "mnist_prediction_confidence_count"
    assert value(after, count) - value(before, count) == 8


FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"  # Debian's dataset-fashion-mnist


def test_clothes_are_not_digits(server):
    from pathlib import Path

    from trainer.data import read_idx

    if not Path(FASHION).is_file():
        pytest.skip("Fashion-MNIST is not installed (Debian's dataset-fashion-mnist; .ci/run installs it)")
    clothes = read_idx(FASHION)[:64]
    statuses = [p["status"] for p in answers(server, "/predict", *(png(img) for img in clothes))]
    # the benchmark's bar is 95% of 10,000 (benchmarks/trust_bench.py); 64 of them are a smoke test
    assert sum(s in ("not_a_digit", "no_digit") for s in statuses) >= 0.9 * len(statuses)


def test_the_python_client_reads_numbers_and_gets_statuses(server, mnist_test):
    from service.client import Client

    images, labels = mnist_test
    three, text, _ = number(images, labels, range(0, 3), gap=6)
    client = Client(server.url, timeout=10)
    reading = client.read(png(three))
    assert reading["text"] == text and reading["status"] == "ok" and len(reading["digits"]) == 3
    assert [r["status"] for r in client.read_batch([GOOD, typed("A")])] == ["no_digit", "not_a_digit"]
    assert client.predict(typed("A"))["status"] == "not_a_digit"
