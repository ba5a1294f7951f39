"""Generated non-digits, for teaching a digit classifier to say "this is not a digit".

Outlier exposure (Hendrycks et al., 2019): besides the digits, the network is
trained on images that are none of them, with the uniform distribution over the
ten digits as their target. It keeps its ten outputs, and learns to spread its
probability over them when it sees letters, symbols, scribbles or pictures, so
that its confidence drops where it should.

Each is drawn white on black and brought to the model's input by the service's
own preprocessing, so that non-digits reach the network as uploads will:

- ``glyphs``: letters and symbols typed in print fonts (DejaVu, and the font
  bundled with Pillow, which is always there) and in four of the upload
  benchmark's nine handwriting font families (``FONT_GLOBS``), leaving out
  characters that look like digits (``LOOK_ALIKES``); the other five families
  are kept for measuring how well this carries over to unseen writing;
- ``scribbles``: tangles of random pen strokes with sharp turns;
- ``shapes``: filled polygons and ellipses, like silhouettes of objects, and
  textures of noise (no outlines: a ring drawn with a pen is a 0).

    x = generate(6000, np.random.default_rng(0))   # (6000, 784) float32 in [0, 1]
"""
import glob

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service import preprocess

SIDE = 28
CANVAS = 96  # drawn at this size, then reduced: anti-aliased like MNIST's strokes
FONT_GLOBS = [
    "/usr/share/fonts/truetype/dejavu/DejaVu*.ttf",               # fonts-dejavu-core (and -extra)
    "/usr/share/fonts/opentype/bwht/BecauseWe*.otf",              # fonts-bwht
    "/usr/share/fonts/opentype/comic-neue/ComicNeue-[RBI]*.otf",  # fonts-comic-neue
    "/usr/share/fonts/truetype/fifthhorseman/dkg*.ttf",           # fonts-dkg-handwriting
    "/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf",        # fonts-humor-sans
]
PILLOW_FONT = "pillow"  # Pillow's bundled font, for machines with no fonts installed (the image)
# Characters that people also write as digits, or that become one once cropped
# and centred: 0 (O o D Q), 1 (I l i j J | / \ ! ( ) [ ] { } ¶), 2 (Z z), 5 (S s $),
# 6 (b G), 7 (T), 8 (B & §), 9 (g q a), 4 (y), 2 or 7 (? without its dot), and marks too
# small to be anything (. , ' ` -).
LOOK_ALIKES = set("OoDQIlijJ|/\\!()[]{}¶ZzSs$§bGTB&gqay?.,'`-_")
CHARACTERS = "".join(c for c in (
    "ACEFHKLMNPRUVWXY" "cdefhkmnprtuvwx" "+=#%*@?<>{}~^€£¥§¶πΣΩλμ") if c not in LOOK_ALIKES)


def fonts():
    """The fonts glyphs are drawn in: the paths of those of FONT_GLOBS installed here, and PILLOW_FONT."""
    return sorted({path for pattern in FONT_GLOBS for path in glob.glob(pattern)}) + [PILLOW_FONT]


def _font(name, size):
    return ImageFont.load_default(size) if name == PILLOW_FONT else ImageFont.truetype(name, size)


def _canvas():
    img = Image.new("L", (CANVAS, CANVAS), 0)
    return img, ImageDraw.Draw(img)


def glyph(rng, font_paths):
    """One character of CHARACTERS in a random font, size and stroke width, among those the
    font really draws: a missing glyph is drawn as an empty box, which looks like a 0."""
    font = _font(font_paths[rng.integers(len(font_paths))], int(rng.integers(48, 72)))
    drawn = _drawn(font)
    char = drawn[rng.integers(len(drawn))]
    img, draw = _canvas()
    draw.text((CANVAS // 2, CANVAS // 2), char, font=font, fill=255, anchor="mm",
              stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
    return img


def _drawn(font):
    """The characters of CHARACTERS that ``font`` has a glyph for (all of them if it has none of them)."""
    missing = bytes(font.getmask("\ue000"))  # a private-use character: every font's "no glyph" box
    drawn = [c for c in CHARACTERS if bytes(font.getmask(c)) != missing]
    return drawn or list(CHARACTERS)


def scribble(rng):
    """A tangle: 5-12 straight or curved pen strokes, each turning sharply from the last."""
    img, draw = _canvas()
    width = int(rng.integers(3, 9))
    point = rng.uniform(10, CANVAS - 10, 2)
    for _ in range(int(rng.integers(5, 13))):
        nxt = rng.uniform(10, CANVAS - 10, 2)
        bend = (point + nxt) / 2 + rng.normal(0, 15, 2)
        t = np.linspace(0, 1, 12)[:, None]
        curve = (1 - t) ** 2 * point + 2 * t * (1 - t) * bend + t ** 2 * nxt
        draw.line([tuple(p) for p in curve], fill=255, width=width, joint="curve")
        point = nxt
    return img


def shape(rng):
    """Filled polygons or ellipses, one to three, like silhouettes of objects; or a patch of
    noise. Never an outline alone: a ring or a box drawn with a pen is how people write 0."""
    img, draw = _canvas()
    kind = rng.integers(3)
    if kind == 2:  # texture: speckles and blotches, as a photo of fabric or a noisy blank
        noise = rng.random((CANVAS // 4, CANVAS // 4)) < rng.uniform(0.2, 0.7)
        return Image.fromarray((noise * 255).astype(np.uint8)).resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
    for _ in range(int(rng.integers(1, 4))):
        if kind == 0:
            x0, y0 = rng.uniform(5, 45, 2)
            x1, y1 = rng.uniform(50, 91, 2)
            draw.ellipse((x0, y0, x1, y1), fill=255)
        else:
            sides = int(rng.integers(3, 9))
            centre, radius = rng.uniform(35, 61, 2), rng.uniform(20, 45)
            angles = np.sort(rng.uniform(0, 2 * np.pi, sides))
            points = centre + radius * np.c_[np.cos(angles), np.sin(angles)] * rng.uniform(0.6, 1, (sides, 1))
            draw.polygon([tuple(p) for p in points], fill=255)
    return img


def generate(n, rng, font_paths=None):
    """``n`` non-digits as the model sees them, ``(n, 784)`` float32 in [0, 1]: three quarters
    glyphs, an eighth scribbles, an eighth shapes and textures. ``font_paths``: default :func:`fonts`.

    Glyphs get the most: letters are what is hardest to tell from digits, while a few
    thousand scribbles and shapes already teach the rest (docs/benchmarks.md#trustworthy-answers).
    """
    font_paths = fonts() if font_paths is None else font_paths
    makers = [scribble, shape] + ([lambda r: glyph(r, font_paths)] * 6 if font_paths else [])
    out = np.zeros((n, SIDE * SIDE), np.float32)
    for i in range(n):
        out[i] = preprocess.to_mnist(makers[i % len(makers)](rng))
    return out
