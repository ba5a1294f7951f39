"""Decoding limits and errors, and uploads -> MNIST-like 28x28 inputs."""
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from service.decode import ImageTooLarge, InvalidImage, decode_grey_png, decode_image
from service.preprocess import prepare, to_batch, to_mnist
from tests import uploads

LIMIT = 4_000_000
ROOT = Path(__file__).resolve().parent.parent


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width, height, idat=True, interlace=0):
    """A PNG declaring ``width`` x ``height`` 8-bit grey pixels, with a few bytes of pixel data
    (``idat``) or none: about 60 bytes either way."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    data = chunk(b"IDAT", zlib.compress(b"\0" * 64)) if idat else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + data + chunk(b"IEND", b"")


def gif_header(width, height):
    """A GIF89a screen descriptor declaring ``width`` x ``height`` and a single empty frame."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x08\x00\x3b"
    return screen + frame


def encode(img, fmt="PNG", **options):
    return uploads.encode(img, fmt, **options)


def drawn_seven(size=280, width=22, ink=0, paper=255, mode="L"):
    """A '7' drawn with a thick brush, dark on light by default: (size, size) image."""
    img = Image.new("L", (size, size), paper)
    s = size / 280
    ImageDraw.Draw(img).line([(70 * s, 60 * s), (200 * s, 60 * s), (120 * s, 230 * s)], fill=ink,
                             width=int(width * s), joint="curve")
    return img.convert(mode)


def similarity(a, b):
    """Cosine similarity of two (784,) inputs: 1 for the same picture."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


# -- decoding ------------------------------------------------------------------------
@pytest.mark.parametrize("data, error", [
    (b"", InvalidImage),
    (np.random.default_rng(0).bytes(2000), InvalidImage),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, InvalidImage),
    (png_header(28, 28, idat=False), InvalidImage),        # header, no pixel data
    (png_header(28, 28), InvalidImage),                     # too little pixel data
    (encode(drawn_seven())[:300], InvalidImage),            # truncated mid-stream
    (encode(drawn_seven(), "JPEG")[:200], InvalidImage),
    (encode(drawn_seven(), "PPM"), InvalidImage),           # an image, but not an upload format
    (png_header(100_000, 100_000), ImageTooLarge),          # decompression bomb: 10^10 pixels declared
    (png_header(10_000, 10_000), ImageTooLarge),            # past Pillow's warning threshold
    (png_header(2001, 2000), ImageTooLarge),                # just over LIMIT
    (gif_header(65535, 65535), ImageTooLarge),
    (encode(Image.new("L", (4000, 1001))), ImageTooLarge),  # a real image over the limit
], ids=["empty", "random", "png-garbage", "png-no-data", "png-short-data", "png-truncated", "jpeg-truncated", "ppm",
        "bomb-png", "bomb-warning", "just-over", "bomb-gif", "real-over"])
def test_decode_refuses_bad_uploads_with_the_right_error(data, error):
    with pytest.raises(error) as caught:
        decode_image(data, max_pixels=LIMIT)
    message = str(caught.value)
    assert 0 < len(message) < 120
    assert "PIL" not in message and "Error" not in message and "/" not in message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_corrupted_files_raise_only_our_errors(fmt):
    """Bytes flipped, cut and inserted at random: decoding either works or raises ImageError."""
    rng = np.random.default_rng(10)
    original = encode(drawn_seven(mode="RGB").resize((64, 64)), fmt)
    outcomes = set()
    for _ in range(60):
        data = bytearray(original)
        for _ in range(rng.integers(1, 5)):
            at = int(rng.integers(len(data)))
            data[at:at + 1] = rng.bytes(int(rng.integers(0, 4)))
        data = bytes(data[:int(rng.integers(len(data) // 2, len(data) + 1))])
        try:
            x = to_mnist(decode_image(data, max_pixels=LIMIT))
            outcomes.add("decoded")
            assert x.shape == (784,)
        except (InvalidImage, ImageTooLarge) as error:
            outcomes.add(type(error).__name__)
    assert "InvalidImage" in outcomes


def test_bomb_is_refused_by_the_header_even_when_the_limit_is_huge():
    """10^10 pixels: Pillow's own guard applies whatever the configured limit."""
    with pytest.raises(ImageTooLarge):
        decode_image(png_header(100_000, 100_000), max_pixels=10**12)


def test_decode_accepts_an_image_exactly_at_the_limit():
    img = decode_image(encode(Image.new("L", (2000, 2000), 255)), max_pixels=LIMIT)
    assert img.size == (2000, 2000)


# -- plain greyscale PNGs: libspng, and Pillow for everything else ------------------
@pytest.mark.parametrize("height, width", [(28, 28), (1, 1), (70, 280), (500, 3)])
def test_plain_grey_pngs_decode_to_the_pixels_pillow_gives(height, width):
    pixels = np.random.default_rng(height).integers(0, 256, (height, width), dtype=np.uint8)
    data = encode(Image.fromarray(pixels))
    got = decode_grey_png(data, max_pixels=LIMIT)
    assert got.dtype == np.uint8 and np.array_equal(got, pixels)
    assert np.array_equal(got, np.asarray(decode_image(data, max_pixels=LIMIT)))


SEVEN = drawn_seven().resize((28, 28))


def rotated_exif():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    return exif.tobytes()


@pytest.mark.parametrize("data", [
    encode(SEVEN.convert("RGB")),
    encode(SEVEN.convert("LA")),
    encode(SEVEN.convert("1")),
    encode(SEVEN.convert("P")),
    encode(SEVEN.convert("I;16")),
    encode(SEVEN, transparency=255),                        # a tRNS chunk: a transparent colour
    encode(SEVEN, exif=rotated_exif()),                     # an eXIf chunk: rotation due
    encode(SEVEN, "JPEG"),
    png_header(28, 28, interlace=1),
    png_header(2001, 2000),                                  # over the pixel limit
    png_header(28, 28),                                      # too little pixel data
    encode(SEVEN)[:60],                                      # truncated
    b"\x89PNG\r\n\x1a\n",
    b"",
], ids=["rgb", "la", "1-bit", "palette", "16-bit", "trns", "exif", "jpeg", "interlaced", "over-limit", "short-data",
        "truncated", "signature-only", "empty"])
def test_every_other_file_is_left_to_pillow(data):
    """None sends the file to decode_image, which decodes it or says what is wrong."""
    assert decode_grey_png(data, max_pixels=LIMIT) is None


@pytest.mark.parametrize("fmt, options", [
    ("PNG", {}), ("JPEG", {"quality": 90}), ("GIF", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}),
])
def test_decode_reads_every_upload_format(fmt, options):
    img = decode_image(encode(drawn_seven(mode="RGB"), fmt, **options), max_pixels=LIMIT)
    assert img.size == (280, 280)
    assert similarity(to_mnist(img), to_mnist(drawn_seven())) > 0.95


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_multi_frame_images_use_the_first_frame(fmt):
    blank = Image.new("RGB", (280, 280), (255, 255, 255))
    data = encode(drawn_seven(mode="RGB"), fmt, save_all=True, append_images=[blank, blank])
    x = to_mnist(decode_image(data, max_pixels=LIMIT))
    assert similarity(x, to_mnist(drawn_seven())) > 0.95


def test_large_jpeg_is_decoded_at_a_reduced_scale():
    """A 12-megapixel photo: JPEG's DCT scaling decodes it at 1/2 or 1/4 size, never below 1024 px."""
    photo = encode(drawn_seven(mode="RGB").resize((4000, 3000)), "JPEG", quality=80)
    img = decode_image(photo, max_pixels=20_000_000)
    assert 1024 <= max(img.size) <= 2000
    assert similarity(to_mnist(img), to_mnist(drawn_seven().resize((4000, 3000)))) > 0.97


def test_phone_photo_exif_orientation_is_applied():
    upright = drawn_seven(mode="RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    sideways = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes())
    x = to_mnist(decode_image(sideways, max_pixels=LIMIT))
    assert similarity(x, to_mnist(upright)) > 0.95


# -- modes, polarity, alpha ---------------------------------------------------------------
def in_mode(mode):
    """The drawn 7 (dark on white) converted to ``mode`` the way an exporter would."""
    img = drawn_seven()
    if mode == "P+transparency":  # palette image whose white background is the transparent index
        img = img.convert("RGB").quantize(8)
        img.info["transparency"] = img.getpixel((0, 0))
        return img
    if mode in ("I;16", "I", "F"):
        scale = {"I;16": 257, "I": 1000, "F": 1 / 255}[mode]
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        out = Image.fromarray((np.asarray(img, np.float64) * scale).astype(dtype))
        assert out.mode == mode
        return out
    return img.convert(mode)


MODES = ["1", "L", "LA", "P", "P+transparency", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I;16", "I", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_the_same_784_floats_in_0_1(mode):
    x = to_mnist(in_mode(mode))
    assert x.shape == (784,) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    assert similarity(x, to_mnist(drawn_seven())) > 0.97


def test_output_is_white_ink_on_black():
    x = to_mnist(drawn_seven()).reshape(28, 28)
    assert x[0].max() == 0 and x[:, 0].max() == 0  # background black
    assert x.max() == pytest.approx(1.0, abs=0.05)  # stroke cores saturated, as in MNIST


@pytest.mark.parametrize("paper, ink", [(255, 0), (0, 255), (200, 60), (40, 170)])
def test_polarity_light_on_dark_and_dark_on_light_agree(paper, ink):
    assert similarity(to_mnist(drawn_seven(ink=ink, paper=paper)), to_mnist(drawn_seven())) > 0.98


def test_fat_light_strokes_on_a_dark_canvas_are_not_taken_for_a_sheet_of_paper():
    """A marker so fat the 7 covers 40% of the canvas, white on black: the black is no desk."""
    fat_light, fat_dark = drawn_seven(width=100, ink=255, paper=0), drawn_seven(width=100)
    assert similarity(to_mnist(fat_light), to_mnist(fat_dark)) > 0.98


def transparent_canvas(colour):
    """RGBA with the 7 only in alpha; every pixel's colour is ``colour`` (the trap: black on black)."""
    alpha = 255 - np.asarray(drawn_seven())
    rgba = np.empty(alpha.shape + (4,), np.uint8)
    rgba[..., :3], rgba[..., 3] = colour, alpha
    return Image.fromarray(rgba, "RGBA")


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (30, 60, 200)])
def test_strokes_on_a_transparent_canvas_are_ink(colour):
    x = to_mnist(transparent_canvas(colour))
    assert similarity(x, to_mnist(drawn_seven())) > 0.98


def test_alpha_canvas_with_coloured_strokes_over_black_transparent_pixels():
    """Colour channels that differ under transparency (black where empty, red strokes)."""
    alpha = 255 - np.asarray(drawn_seven())
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[alpha > 0, 0] = 220
    rgba[..., 3] = alpha
    x = to_mnist(decode_image(encode(Image.fromarray(rgba, "RGBA")), max_pixels=LIMIT))
    assert similarity(x, to_mnist(drawn_seven())) > 0.98


@pytest.mark.parametrize("paper, ink", [((250, 240, 160), (30, 60, 200)), ((250, 205, 215), (200, 30, 40)),
                                        ((120, 200, 120), (200, 90, 90))])  # last: similar luminance, different hue
def test_coloured_ink_on_coloured_paper(paper, ink):
    alpha = (255 - np.asarray(drawn_seven(), np.float32)) / 255
    img = Image.fromarray(uploads.painted(alpha, paper, ink))
    assert similarity(to_mnist(img), to_mnist(drawn_seven())) > 0.97


# -- geometry: MNIST's crop, 20x20 box and centre of mass ------------------------------------
def bbox(x):
    """(height, width) of the pixels above 0.1 in a (784,) input."""
    rows, cols = np.flatnonzero((x.reshape(28, 28) > 0.1).any(1)), np.flatnonzero((x.reshape(28, 28) > 0.1).any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(x):
    m = x.reshape(28, 28)
    return (m.sum(1) @ np.arange(28)) / m.sum(), (m.sum(0) @ np.arange(28)) / m.sum()


def off_centre_seven(canvas=(640, 480), size=90, at=(20, 30)):
    """The 7, ``size`` px tall, pasted near a corner of a large white page."""
    page = Image.new("L", canvas, 255)
    page.paste(drawn_seven().resize((size, size), Image.Resampling.LANCZOS), at)
    return page


@pytest.mark.parametrize("img", [drawn_seven(), off_centre_seven(), off_centre_seven(at=(520, 360)),
                                 drawn_seven().resize((140, 40)), drawn_seven().resize((40, 140))],
                         ids=["canvas", "top-left", "bottom-right", "wide", "tall"])
def test_digit_fits_20x20_and_its_mass_is_centred(img):
    x = to_mnist(img)
    assert max(bbox(x)) <= 21 and max(bbox(x)) >= 19  # the longer side fills the 20 px box
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75


def test_aspect_ratio_is_kept():
    h, w = bbox(to_mnist(drawn_seven().resize((280, 70))))  # squashed to a quarter of its height
    assert 19 <= w <= 21 and h <= 9


def test_small_digit_in_a_large_photo_is_found():
    """A 7 in a corner of a 1024x768 photo of tinted paper: lit unevenly, noisy, JPEG."""
    rng = np.random.default_rng(3)
    alpha = (255 - np.asarray(off_centre_seven((1024, 768), 110, (800, 560)), np.float32)) / 255
    rgb = uploads.painted(alpha, (235, 228, 205), (30, 30, 60)) * uploads.lighting((768, 1024), rng, 0.4)
    photo = encode(Image.fromarray(uploads.noisy(rgb, rng, 5)), "JPEG", quality=70)
    x = to_mnist(decode_image(photo, max_pixels=LIMIT))
    assert similarity(x, to_mnist(drawn_seven())) > 0.95


@pytest.mark.parametrize("desk", [(35, 35, 38), (120, 85, 55)], ids=["black-desk", "brown-desk"])
def test_a_sheet_of_paper_on_a_desk_is_read_without_the_desk(desk):
    """The 7 on a slightly turned sheet; the desk shows along every edge of the photo."""
    sheet = Image.new("L", (640, 480), 0)
    ImageDraw.Draw(sheet).polygon([(90, 40), (600, 70), (570, 450), (60, 420)], fill=255)
    on_sheet = np.asarray(sheet, np.float32)[..., None] / 255
    alpha = (255 - np.asarray(off_centre_seven((640, 480), 120, (300, 180)), np.float32)) / 255
    page = uploads.painted(alpha, (240, 236, 225), (25, 30, 70)).astype(np.float32)
    rgb = page * on_sheet + np.asarray(desk, np.float32) * (1 - on_sheet)
    photo = encode(Image.fromarray(uploads.noisy(rgb, np.random.default_rng(9), 4)), "JPEG", quality=80)
    x = to_mnist(decode_image(photo, max_pixels=LIMIT))
    assert similarity(x, to_mnist(drawn_seven())) > 0.95


def test_ruled_lines_and_a_margin_line_are_not_ink():
    page = np.asarray(off_centre_seven(at=(300, 200)), np.uint8).copy()
    page[40::48] = 150        # notebook lines, right through the digit
    page[:, 60:62] = 90       # the margin: darker than the lines, as long as the page
    assert similarity(to_mnist(Image.fromarray(page)), to_mnist(off_centre_seven(at=(300, 200)))) > 0.95


@pytest.mark.parametrize("bar", ["top", "bottom"])
def test_a_bar_across_a_tightly_cropped_digit_is_not_mistaken_for_a_ruled_line(bar):
    """A 7 (or a 2) cropped to its box: the bar spans the whole width, but it is a stroke."""
    img = Image.new("L", (120, 160), 255)
    y = 8 if bar == "top" else 151
    ImageDraw.Draw(img).line([(0, y), (119, y), (40, 159 - y)], fill=0, width=14)
    x = to_mnist(img).reshape(28, 28)
    rows = np.flatnonzero(x.max(1) > 0.5)
    end = rows[0] if bar == "top" else rows[-1]
    assert (x[end - 1:end + 2] > 0.5).sum(1).max() >= 10  # the bar is still there, wide


def test_a_one_from_edge_to_edge_is_not_mistaken_for_a_ruled_line():
    one = Image.new("L", (40, 200), 255)
    ImageDraw.Draw(one).line([(22, 0), (18, 199)], fill=0, width=8)
    h, w = bbox(to_mnist(one))
    assert h >= 19 and w <= 6


@pytest.mark.parametrize("width", [22, 40])
def test_a_digit_cropped_to_its_strokes_is_not_taken_for_a_desk(width):
    """Cropped to the ink, the 7 touches three edges, like a desk would: but nothing else is written."""
    seven = drawn_seven(width=width)
    tight = seven.crop(Image.eval(seven, lambda v: 255 - v).getbbox())
    assert similarity(to_mnist(tight), to_mnist(seven)) > 0.98


def test_specks_away_from_the_digit_are_ignored():
    page = np.asarray(off_centre_seven(at=(300, 200)), np.uint8).copy()
    rng = np.random.default_rng(4)
    for y, x in zip(rng.integers(0, 480, 30), rng.integers(0, 250, 30)):  # specks left of the digit
        page[y:y + 3, x:x + 3] = 0
    assert similarity(to_mnist(Image.fromarray(page)), to_mnist(off_centre_seven(at=(300, 200)))) > 0.98


@pytest.mark.parametrize("img", [
    Image.new("L", (280, 280), 255), Image.new("L", (28, 28), 0), Image.new("RGB", (300, 200), (250, 240, 160)),
    Image.new("RGBA", (280, 280), (0, 0, 0, 0)), Image.new("1", (10, 10), 1), Image.new("L", (1, 1), 128),
    Image.new("I;16", (50, 50), 40000),
    Image.fromarray(np.random.default_rng(5).normal(200, 2, (480, 640)).clip(0, 255).astype(np.uint8)),
    "blank-photo",
], ids=["white", "black-28", "yellow", "transparent", "1-bit", "1x1", "16-bit", "faint-noise", "blank-photo"])
def test_pictures_without_ink_give_zeros(img):
    if img == "blank-photo":  # a JPEG of an empty page, half as bright on one side
        rng = np.random.default_rng(8)
        rgb = uploads.painted(np.zeros((480, 640), np.float32), (240, 235, 215), (0, 0, 0))
        img = decode_image(encode(Image.fromarray(uploads.noisy(rgb * uploads.lighting((480, 640), rng, 0.5), rng, 4)),
                                  "JPEG", quality=70), max_pixels=LIMIT)
    x = to_mnist(img)
    assert x.shape == (784,) and x.dtype == np.float32 and not x.any()


def test_float_pixels_with_nan_and_infinity():
    x = np.asarray(drawn_seven(), np.float32) / 255
    x[0, :5], x[-1, -5:], x[5, 5] = np.nan, np.inf, -np.inf
    assert similarity(to_mnist(Image.fromarray(x)), to_mnist(drawn_seven())) > 0.97


@pytest.mark.parametrize("size", [(1, 300), (300, 1), (2, 2), (3, 700), (28, 28), (29, 27)])
def test_odd_sizes_do_not_crash(size):
    img = Image.fromarray(np.random.default_rng(6).integers(0, 256, size[::-1]).astype(np.uint8))
    x = to_mnist(img)
    assert x.shape == (784,) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 90), height=st.integers(1, 90), seed=st.integers(0, 2**32 - 1),
       mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "F"]), blocks=st.integers(0, 4))
def test_any_picture_gives_784_floats_in_0_1(width, height, seed, mode, blocks):
    """Noise or a few random blocks, in any size and mode: never an exception, always a valid input."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4)).astype(np.uint8) if not blocks else \
        np.full((height, width, 4), rng.integers(0, 256, 4), np.uint8)
    for _ in range(blocks):
        y, x = rng.integers(0, height), rng.integers(0, width)
        pixels[y:y + rng.integers(1, 30), x:x + rng.integers(1, 30)] = rng.integers(0, 256, 4)
    img = Image.fromarray(pixels, "RGBA")
    img = img.convert("L").convert(mode) if mode in ("I;16", "F", "1") else img.convert(mode)
    x = to_mnist(img)
    assert x.shape == (784,) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


def test_to_batch_stacks_inputs_in_order():
    images = [drawn_seven(), Image.new("L", (28, 28)), drawn_seven(ink=255, paper=0)]
    batch = to_batch(images)
    assert batch.shape == (3, 784) and batch.dtype == np.float32
    assert np.array_equal(batch[1], np.zeros(784)) and np.array_equal(batch[0], to_mnist(images[0]))
    assert to_batch([]).shape == (0, 784)


# -- real MNIST digits ---------------------------------------------------------------
def test_plain_mnist_pngs_come_out_unchanged(mnist_test):
    images = mnist_test[0][:500]
    x = np.stack([to_mnist(decode_image(encode(Image.fromarray(d)), max_pixels=LIMIT)) for d in images])
    diff = np.abs(x - images.reshape(len(images), -1) / 255).mean(1)
    assert diff.mean() < 0.002 and diff.max() < 0.1


def test_mnist_digits_survive_the_full_pipeline(mnist_test):
    """As RGB (no 28x28 grayscale shortcut): re-cropped, rescaled and re-centred, nearly the same."""
    images = mnist_test[0][:300]
    x = np.stack([to_mnist(Image.fromarray(d).convert("RGB")) for d in images])
    assert np.abs(x - images.reshape(len(images), -1) / 255).mean() < 0.03


@pytest.mark.parametrize("kind", uploads.KINDS)
def test_every_kind_of_upload_is_centred_in_a_20x20_box(mnist_test, kind):
    rng = np.random.default_rng(7)
    for j in rng.integers(0, len(mnist_test[0]), 5):
        label = int(mnist_test[1][j])
        x = to_mnist(decode_image(uploads.upload(kind, mnist_test[0][j], label, rng), max_pixels=LIMIT))
        cy, cx = centre_of_mass(x)
        assert max(bbox(x)) <= 21 and abs(cy - 14) <= 1 and abs(cx - 14) <= 1


# -- accuracy with the committed model ---------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    version = ROOT / "models" / "mnist" / "1"
    if not (version / "model.npz").is_file():
        pytest.skip("no committed model at models/mnist/1")
    from neuralnet.model_io import load_version
    return load_version(version)[0]


def test_accuracy_on_a_mixed_set_of_realistic_uploads(mnist_test, model):
    samples = uploads.upload_set(*mnist_test, 360, np.random.default_rng(11))
    kinds = np.array([kind for kind, _, _ in samples])
    x = to_batch([decode_image(data, max_pixels=LIMIT) for _, data, _ in samples])
    right = model.predict(x) == np.array([label for _, _, label in samples])
    per_kind = {kind: right[kinds == kind].mean() for kind in set(kinds)}
    assert right[kinds != "mnist_png"].mean() >= 0.96, per_kind
    assert min(per_kind.values()) >= 0.85, per_kind  # no kind of upload collapses


def test_accuracy_on_plain_mnist_pngs(mnist_test, model):
    images, labels = mnist_test[0][-1000:], mnist_test[1][-1000:]
    x = to_batch([decode_image(encode(Image.fromarray(d)), max_pixels=LIMIT) for d in images])
    assert (model.predict(x) == labels).mean() >= 0.98


def test_shrinking_at_decode_time_changes_no_result(mnist_test):
    """The service shrinks each large upload as soon as it is decoded (to bound memory);
    the 784 inputs must be exactly what the whole-image recipe gives, for every kind of upload."""
    from service.preprocess import shrink

    rng = np.random.default_rng(3)
    images, labels = mnist_test
    large = 0
    for kind, data, _ in uploads.upload_set(images[:60], labels[:60], 60, rng):
        img = decode_image(data, max_pixels=LIMIT)
        small = shrink(decode_image(data, max_pixels=LIMIT))
        large += max(img.size) > 256
        assert max(small.size) <= 256, kind
        np.testing.assert_array_equal(to_batch([small]), to_mnist(img)[None], err_msg=kind)
    assert large >= 20  # photos and the like: the case this is about


def test_an_empty_sheet_on_a_desk_holds_no_ink():
    from tests.trust_uploads import blank_paper

    rng = np.random.default_rng(3)
    for _ in range(20):  # slivers of desk left along the sheet's edges are not ink either
        x, parts = prepare([decode_image(blank_paper(rng, desk=True), max_pixels=LIMIT)])
        assert parts[0] == 0 and not x.any()


def test_marks_side_by_side_are_counted_and_specks_are_not():
    one = np.asarray(drawn_seven().convert("L"))
    page = np.full((one.shape[0], 3 * one.shape[1]), 255, np.uint8)
    page[:, :one.shape[1]] = one
    _, parts = prepare([Image.fromarray(page)])
    assert parts[0] == 1
    page[:, 2 * one.shape[1]:] = one
    _, parts = prepare([Image.fromarray(page)])
    assert parts[0] == 2
    page[:, 2 * one.shape[1]:] = 255
    page[-3:, -40:] = 0  # a line along the bottom edge, as a desk leaves
    page[10:12, -30:-28] = 0  # a dot
    x, parts = prepare([Image.fromarray(page)])
    assert parts[0] == 1 and similarity(x[0], to_mnist(drawn_seven())) > 0.95
