"""The generators of tests/trust_uploads.py make what they say: decodable uploads of the right kind.

Numbers are checked for their text and, on blocks whose ink boxes are known
exactly, for the gaps and overlaps between digits; blanks for having nothing
on them.
"""
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from tests import trust_uploads as tu
from tests.uploads import find_fonts
from trainer import nondigits

SEEDS = range(6)


def opened(data):
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def column_runs(mask):
    """The number of runs of columns of ``mask: (h, w) bool`` holding any True."""
    cols = np.r_[False, mask.any(0), False].astype(np.int8)
    return int((np.diff(cols) == 1).sum())


def blocks(n, width=12):
    """``n`` fake digits, 28x28 uint8: a solid ``width`` x 20 block in the 20x20 box, MNIST-centred."""
    out = np.zeros((n, 28, 28), np.uint8)
    out[:, 4:24, 14 - width // 2:14 + width // 2] = 255
    return out, np.arange(n) % 10


def test_held_out_fonts_are_the_families_the_trainer_never_saw():
    fonts = find_fonts()
    held = tu.held_out_fonts(fonts)
    assert not any("bwht" in f or "comic-neue" in f or "fifthhorseman" in f or "humor-sans" in f for f in held)
    assert set(held) <= set(fonts)


@pytest.mark.parametrize("font", find_fonts())
def test_letters_are_characters_the_font_draws(font):
    chars = tu.drawn_characters(font)
    assert chars and set(chars) <= set(nondigits.CHARACTERS)
    assert not set(chars) & set("0123456789")
    img = opened(tu.letter(np.random.default_rng(0), [font]))
    assert img.format in ("PNG", "JPEG") and np.ptp(np.asarray(img.convert("L"))) > 60  # ink shows


def test_a_font_lacking_a_glyph_is_not_asked_for_it():
    tomson = [f for f in find_fonts() if "TomsonTalks" in f]
    if not tomson:
        pytest.skip("fonts-tomsontalks not installed")
    assert "+" in nondigits.CHARACTERS and "+" not in tu.drawn_characters(tomson[0])


def test_fashion_as_is_and_on_paper():
    garment = np.zeros((28, 28), np.uint8)
    garment[6:22, 8:20] = 200
    img = opened(tu.fashion(garment))
    assert (img.format, img.mode) == ("PNG", "L") and np.array_equal(np.asarray(img), garment)
    photo = np.asarray(opened(tu.fashion_on_paper(garment, np.random.default_rng(0))).convert("L"), np.float32)
    assert photo.shape[0] >= 150 and np.median(photo) > 150 and photo.min() < 100  # dark garment, light paper


@pytest.mark.parametrize("seed", SEEDS)
def test_scribbles_and_noise_decode(seed):
    rng = np.random.default_rng(seed)
    scribble = np.asarray(opened(tu.scribble(rng)).convert("L"))
    assert 0.01 < (scribble < 128).mean() < 0.6
    noise = opened(tu.noise(rng))
    assert noise.size in tu.NOISE_SIZES and np.asarray(noise).std() > 5


@pytest.mark.parametrize("seed", range(12))
def test_blank_canvases_are_one_colour(seed):
    img = opened(tu.blank_canvas(np.random.default_rng(seed)))
    pixels = np.asarray(img.convert("RGBA")).reshape(-1, 4)
    assert (pixels == pixels[0]).all()
    assert img.size[0] in (28, 200, 280, 300, 400, 512)


@pytest.mark.parametrize("seed", SEEDS)
def test_blank_paper_has_no_marks(seed):
    """Nothing stands out of the paper by more than 20 levels in the middle of the frame (always
    on the sheet); a ruled page's lines are the same all along their row; a desk shows at the border."""
    rng = np.random.default_rng(seed)
    for ruled, desk in [(False, False), (True, False), (False, True), (True, True)]:
        img = opened(tu.blank_paper(rng, ruled, desk))
        corner = np.asarray(img.convert("L"), np.float32)[:8, :8].mean()
        assert (corner < 160) == desk  # the darkest paper under the deepest shadow stays lighter
        assert img.format == "JPEG"
        w, h = img.size
        middle = img.convert("L").crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))
        a = np.asarray(middle, np.float32)
        b = np.asarray(middle.filter(ImageFilter.GaussianBlur(10)), np.float32)
        if ruled:  # lines run across: the variation left within each row is only light and noise
            a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        assert np.abs(a - b).max() < 20


@pytest.mark.parametrize("gaps", [[0, 0, 0], [1, 2, 0], [2, 2, 2]])
def test_touching_ink_boxes_overlap_by_the_stated_pixels(gaps):
    digits, _ = blocks(4)
    alpha = tu.number_alpha(digits, np.ones(4), np.zeros(4), np.array(gaps), True, 40, 0.4)
    box = tu.ink_crop(tu.strokes(digits[0], 56, 0.4)).shape[1]  # one block's ink width (at 40 * 28 / 20 px)
    ink = alpha >= 0.5
    assert column_runs(ink) == 1
    assert ink.shape[1] == 4 * box - sum(gaps)


def test_gapped_digits_stand_apart_and_jitter_stays_in_bounds():
    digits, _ = blocks(5)
    rng = np.random.default_rng(0)
    scales, shifts = rng.uniform(0.85, 1.15, 5), rng.uniform(-0.08, 0.08, 5)
    alpha = tu.number_alpha(digits, scales, shifts, np.full(4, 0.15), False, 60, 0.4)
    assert column_runs(alpha >= 0.5) == 5
    assert 0.85 * 60 <= alpha.shape[0] <= (1.15 + 0.16) * 60 + 1  # scaled, shifted, never cut off


@pytest.mark.parametrize("background", ["canvas", "paper"])
@pytest.mark.parametrize("touching", [False, True])
def test_numbers_have_their_text(background, touching):
    digits, labels = blocks(10)
    for length in (2, 6):
        data, text = tu.number(digits, labels, np.random.default_rng(length), length, touching, background)
        img = opened(data)
        assert img.format == ("PNG" if background == "canvas" else "JPEG")
        assert len(text) == length and text.isdigit()
        grey = np.asarray(img.convert("L"), np.float32)
        ink = grey <= (grey.min() + grey.max()) / 2 + 1  # alpha 0.5: where ink boxes are measured
        assert column_runs(ink) == (1 if touching else length)


def test_real_gapped_numbers_stand_apart(mnist_test):
    images, labels = mnist_test
    for seed in range(5):
        data, text = tu.number(images, labels, np.random.default_rng(seed), 2 + seed)
        ink = np.asarray(opened(data).convert("L")) < 128
        assert column_runs(ink) >= len(text) == 2 + seed  # a broken digit can add runs, a gap never removes one


def test_font_numbers():
    fonts = find_fonts()
    if not fonts:
        pytest.skip("no fonts installed")
    data, text = tu.font_number(np.random.default_rng(0), fonts, 5)
    assert len(text) == 5 and text.isdigit() and opened(data).format in ("PNG", "JPEG")
