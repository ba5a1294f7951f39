"""How far an app can trust the answers: statuses, non-digits, calibration and numbers, over HTTP.

    python benchmarks/trust_bench.py                                  # ~6-8 minutes on 2 cores
    python benchmarks/trust_bench.py --model-dir models/mnist --version 5 --baseline-model-dir models/mnist/4
    python benchmarks/trust_bench.py --model-dir models/mnist/2 --n 200   # a quick look: every set capped at 200

Starts the real gunicorn server (2 workers) on 127.0.0.1 serving ``--model-dir``
(a model's directory with ``--version``, default its latest, or one version's
directory) and sends every image as a client would: multipart requests of up
to 64 files to ``POST /predict`` and ``POST /read``. Uploads come from
``tests/uploads.py`` and ``tests/trust_uploads.py`` with fixed seeds; MNIST from
``--mnist-dir`` (or MNIST_DIR), Fashion-MNIST from Debian's dataset-fashion-mnist.
Prints markdown tables:

- MNIST test digits as 28x28 PNGs, and realistic uploads of digits by kind:
  the share of each status, and how often ``ok`` answers are right;
- blank canvases and photos of empty paper: the share answered ``no_digit``;
- things that are no digit (Fashion-MNIST, letters in handwriting fonts the
  trainer never drew non-digits in and in all of them, scribbles, noise): the
  share answered ``not_a_digit`` or ``no_digit``, and the AUROC of the
  response's confidence against MNIST test digits (no_digit lowest);
- detector options, offline with the model's own logits: maximum softmax
  probability, calibrated, the sum of the top two, energy; for ``--baseline-model-dir`` too;
- ``/read`` on composed numbers of 2-6 MNIST test digits, apart or touching,
  on a canvas or photographed on paper, and on numbers typed in handwriting
  fonts: whole-number accuracy by length;
- expected calibration error (15 bins) on MNIST test, before and after the
  card's temperature;
- the bars the issue sets, passed or not.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import local
from types import SimpleNamespace

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/ is not part of the installed package

from neuralnet.calibration import ece, softmax  # noqa: E402
from neuralnet.model_io import list_versions, load_version  # noqa: E402
from service.answers import STATUSES, energy, top2_probability  # noqa: E402
from service.predict import decode_all  # noqa: E402
from service.preprocess import prepare  # noqa: E402
from tests import trust_uploads as tu  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402
from tests.uploads import KINDS, encode, find_fonts, upload_set  # noqa: E402
from trainer.data import load_mnist, read_idx  # noqa: E402
from trainer.train import split  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
BATCH = 64            # images per request: the service's MAX_BATCH_IMAGES
CLIENTS = 4           # requests in flight: keeps both workers busy while the next batch is generated
FLAG_RATE = 0.004     # share of held-out digits a detector threshold may flag (trainer/calibrate.py)
LENGTHS = range(2, 7)
SIZES = {  # images per set at the defaults; --n caps each
    "mnist": 10_000, "uploads": 1_500, "blank canvas": 300, "blank paper": 300, "blank ruled paper": 150,
    "blank paper on a desk": 150,
    "fashion": 2_000, "fashion on paper": 500, "letters, held-out fonts": 1_000, "letters, all fonts": 1_000,
    "scribbles": 500, "noise": 500, "numbers": 200,  # numbers: per length, background and spacing
}
NOT_DIGITS = ("fashion", "fashion on paper", "letters, held-out fonts", "letters, all fonts", "scribbles", "noise")
BLANKS = ("blank canvas", "blank paper", "blank ruled paper", "blank paper on a desk")
BARS = {"mnist_ok_right": 0.99, "mnist_not_ok": 0.01, "no_digit": 1.0, "flagged": 0.95, "auroc": 0.98, "numbers": 0.95}


# -- the model and the server ------------------------------------------------------
def resolve(model_dir, version):
    """``(models root, model name, version, version dir)`` for ``--model-dir`` and ``--version``."""
    d = Path(model_dir).resolve()
    if (d / "model.json").is_file():  # one version's directory
        if version not in (None, int(d.name)):
            sys.exit(f"--model-dir {model_dir} is version {d.name}, not --version {version}")
        return d.parent.parent, d.parent.name, int(d.name), d
    versions = list_versions(d)
    if not versions:
        sys.exit(f"no model versions under {d}")
    v = version or max(versions)
    return d.parent, d.name, v, d / str(v)


_session = local()


def post(url, blobs):
    """One multipart request of ``blobs``; the decoded JSON body (raises on any non-200)."""
    if not hasattr(_session, "s"):
        _session.s = requests.Session()
    files = [("image", (f"{i}", blob, mime(blob))) for i, blob in enumerate(blobs)]
    r = _session.s.post(url, files=files, timeout=300)
    if r.status_code != 200:
        raise RuntimeError(f"{url}: {r.status_code} {r.text[:300]}")
    return r.json()


def mime(blob):
    return "image/png" if blob[:4] == b"\x89PNG" else "image/jpeg" if blob[:2] == b"\xff\xd8" else "image/*"


def send(pool, url, blobs, into=None):
    """Submit every blob to ``url`` in batches of BATCH: the futures of the responses, in order.

    ``blobs`` may be a generator: each batch goes out as soon as it fills, so
    the server works while the next one is made; ``into``, if a list, keeps
    the blobs."""
    futures, batch = [], []
    for blob in blobs:
        batch.append(blob)
        if into is not None:
            into.append(blob)
        if len(batch) == BATCH:
            futures.append(pool.submit(post, url, batch))
            batch = []
    if batch:
        futures.append(pool.submit(post, url, batch))
    return futures


def answers_of(futures, key):
    """The answers (``key``: "predictions" or "readings") of every response, in order."""
    return [a for f in futures for a in f.result()[key]]


# -- the uploads ------------------------------------------------------------------
def rng_for(name, seed):
    """A generator per set, so that one set's size never changes another's images."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def single_sets(mnist, fashion, fonts, n, seed):
    """``({set name: generator of bytes}, {"mnist": labels, "uploads": [(kind, label)]})`` for the
    sets of single images, ``n[name]`` images each."""
    images, labels = mnist
    r = {name: rng_for(name, seed) for name in SIZES}
    held = tu.held_out_fonts(fonts)
    uploads = upload_set(images, labels, n["uploads"], r["uploads"]) if n["uploads"] else []
    garments = fashion[r["fashion"].choice(len(fashion), n["fashion"] + n["fashion on paper"], replace=False)]
    sets = {
        "mnist": (encode(Image.fromarray(d), "PNG") for d in images[:n["mnist"]]),
        "uploads": (data for _, data, _ in uploads),
        "blank canvas": repeat(n["blank canvas"], tu.blank_canvas, r["blank canvas"]),
        "blank paper": repeat(n["blank paper"], tu.blank_paper, r["blank paper"], False, False),
        "blank ruled paper": repeat(n["blank ruled paper"], tu.blank_paper, r["blank ruled paper"], True, False),
        "blank paper on a desk": repeat(n["blank paper on a desk"], tu.blank_paper, r["blank paper on a desk"],
                                        False, True),
        "fashion": (tu.fashion(g) for g in garments[:n["fashion"]]),
        "fashion on paper": (tu.fashion_on_paper(g, r["fashion on paper"]) for g in garments[n["fashion"]:]),
        "letters, held-out fonts": repeat(n["letters, held-out fonts"] if held else 0, tu.letter,
                                          r["letters, held-out fonts"], held),
        "letters, all fonts": repeat(n["letters, all fonts"], tu.letter, r["letters, all fonts"], fonts),
        "scribbles": repeat(n["scribbles"], tu.scribble, r["scribbles"]),
        "noise": repeat(n["noise"], tu.noise, r["noise"]),
    }
    return sets, {"mnist": labels[:n["mnist"]], "uploads": [(kind, label) for kind, _, label in uploads]}


def number_sets(mnist, fonts, per_length, seed):
    """``{(source, length): generator of (bytes, text)}``: MNIST numbers on canvas and paper, apart
    and touching, and numbers typed in the handwriting fonts."""
    out = {}
    for background in ("canvas", "paper"):
        for touching in (False, True):
            source = f"MNIST, {background}, {'touching' if touching else 'apart'}"
            rng = rng_for(source, seed)
            for length in LENGTHS:
                out[source, length] = repeat(per_length, tu.number, *mnist, rng, length, touching, background)
    rng = rng_for("font numbers", seed)
    for length in LENGTHS:
        out["handwriting fonts", length] = repeat(per_length, tu.font_number, rng, fonts, length)
    return out


def repeat(n, make, *args):
    """``n`` calls of ``make(*args)``, one at a time (a generator binds ``args`` now, not when it runs)."""
    for _ in range(n):
        yield make(*args)


def texts_kept(pairs, texts, blobs=None):
    """The bytes of ``(bytes, text)`` pairs, keeping each text in ``texts`` (and the bytes in ``blobs``)."""
    for data, text in pairs:
        texts.append(text)
        if blobs is not None:
            blobs.append(data)
        yield data


def save_misread(readings, texts, blobs, folder):
    """Every number /read got wrong, named ``source-length-index-TEXT-as-READ.ext``, for a look."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for (source, length), got in readings.items():
        for i, (r, text, data) in enumerate(zip(got, texts[source, length], blobs[source, length])):
            if r["text"] != text:
                name = f"{source.replace(', ', '-').replace(' ', '_')}-{length}-{i}-{text}-as-{r['text'] or 'none'}"
                (folder / f"{name}.{mime(data).split('/')[1]}").write_bytes(data)


# -- measures -----------------------------------------------------------------------
def score(prediction):
    """The digit score an app sees: the calibrated confidence, lowest when there is no digit."""
    return -np.inf if prediction["confidence"] is None else prediction["confidence"]


def auroc(positive, negative):
    """Area under the ROC curve of scores ``positive`` (digits) above ``negative``; ties count half."""
    s = np.concatenate([positive, negative]).astype(np.float64)
    order = np.argsort(s, kind="stable")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)  # 1-based, tied scores share their mean rank
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def shares(statuses):
    counts = Counter(statuses)
    return {s: counts[s] / max(len(statuses), 1) for s in STATUSES}


def pct(x, digits=2):
    return "n/a" if x is None or np.isnan(x) else f"{100 * x:.{digits}f}%"


def table(title, header, rows, note=None):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    if note:
        print(f"\n{note}")
    sys.stdout.flush()


def status_row(name, predictions, labels=None):
    """``[name, n, share per status..., ok right, accuracy of ok]``; the last two need ``labels``."""
    st = shares([p["status"] for p in predictions])
    row = [name, len(predictions)] + [pct(st[s]) for s in STATUSES]
    if labels is not None:
        ok = [p["digit"] == y for p, y in zip(predictions, labels) if p["status"] == "ok"]
        row += [pct(ok_and_right(predictions, labels)), pct(np.mean(ok) if ok else np.nan)]
    return row


def ok_and_right(predictions, labels):
    """The share of ``predictions`` answered ``ok`` with the right digit."""
    return sum(p["status"] == "ok" and p["digit"] == y for p, y in zip(predictions, labels)) / max(len(predictions), 1)


# -- the tables from the server's answers --------------------------------------------
def report_digits(answers, truth, results):
    mnist = answers["mnist"]
    header = ["set", "n", *STATUSES, "ok and right", "accuracy of ok"]
    rows = [status_row("MNIST test, 28x28 PNG", mnist, truth["mnist"])]
    results["mnist_not_ok"] = 1 - shares([p["status"] for p in mnist])["ok"]
    results["mnist_ok_right"] = ok_and_right(mnist, truth["mnist"])
    by_kind = {}
    for (kind, label), p in zip(truth["uploads"], answers["uploads"]):
        by_kind.setdefault(kind, ([], []))
        by_kind[kind][0].append(p)
        by_kind[kind][1].append(label)
    rows += [status_row(f"upload: {kind}", *by_kind[kind]) for kind in KINDS if kind in by_kind]
    if by_kind:
        rows.append(status_row("uploads, all kinds", answers["uploads"], [y for _, y in truth["uploads"]]))
    table("Digits: how /predict answers them", header, rows,
          f"Bars: MNIST test answered ok and right >= {pct(BARS['mnist_ok_right'], 0)} "
          f"(here {pct(results['mnist_ok_right'])}), anything but ok <= {pct(BARS['mnist_not_ok'], 0)} "
          f"(here {pct(results['mnist_not_ok'])}).")


def report_blanks(answers, results):
    rows = [status_row(name, answers[name]) for name in BLANKS if answers[name]]
    results["no_digit"] = {name: shares([p["status"] for p in answers[name]])["no_digit"]
                           for name in BLANKS if answers[name]}
    table("Nothing written: how /predict answers blanks", ["set", "n", *STATUSES], rows,
          "Bar: 100% no_digit.")


def report_not_digits(answers, results):
    digits = [score(p) for p in answers["mnist"]]
    rows, results["flagged"], results["auroc"] = [], {}, {}
    for name in NOT_DIGITS:
        preds = answers[name]
        if not preds:
            continue
        st = shares([p["status"] for p in preds])
        results["flagged"][name] = st["not_a_digit"] + st["no_digit"]
        results["auroc"][name] = auroc(digits, [score(p) for p in preds])
        rows.append(status_row(name, preds) + [pct(results["flagged"][name]), f"{results['auroc'][name]:.4f}"])
    table("Not digits: how /predict answers them", ["set", "n", *STATUSES, "not_a_digit or no_digit",
                                                   "AUROC vs MNIST"], rows,
          f"Bars: >= {pct(BARS['flagged'], 0)} flagged on Fashion and on letters in the uploads' fonts (all of "
          f"them); AUROC >= {BARS['auroc']}. Held-out fonts: a stricter check, without a bar. "
          "AUROC of the response's confidence (rounded to 6 decimals, so saturated answers tie), "
          "no_digit lowest, against the MNIST test digits above.")


def report_numbers(readings, texts, results):
    sources = list(dict.fromkeys(source for source, _ in texts))
    acc_rows, status_rows, results["numbers"] = [], [], {}
    for source in sources:
        right, statuses, counted = [], [], []
        row = [source]
        for length in LENGTHS:
            got = readings[source, length]
            hits = [r["text"] == text for r, text in zip(got, texts[source, length])]
            row.append(pct(np.mean(hits) if hits else np.nan, 1))
            right += hits
            statuses += [r["status"] for r in got]
            counted += [len(r["digits"]) == length for r in got]
        results["numbers"][source] = np.mean(right) if right else np.nan
        acc_rows.append(row + [pct(results["numbers"][source], 1)])
        ok_right = [h for h, s in zip(right, statuses) if s == "ok"]
        st = shares(statuses)
        status_rows.append([source, len(statuses), *(pct(st[s], 1) for s in ("ok", "uncertain", "not_a_digit",
                                                                             "no_digit")),
                            pct(np.mean(counted), 1), pct(np.mean(ok_right) if ok_right else np.nan, 1)])
    table("/read: whole-number accuracy by length", ["numbers", *map(str, LENGTHS), "all"], acc_rows,
          f"Bar: >= {pct(BARS['numbers'], 0)} on MNIST numbers written apart.")
    table("/read: statuses", ["numbers", "n", "ok", "uncertain", "not_a_digit", "no_digit", "right digit count",
                              "accuracy of ok"], status_rows)


# -- offline: detectors and calibration ----------------------------------------------
def inputs(blobs):
    """The model inputs the service makes of ``blobs``: ``(x (n, 784), parts (n,))``, in batches."""
    xs, parts = [np.zeros((0, 784), np.float32)], [np.zeros(0, np.intp)]
    for i in range(0, len(blobs), BATCH):
        x, p = prepare(decode_all(blobs[i:i + BATCH], 12_000_000, 50_000_000))
        xs.append(x)
        parts.append(p)
    return np.concatenate(xs), np.concatenate(parts)


def temperature(card):
    return (card.get("answers") or {}).get("temperature", 1.0)


def detector_scores(net, card, x, parts):
    """``{detector: (n,) digit scores}``; images without ink score lowest under every detector."""
    z = net.logits(x).astype(np.float64)
    p = softmax(z, temperature(card))
    scores = {"max softmax": softmax(z).max(axis=1), "calibrated max prob": p.max(axis=1),
              "calibrated top-2 sum": top2_probability(p, z), "energy": energy(None, z)}
    for s in scores.values():
        s[parts == 0] = -np.inf
    return scores


def held_out_digits(card, mnist_dir, x_test):
    """``(x (n, 784), where)``: the training run's validation digits, rebuilt from the card's seed and
    split as trainer/train.py draws them; else the first 5,000 MNIST test digits."""
    training = card.get("training", {})
    if training.get("val_split") and "seed" in training and mnist_dir:
        try:
            mnist = load_mnist(mnist_dir)
        except Exception as exc:  # no training files here: fall back, and say so
            print(f"(validation split unavailable: {type(exc).__name__})")
        else:
            cfg = SimpleNamespace(val_split=training["val_split"])
            _, val, _ = split(mnist, cfg, np.random.default_rng(training["seed"]))
            return val[0], f"the run's validation split ({len(val[0])} training digits, seed {training['seed']})"
    return x_test[:5000], "the first 5,000 MNIST test digits (no validation split at hand)"


def report_detectors(models, offline, mnist_dir):
    """AUROC vs MNIST test, and the share rejected at a threshold flagging FLAG_RATE of held-out digits."""
    rows, notes = [], []
    x_test, parts_test = offline["mnist"]
    for label, (net, card) in models.items():
        x_val, where = held_out_digits(card, mnist_dir, x_test)
        notes.append(f"{label}: thresholds at the {pct(FLAG_RATE, 1)} quantile of {where}; "
                     f"temperature {temperature(card):g}.")
        val = detector_scores(net, card, x_val, np.ones(len(x_val), np.intp))
        test = detector_scores(net, card, x_test, parts_test)
        others = {name: detector_scores(net, card, *offline[name]) for name in offline if name != "mnist"}
        for detector in test:
            threshold = np.quantile(val[detector], FLAG_RATE)
            rows.append([label, detector, pct(np.mean(test[detector] < threshold))]
                        + [f"{auroc(test[detector], s[detector]):.4f} / {pct(np.mean(s[detector] < threshold), 1)}"
                           for s in others.values()])
    header = ["model", "detector", "MNIST test flagged", *(n for n in offline if n != "mnist")]
    table("Detector options (offline, the model's own logits): AUROC vs MNIST test / share rejected", header,
          rows, "\n".join(notes) + "\nImages without ink score lowest under every detector.")


def report_calibration(net, card, offline, labels, answers):
    x, parts = offline["mnist"]
    z = net.logits(x).astype(np.float64)
    block = (card.get("answers") or {}).get("test_ece", {})
    served = [(p["probabilities"], y) for p, y in zip(answers["mnist"], labels) if p["probabilities"] is not None]
    served_ece = ece(np.array([p for p, _ in served]), np.array([y for _, y in served])) if served else np.nan
    rows = [["model card (answers.test_ece)", f"{block['before']:.4f}" if block else "n/a",
             f"{block['after']:.4f}" if block else "n/a"],
            ["recomputed offline", f"{ece(softmax(z), labels):.4f}",
             f"{ece(softmax(z, temperature(card)), labels):.4f}"],
            ["served /predict probabilities", "", f"{served_ece:.4f}"]]
    table("Calibration on MNIST test: ECE, 15 bins", ["source", "before (T=1)", f"after (T={temperature(card):g})"],
          rows, None if block else "The card has no answers block: temperature 1, so before = after.")


def report_bars(results):
    rows = [["MNIST test answered ok and right", f">= {pct(BARS['mnist_ok_right'], 0)}",
             pct(results["mnist_ok_right"]), results["mnist_ok_right"] >= BARS["mnist_ok_right"]],
            ["MNIST test answered anything but ok", f"<= {pct(BARS['mnist_not_ok'], 0)}",
             pct(results["mnist_not_ok"]), results["mnist_not_ok"] <= BARS["mnist_not_ok"]]]
    rows += [[f"{name}: no_digit", "100%", pct(v), v >= BARS["no_digit"]] for name, v in results["no_digit"].items()]
    # the sets: Fashion-MNIST, and letters in the handwriting fonts the uploads use (all
    # of them); the five families the trainer never draws in are a stricter check, with no bar
    barred = [name for name in results["flagged"] if name.startswith("fashion") or name == "letters, all fonts"]
    rows += [[f"{name}: not_a_digit or no_digit", f">= {pct(BARS['flagged'], 0)}", pct(results["flagged"][name]),
              results["flagged"][name] >= BARS["flagged"]] for name in barred]
    rows += [[f"{name}: AUROC vs MNIST", f">= {BARS['auroc']}", f"{results['auroc'][name]:.4f}",
              results["auroc"][name] >= BARS["auroc"]] for name in barred]
    rows += [[f"/read {source}", f">= {pct(BARS['numbers'], 0)}", pct(v, 1), v >= BARS["numbers"]]
             for source, v in results["numbers"].items() if source.endswith("apart")]
    table("Bars", ["measure", "bar", "measured", "met"], [r[:3] + ["yes" if r[3] else "**no**"] for r in rows])


# -- the run --------------------------------------------------------------------------
def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=str(REPO / "models" / "mnist"),
                   help="a model's directory (with --version, default its latest) or one version's directory")
    p.add_argument("--version", type=int)
    p.add_argument("--baseline-model-dir", help="a version directory to compare in the detector table")
    p.add_argument("--n", type=int, help="cap every set at N images (numbers: N per length and kind)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--errors", metavar="DIR", help="save the numbers /read got wrong here, to look at")
    p.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", str(REPO.parent / "shared" / "data" / "mnist")))
    return p.parse_args()


def header(args, name, version, version_dir):
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"# trust_bench: model {name} version {version} ({version_dir})\n")
    print(f"- command: `python {' '.join(sys.argv)}`")
    print(f"- machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"- code: {commit}; seed {args.seed}; {args.workers} gunicorn workers, batches of {BATCH}")


def main():
    args = parse_args()
    start = time.time()
    root, name, version, version_dir = resolve(args.model_dir, args.version)
    header(args, name, version, version_dir)
    sizes = {k: min(v, args.n) if args.n else v for k, v in SIZES.items()}
    mnist = read_idx(Path(args.mnist_dir) / "t10k-images-idx3-ubyte.gz"), \
        read_idx(Path(args.mnist_dir) / "t10k-labels-idx1-ubyte.gz")
    fashion = read_idx(FASHION)
    fonts = find_fonts()
    sets, truth = single_sets(mnist, fashion, fonts, sizes, args.seed)
    blobs, pending, texts, number_blobs = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(CLIENTS) as pool:
        with LiveServer(root, tmp, workers=args.workers, reload_interval=5, model_version=version,
                        model_name=name) as server:
            server.wait_models_loaded()
            for set_name, gen in sets.items():
                blobs[set_name] = []
                pending[set_name] = send(pool, server.url + "/predict", gen, blobs[set_name])
            for key, pairs in number_sets(mnist, fonts, sizes["numbers"], args.seed).items():
                texts[key], number_blobs[key] = [], [] if args.errors else None
                pending[key] = send(pool, server.url + "/read", texts_kept(pairs, texts[key], number_blobs[key]))
            answers = {k: answers_of(f, "predictions") for k, f in pending.items() if k in sets}
            readings = {k: answers_of(f, "readings") for k, f in pending.items() if k in texts}
    print(f"- served in {time.time() - start:.0f} s")
    results = {}
    report_digits(answers, truth, results)
    report_blanks(answers, results)
    report_not_digits(answers, results)
    report_numbers(readings, texts, results)
    if args.errors:
        save_misread(readings, texts, number_blobs, args.errors)
    offline = {k: inputs(blobs[k]) for k in ("mnist", *NOT_DIGITS) if blobs[k]}
    models = {f"v{version}": load_version(version_dir)}
    if args.baseline_model_dir:
        models[f"baseline {Path(args.baseline_model_dir).name}"] = load_version(args.baseline_model_dir)
    report_detectors(models, offline, args.mnist_dir)
    report_calibration(*models[f"v{version}"], offline, truth["mnist"], answers)
    report_bars(results)
    print(f"\n(total {time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
