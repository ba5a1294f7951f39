"""Realistic uploads of known digits, for the preprocessing tests and benchmark.

Each generator turns a label and (except ``font``) a 28x28 MNIST test digit
(uint8, white on black) into the encoded bytes a person would really send:
a canvas export, a phone photo of paper, a transparent PNG, coloured ink ...
All randomness comes from the ``rng`` passed in, so a seed fixes the set.

    samples = upload_set(mnist_test_digits(dir), n=300, rng=np.random.default_rng(0))
    for kind, data, label in samples: ...
"""
import glob
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from trainer.data import TEST_IMAGES, TEST_LABELS, locate, read_idx

# Handwriting-like fonts from Debian packages (.ci/run installs them); any that are
# installed are used. DejaVu Sans (fonts-dejavu-core) is the fallback.
FONT_GLOBS = [
    "/usr/share/fonts/opentype/bwht/BecauseWe*.otf",                 # fonts-bwht
    "/usr/share/fonts/opentype/comic-neue/ComicNeue-[RBI]*.otf",     # fonts-comic-neue
    "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf",               # fonts-dkg-handwriting
    "/usr/share/fonts/truetype/fifthhorseman/dkgBd.ttf",
    "/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf",           # fonts-humor-sans
    "/usr/share/fonts/truetype/sjfonts/SteveHand.ttf",               # fonts-sjfonts
    "/usr/share/fonts/truetype/rufscript/Rufscript010.ttf",          # fonts-rufscript
    "/usr/share/fonts/truetype/tomsontalks/TomsonTalks.ttf",         # fonts-tomsontalks
    "/usr/share/fonts/opentype/dancingscript/DancingScript-*.otf",   # fonts-dancingscript
    "/usr/share/fonts/truetype/kristi/Kristi.ttf",                   # fonts-kristi
]
FALLBACK_FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                  "/usr/share/fonts/truetype/dejavu/DejaVuSans-Oblique.ttf"]


def find_fonts():
    """Paths of the handwriting-like fonts installed here, else DejaVu Sans; [] if none."""
    found = sorted({p for pattern in FONT_GLOBS for p in glob.glob(pattern)})
    return found or [p for p in FALLBACK_FONTS if Path(p).is_file()]


def mnist_test_digits(mnist_dir):
    """The MNIST test set from ``mnist_dir``: images (10000, 28, 28) uint8, labels (10000,) uint8."""
    return read_idx(locate(mnist_dir, TEST_IMAGES)), read_idx(locate(mnist_dir, TEST_LABELS))


def encode(img, fmt, **options):
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


# -- building blocks ---------------------------------------------------------------
def strokes(digit, size, pen=0.4):
    """The digit's ink as alpha (size, size) float32 in [0, 1]: upscaled and re-sharpened.

    ``pen`` is the level at which the blurry upscale is cut: 0.3 draws with a
    marker, 0.7 with a fine pen.
    """
    up = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    return np.clip((up - pen) * 4, 0, 1)


def placed(alpha, shape, rng):
    """``alpha`` pasted at a random position of a zero array of ``shape`` (which must be larger)."""
    out = np.zeros(shape, np.float32)
    top = rng.integers(0, shape[0] - alpha.shape[0] + 1)
    left = rng.integers(0, shape[1] - alpha.shape[1] + 1)
    out[top:top + alpha.shape[0], left:left + alpha.shape[1]] = alpha
    return out


def painted(alpha, paper, ink):
    """RGB uint8: ``ink`` colour over ``paper`` (colour, or (h, w, 3) array) by ``alpha``."""
    a = alpha[..., None]
    return np.clip(np.asarray(paper, np.float32) * (1 - a) + np.asarray(ink, np.float32) * a, 0, 255).astype(np.uint8)


def lighting(shape, rng, depth):
    """(h, w, 1) multiplicative light falling off linearly by up to ``depth`` in a random direction."""
    h, w = shape
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    return (1 - depth * ramp)[..., None]


def noisy(rgb, rng, sigma):
    return np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def canvas_alpha(digit, rng):
    """A digit drawn with a thick brush on a 200-400 px square canvas: (alpha, side)."""
    side = int(rng.choice([200, 280, 300, 400]))
    size = int(side * rng.uniform(0.65, 1.0))
    return placed(strokes(digit, size, pen=rng.uniform(0.25, 0.45)), (side, side), rng)


PAPERS = [(250, 250, 245), (240, 235, 215), (225, 225, 230), (245, 240, 225), (235, 240, 245)]
DESKS = [(120, 85, 55), (70, 70, 75), (150, 110, 70), (35, 35, 38), (95, 110, 95)]
COLOURED_PAPERS = [(250, 240, 160), (250, 205, 215), (195, 225, 250), (205, 245, 215), (250, 220, 175),
                   (200, 200, 200)]
INKS = [(20, 20, 25), (40, 40, 60), (25, 35, 90), (60, 55, 55)]
COLOURED_INKS = [(30, 60, 200), (200, 30, 40), (20, 120, 50), (110, 30, 150)]


def thinned(alpha, r):
    """``alpha`` with every stroke eroded by ``r`` pixels on each side (a finer pen)."""
    img = Image.fromarray(np.round(alpha * 255).astype(np.uint8))
    for radius in range(r, 0, -1):  # MNIST strokes vary in width: erode less where thin parts would vanish
        thin = np.asarray(img.filter(ImageFilter.MinFilter(2 * radius + 1)), np.float32) / 255
        if (thin > 0.5).sum() >= 0.4 * (alpha > 0.5).sum():
            return thin
    return alpha


def mean_width(mask):
    """Mean stroke width of a boolean image: twice its area over its boundary length."""
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return 2 * mask.sum() / max(mask.sum() - inner.sum(), 1)


def rotated(alpha, degrees):
    return np.asarray(Image.fromarray(alpha, "F").rotate(degrees, Image.Resampling.BILINEAR, expand=True))


def pick(rng, options):
    return options[rng.integers(len(options))]


def jitter(colour, rng, spread=8):
    return np.clip(np.asarray(colour) + rng.integers(-spread, spread + 1, 3), 0, 255)


# -- the kinds of upload -----------------------------------------------------------
def mnist_png(digit, label, rng):
    """The test digit itself, as a 28x28 grayscale PNG."""
    return encode(Image.fromarray(digit), "PNG")


def canvas_png(digit, label, rng):
    """A drawing-app export: dark brush strokes on a white canvas, RGB or opaque RGBA."""
    rgb = painted(canvas_alpha(digit, rng), (255, 255, 255), pick(rng, INKS))
    img = Image.fromarray(rgb)
    return encode(img.convert("RGBA") if rng.random() < 0.5 else img, "PNG")


def canvas_alpha_png(digit, label, rng):
    """Strokes on a transparent canvas: only alpha carries them; the colour under
    transparent pixels is the stroke colour itself (black on black, or white on white)."""
    alpha = canvas_alpha(digit, rng)
    colour = (0, 0, 0) if rng.random() < 0.7 else (255, 255, 255)
    rgba = np.empty(alpha.shape + (4,), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = np.round(alpha * 255)
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def paper_photo_jpeg(digit, label, rng):
    """A phone photo of a digit written on paper: small and anywhere in the frame, slightly
    rotated, unevenly lit, blurred, noisy, JPEG; sometimes stored sideways with an EXIF tag."""
    w, h = pick(rng, [(640, 480), (480, 640), (800, 600), (1024, 768)])
    size = int(rng.uniform(0.15, 0.5) * min(w, h))
    alpha = strokes(digit, size, pen=rng.uniform(0.35, 0.65))
    if rng.random() < 0.5:  # a ballpoint: lines about 4% of the digit's box wide
        alpha = thinned(alpha, int((mean_width(alpha > 0.5) - 0.04 * size) / 2))
    alpha = rotated(alpha, rng.uniform(-12, 12))
    rgb = painted(placed(alpha, (h, w), rng), jitter(pick(rng, PAPERS), rng), pick(rng, INKS))
    rgb = rgb * lighting((h, w), rng, rng.uniform(0.1, 0.4))
    img = Image.fromarray(noisy(rgb, rng, rng.uniform(2, 6))).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.4)))
    return _jpeg_maybe_sideways(img, rng)


def paper_on_desk_jpeg(digit, label, rng):
    """A photo of a sheet of paper lying on a darker desk: the sheet, slightly turned, fills
    most of the frame; desk shows at the edges; the digit is somewhere on the sheet."""
    w, h = pick(rng, [(640, 480), (800, 600), (480, 640)])
    sheet = Image.new("L", (w, h), 0)
    cx, cy, half_w, half_h = w / 2, h / 2, w * rng.uniform(0.35, 0.5), h * rng.uniform(0.35, 0.5)
    turn = np.deg2rad(rng.uniform(-8, 8))
    corners = [(cx + dx * np.cos(turn) - dy * np.sin(turn), cy + dx * np.sin(turn) + dy * np.cos(turn))
               for dx, dy in ((-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h))]
    ImageDraw.Draw(sheet).polygon(corners, fill=255)
    on_sheet = np.asarray(sheet, np.float32)[..., None] / 255
    size = int(rng.uniform(0.2, 0.4) * min(w, h))
    alpha = rotated(strokes(digit, size, pen=rng.uniform(0.35, 0.6)), rng.uniform(-10, 10))
    inner = np.zeros((h, w), np.float32)  # the digit lands in the middle half of the frame: on the sheet
    inner[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = placed(alpha[:h // 2, :w // 2], (h // 2, w // 2), rng)
    desk = jitter(pick(rng, DESKS), rng, 12)
    paper = painted(inner, jitter(pick(rng, PAPERS), rng), pick(rng, INKS)).astype(np.float32)
    rgb = (paper * on_sheet + desk * (1 - on_sheet)) * lighting((h, w), rng, rng.uniform(0.1, 0.3))
    img = Image.fromarray(noisy(rgb, rng, rng.uniform(2, 6))).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    return _jpeg_maybe_sideways(img, rng)


def lined_paper_jpeg(digit, label, rng):
    """A photo of a digit written in a ruled notebook: light blue or grey lines every 6-10%
    of the height, a margin line in red, the digit anywhere across the lines."""
    w, h = pick(rng, [(640, 480), (800, 600)])
    ruling = np.zeros((h, w), np.float32)
    spacing = int(rng.uniform(0.06, 0.1) * h)
    for y in range(int(rng.integers(spacing)), h, spacing):
        ruling[y:y + 2] = rng.uniform(0.3, 0.6)
    page = painted(ruling, jitter(pick(rng, PAPERS), rng), pick(rng, [(120, 160, 220), (150, 150, 150)]))
    margin = int(rng.integers(w // 12, w // 6))
    page[:, margin:margin + 2] = (220, 90, 90)
    alpha = rotated(strokes(digit, int(rng.uniform(0.25, 0.5) * h), pen=rng.uniform(0.35, 0.6)), rng.uniform(-8, 8))
    rgb = painted(placed(alpha, (h, w), rng), page.astype(np.float32), pick(rng, INKS))
    rgb = rgb * lighting((h, w), rng, rng.uniform(0.1, 0.3))
    img = Image.fromarray(noisy(rgb, rng, rng.uniform(2, 5))).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
    return _jpeg_maybe_sideways(img, rng)


def cropped_jpeg(digit, label, rng):
    """A photo cropped to the digit by its author: margins from none (strokes touch the edges)
    to a tenth of the digit, paper lit unevenly, JPEG."""
    alpha = strokes(digit, int(rng.integers(100, 300)), pen=rng.uniform(0.3, 0.6))
    rows, cols = np.flatnonzero(alpha.max(1) > 0.5), np.flatnonzero(alpha.max(0) > 0.5)
    alpha = alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    m = int(rng.uniform(0, 0.1) * max(alpha.shape))
    alpha = np.pad(alpha, m)
    h, w = alpha.shape
    rgb = painted(alpha, jitter(pick(rng, PAPERS), rng), pick(rng, INKS)) * lighting((h, w), rng, rng.uniform(0, 0.2))
    return encode(Image.fromarray(noisy(rgb, rng, 3)), "JPEG", quality=int(rng.integers(70, 90)))


def _jpeg_maybe_sideways(img, rng):
    quality = int(rng.integers(60, 86))
    if rng.random() < 0.7:
        return encode(img, "JPEG", quality=quality)
    # orientation tag -> the transpose that undoes it, applied here in reverse
    orientation, stored = pick(rng, [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270),
                                     (3, Image.Transpose.ROTATE_180)])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img.transpose(stored), "JPEG", quality=quality, exif=exif.tobytes())


def coloured_ink(digit, label, rng):
    """Blue, red, green or purple ink on yellow, pink, blue, green, orange or grey paper."""
    side = int(rng.integers(200, 500))
    size = int(side * rng.uniform(0.4, 0.9))
    alpha = placed(strokes(digit, size, pen=rng.uniform(0.3, 0.6)), (side, side), rng)
    rgb = painted(alpha, jitter(pick(rng, COLOURED_PAPERS), rng), jitter(pick(rng, COLOURED_INKS), rng, 20))
    img = Image.fromarray(noisy(rgb.astype(np.float32), rng, 3))
    return encode(img, "PNG") if rng.random() < 0.5 else encode(img, "JPEG", quality=85)


def inverted(digit, label, rng):
    """Light on dark the other way round: black-on-white 28x28, or chalk on a blackboard."""
    if rng.random() < 0.5:
        return encode(Image.fromarray(255 - digit), "PNG")
    side = int(rng.integers(150, 400))
    alpha = placed(strokes(digit, int(side * rng.uniform(0.5, 0.9))), (side, side), rng)
    rgb = painted(alpha, jitter((40, 60, 50), rng, 15), jitter((235, 235, 225), rng, 15))
    return encode(Image.fromarray(noisy(rgb.astype(np.float32), rng, 5)), "JPEG", quality=80)


def palette_gif(digit, label, rng):
    """A GIF of a drawing: 16-colour palette; half with a transparent, black background
    (the strokes are black too), some animated with the digit in the first frame."""
    alpha = canvas_alpha(digit, rng)
    if rng.random() < 0.5:
        img = Image.fromarray(painted(alpha, (255, 255, 255), pick(rng, INKS))).quantize(16)
        frames = [img, Image.new("P", img.size, 0)] if rng.random() < 0.5 else [img]
        return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200)
    levels = np.round(alpha * 15).astype(np.uint8)  # index 0 = transparent background
    img = Image.fromarray(levels, "P")
    img.putpalette([0, 0, 0] * 16)
    return encode(img, "GIF", transparency=0)


def bmp(digit, label, rng):
    """A BMP: 1-bit black-and-white (a scanner's default) or 24-bit."""
    img = Image.fromarray(painted(canvas_alpha(digit, rng), (255, 255, 255), (0, 0, 0)))
    return encode(img.convert("1") if rng.random() < 0.5 else img, "BMP")


def webp(digit, label, rng):
    """A lossy WebP of a canvas, or a lossless one with the strokes in alpha."""
    alpha = canvas_alpha(digit, rng)
    if rng.random() < 0.5:
        return encode(Image.fromarray(painted(alpha, (255, 255, 255), pick(rng, INKS))), "WEBP", quality=75)
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[..., 3] = np.round(alpha * 255)
    return encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True)


def tiff(digit, label, rng):
    """A CMYK TIFF of tinted paper (print workflows), or a two-page TIFF with the digit on page 1."""
    rgb = painted(canvas_alpha(digit, rng), jitter(pick(rng, PAPERS), rng), pick(rng, INKS))
    img = Image.fromarray(rgb)
    if rng.random() < 0.5:
        return encode(img.convert("CMYK"), "TIFF", compression="tiff_lzw")
    return encode(img, "TIFF", save_all=True, append_images=[Image.new("RGB", img.size, (255, 255, 255))])


def png16(digit, label, rng):
    """A 16-bit grayscale PNG (scientific cameras, scanners): dark ink on light grey, noisy."""
    side = int(rng.integers(64, 200))
    alpha = placed(strokes(digit, int(side * rng.uniform(0.6, 1.0))), (side, side), rng)
    level = 52000 - alpha * rng.uniform(30000, 48000) + rng.normal(0, 400, alpha.shape)
    return encode(Image.fromarray(np.clip(level, 0, 65535).astype(np.uint16)), "PNG")


def font_digit(label, rng, fonts):
    """``label`` typed in a random handwriting-like font, any size, on paper or dark mode."""
    font = ImageFont.truetype(pick(rng, fonts), int(rng.integers(32, 160)))
    left, top, right, bottom = font.getbbox(str(label))
    gw, gh = right - left, bottom - top
    w, h = int(gw * rng.uniform(1.4, 4) + 8), int(gh * rng.uniform(1.3, 3) + 8)
    dark = rng.random() < 0.2
    paper, ink = ((30, 30, 35), (235, 235, 235)) if dark else (tuple(jitter(pick(rng, PAPERS), rng)), pick(rng, INKS))
    img = Image.new("RGB", (w, h), tuple(int(c) for c in paper))
    x, y = rng.integers(4, w - gw - 3), rng.integers(4, h - gh - 3)
    ImageDraw.Draw(img).text((x - left, y - top), str(label), font=font, fill=tuple(int(c) for c in ink))
    img = img.rotate(rng.uniform(-6, 6), Image.Resampling.BILINEAR, fillcolor=tuple(int(c) for c in paper))
    return encode(img, "PNG") if rng.random() < 0.5 else encode(img, "JPEG", quality=85)


DIGIT_KINDS = {f.__name__: f for f in (
    mnist_png, canvas_png, canvas_alpha_png, paper_photo_jpeg, paper_on_desk_jpeg, lined_paper_jpeg, cropped_jpeg,
    coloured_ink, inverted, palette_gif, bmp, webp, tiff, png16)}
KINDS = (*DIGIT_KINDS, "font")


def upload(kind, digit, label, rng, fonts=None):
    """The bytes of one upload of ``kind`` showing ``label`` (``digit``: its MNIST image)."""
    return font_digit(label, rng, fonts or find_fonts()) if kind == "font" else DIGIT_KINDS[kind](digit, label, rng)


def upload_set(images, labels, n, rng, kinds=KINDS):
    """``n`` samples ``(kind, bytes, label)`` cycling through ``kinds``, digits drawn by ``rng``.

    ``font`` is skipped when no font is installed.
    """
    fonts = find_fonts()
    kinds = [k for k in kinds if k != "font" or fonts]
    samples = []
    for i in range(n):
        kind, j = kinds[i % len(kinds)], int(rng.integers(len(images)))
        label = int(rng.integers(10)) if kind == "font" else int(labels[j])
        samples.append((kind, upload(kind, images[j], label, rng, fonts), label))
    return samples
