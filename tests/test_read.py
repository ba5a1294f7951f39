"""POST /read: whole numbers, digit by digit, with boxes in the uploaded picture's pixels."""
import io

import numpy as np
import pytest
from PIL import Image

from service import create_app
from tests.helpers import GOOD, assert_error, png
from tests.test_api import sample, scrape


def number(images, labels, picks, gap=4, pad=10):
    """Black-on-white ``(pixels, text, ink boxes)`` of the MNIST test digits ``picks`` side by side."""
    parts, boxes, x = [], [], pad
    for i in picks:
        digit = images[i]
        cols = np.flatnonzero(digit.max(0) > 0)
        rows = np.flatnonzero(digit.max(1) > 0)
        digit = digit[:, cols[0]:cols[-1] + 1]
        boxes.append((x, pad + rows[0], digit.shape[1], rows[-1] - rows[0] + 1))
        parts += [digit, np.zeros((28, gap), np.uint8)]
        x += digit.shape[1] + gap
    pixels = 255 - np.pad(np.concatenate(parts[:-1], axis=1), pad)
    return pixels, "".join(str(labels[i]) for i in picks), boxes


@pytest.fixture
def real_client(real_models_dir):
    return create_app({"models_dir": real_models_dir, "reload_interval": 0, "access_log": False}).test_client()


def read(client, *images, **kwargs):
    r = client.post("/read", data={"image": [(io.BytesIO(img), f"{i}.png") for i, img in enumerate(images)]},
                    **kwargs)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_reads_numbers_of_two_to_six_mnist_test_digits(real_client, mnist_test):
    images, labels = mnist_test
    # the first test digits of each length that the committed model reads right one by one
    numbers = [number(images, labels, range(start, start + n)) for n, start in
               [(2, 0), (3, 10), (4, 20), (5, 30), (6, 40), (6, 100)]]
    body = read(real_client, *(png(pixels) for pixels, _, _ in numbers))
    assert body["model"]["name"] == "mnist"
    assert [r["text"] for r in body["readings"]] == [text for _, text, _ in numbers]
    for reading, (_, text, boxes) in zip(body["readings"], numbers):
        assert reading["status"] == "ok" and len(reading["digits"]) == len(text)
        assert reading["confidence"] == pytest.approx(np.prod([d["confidence"] for d in reading["digits"]]),
                                                      rel=1e-4)
        for got, (x, y, w, h) in zip(reading["digits"], boxes):
            assert got["status"] == "ok" and str(got["digit"]) in text
            gx, gy, gw, gh = got["box"]
            assert abs(gx - x) <= 1 and abs(gy - y) <= 1 and abs(gw - w) <= 2 and abs(gh - h) <= 2


def test_boxes_are_in_the_uploaded_pictures_pixels_even_when_it_was_scaled_down(real_client, mnist_test):
    pixels, text, boxes = number(*mnist_test, range(0, 4))
    big = Image.fromarray(pixels).resize((pixels.shape[1] * 8, pixels.shape[0] * 8), Image.Resampling.NEAREST)
    [reading] = read(real_client, png(np.asarray(big)))["readings"]
    assert reading["text"] == text
    for got, (x, y, w, h) in zip(reading["digits"], boxes):
        np.testing.assert_allclose(got["box"], [8 * x, 8 * y, 8 * w, 8 * h], atol=12)


def test_boxes_follow_the_exif_orientation(real_client, mnist_test):
    pixels, text, _ = number(*mnist_test, range(0, 3))
    upright = read(real_client, png(pixels))["readings"][0]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter: a viewer rotates it 90 degrees clockwise to show it
    buf = io.BytesIO()
    Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_90).convert("RGB").save(buf, "JPEG", quality=95,
                                                                                       exif=exif.tobytes())
    [turned] = read(real_client, buf.getvalue())["readings"]
    assert turned["text"] == text == upright["text"]
    np.testing.assert_allclose([d["box"] for d in turned["digits"]], [d["box"] for d in upright["digits"]], atol=2)


def test_one_digit_is_a_one_character_reading_and_blank_is_no_digit(real_client, mnist_test):
    images, labels = mnist_test
    digit, blank = read(real_client, png(images[0]), GOOD)["readings"]
    assert digit["text"] == str(labels[0]) and len(digit["digits"]) == 1 and digit["status"] == "ok"
    assert blank == {"text": "", "status": "no_digit", "confidence": None, "digits": []}


def test_noise_with_many_marks_is_not_read_as_a_number(real_client):
    noise = np.full((60, 400), 255, np.uint8)
    noise[20:40, 2::6] = 0  # 67 thin bars of equal size: too many marks for a number
    [reading] = read(real_client, png(noise))["readings"]
    assert reading["status"] == "not_a_digit" and reading["text"] == "" and "marks" in reading["message"]


def test_read_counts_statuses_in_the_metrics(real_client, mnist_test):
    pixels, text, _ = number(*mnist_test, range(0, 3))
    read(real_client, png(pixels), GOOD)
    families = scrape(real_client)
    assert sample(families, "mnist_predictions_by_status_total", status="ok") == 3
    assert sample(families, "mnist_predictions_by_status_total", status="no_digit") == 1
    assert sample(families, "mnist_prediction_confidence_count") == 3
    assert sample(families, "mnist_http_requests_total", route="/read", method="POST", status="200") == 1


@pytest.mark.parametrize("make,status,code", [
    (lambda: {"data": b"", "content_type": "image/png"}, 400, "empty_image"),
    (lambda: {"data": b"not an image", "content_type": "image/png"}, 400, "invalid_image"),
    (lambda: {"data": "text", "content_type": "text/plain"}, 415, "unsupported_media_type"),
    (lambda: {"data": {"image": [(io.BytesIO(GOOD), f"{i}.png") for i in range(65)]}}, 413, "too_many_images"),
])
def test_read_refuses_bad_uploads_as_predict_does(client, make, status, code):
    for route in ("/read", "/predict"):
        assert_error(client.post(route, **make()), status, code)


def test_read_needs_the_api_key_when_one_is_set(config):
    client = create_app({**config, "api_key": "s3cret"}).test_client()
    assert_error(client.post("/read", data=GOOD, content_type="image/png"), 401, "unauthorized")
    r = client.post("/read", data=GOOD, content_type="image/png", headers={"X-API-Key": "s3cret"})
    assert r.status_code == 200 and r.get_json()["readings"][0]["status"] == "no_digit"


def test_letters_are_not_read_as_a_number_and_a_stray_mark_in_one_is_flagged(real_client, mnist_test):
    from tests.test_answers_live import typed

    letters = typed("A K X", size=(420, 120))
    [reading] = read(real_client, letters)["readings"]
    assert reading["status"] == "not_a_digit" and reading["text"] == "???"
    assert [d["digit"] for d in reading["digits"]] == [None, None, None]
    pixels, text, _ = number(*mnist_test, range(0, 3), gap=20)
    letter = np.asarray(Image.open(io.BytesIO(typed("K", size=(40, pixels.shape[0]), points=26))))
    [reading] = read(real_client, png(np.concatenate([pixels, letter], axis=1)))["readings"]
    assert reading["status"] == "uncertain" and reading["text"][:3] == text and len(reading["text"]) == 4
    assert [d["status"] for d in reading["digits"]] == ["ok", "ok", "ok", "uncertain"]
