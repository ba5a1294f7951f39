"""The notebook's extra credit, measured: from its recipe to the CNN, one change at a time.

    python benchmarks/ablation.py [--seeds 3] [--jobs 2] [--uploads 1500] [--results FILE]
    python benchmarks/ablation.py --rows cross-entropy relu he-init --set lr=0.01   # the same rows, another lr

Row 0 is the notebook (784-100-50-10 tanh, MSE, per-sample SGD); each later
row makes one change to the row above, and the last row is the ``cnn``
preset the service ships. Every row is trained from scratch for each seed on
the real MNIST (``--data-dir`` or MNIST_DIR) and scored on the test set and on
a fixed mixed set of uploads built by ``tests/uploads.py`` (photos, canvas
drawings, fonts ...), preprocessed once as the service does.

``--final-from models/mnist/6`` takes the last row from the ``mnist-train
--runs N`` run that wrote that version instead of training it again: the
card lists each seed's test accuracy and training time, and the committed
network (the best seed) is scored on the uploads. The card's recipe must be
the row's. ``--from-card ROW=VERSION_DIR`` does the same for any row, such as
the one of an earlier default model.

``--jobs 2`` trains two runs at a time with one BLAS thread each, which gets
more out of two cores than one run with two threads (much of a step is
element-wise NumPy, which is single-threaded); the seconds it reports are
then those of a run sharing the machine. Each finished run is saved to
``--results`` at once, and runs already there are not repeated, so an
interrupted study resumes where it stopped. Prints the table of
docs/ablation.md.
"""
import argparse
import ast
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/uploads.py is not part of the installed package

from trainer.presets import preset  # noqa: E402

# (name, what changes, the fields it sets): each row applies its change on top of every row above
ROWS = [
    ("notebook", "the notebook: 784-100-50-10 tanh, MSE, weights U(-0.5, 0.5), per-sample SGD lr 0.1, "
                 "500 x 256 samples", {}),
    ("cross-entropy", "softmax output and cross-entropy loss", {"loss": "softmax_cross_entropy"}),
    ("relu", "ReLU in the hidden layers", {"activation": "relu"}),
    ("he-init", "He initialisation", {"init": "he"}),
    ("adam-cosine", "Adam, lr 0.001 decayed on a cosine", {"optimizer": "adam", "lr": 1e-3, "schedule": "cosine"}),
    ("mini-batches", "mini-batches of 128, for 30 full epochs", {"batch_size": 128, "epoch_size": None, "epochs": 30}),
    ("wider-deeper", "784-800-800-10", {"hidden": (800, 800)}),
    ("shift", "random shifts of up to 2 px (the mlp preset)", {"augment": "shift"}),
    ("handwriting", "handwriting augmentation: rotation, scale, shear, elastic warp, stroke width",
     {"augment": "handwriting"}),
    ("convolution", "convolutions: conv5x5-32, pool, conv3x3-64, pool, dense 256; 12 epochs at lr 0.002",
     {"conv": ((32, 5), (64, 3)), "hidden": (256,), "epochs": 12, "lr": 2e-3}),
    ("batch-norm", "batch norm after each block and the hidden layer", {"batchnorm": True}),
    ("non-digits", "8,000 generated non-digits (three quarters letters and symbols) with uniform targets, "
     "and 14 epochs instead of 12 (`models/mnist/4`)", {"outliers": 8_000, "epochs": 14}),
    ("serving-cost", "a third less work per served image: the first convolution strides 2 instead of "
     "pooling, conv3x3-48 and dense 128 instead of 64 and 256, 16 epochs (`models/mnist/5`)",
     {"conv": ((32, 5, 2), (48, 3)), "hidden": (128,), "epochs": 16}),
    ("batch-64", "mini-batches of 64 instead of 128, which this library trains nearer PyTorch's speed "
     "(the cnn preset)", {"batch_size": 64}),
]


def configs():
    """``[(name, change, TrainConfig)]``: the cumulative recipe of every row."""
    cfg, out = replace(preset("notebook"), preset="ablation"), []
    for name, change, fields in ROWS:
        cfg = replace(cfg, **fields)
        out.append((name, change, cfg))
    return out


_worker = {}


def _init(data_dir, uploads):
    from trainer.data import load_mnist

    _worker["mnist"], _worker["uploads"] = load_mnist(data_dir), uploads


def train_row(name, cfg, seed):
    """Train one row with one seed in a worker; return its figures."""
    from trainer.train import train_once

    net, _, seconds, metrics = train_once(replace(cfg, seed=seed), _worker["mnist"], log_every=10**6)
    x, labels, kinds = _worker["uploads"]
    right = net.predict(x) == labels
    per_kind = {k: float(right[kinds == k].mean()) for k in np.unique(kinds)}
    return {"row": name, "seed": seed, "test_accuracy": metrics["test_accuracy"], "seconds": round(seconds, 1),
            "upload_accuracy": float(right.mean()), "upload_per_kind": per_kind}


def build_uploads(data_dir, n, seed=2024):
    """``(x (n, 784) float32, labels, kinds)``: the mixed uploads, decoded and preprocessed once."""
    from service.decode import decode_image
    from service.preprocess import to_mnist
    from tests.uploads import mnist_test_digits, upload_set

    images, labels = mnist_test_digits(data_dir)
    samples = upload_set(images, labels, n, np.random.default_rng(seed))
    x = np.stack([to_mnist(decode_image(data, max_pixels=40_000_000)) for _, data, _ in samples])
    return x, np.array([s[2] for s in samples]), np.array([s[0] for s in samples])


def from_card(version_dir, name, cfg, uploads):
    """The last row's results from the multi-seed training run that wrote ``version_dir``."""
    from neuralnet.model_io import load_version

    network, card = load_version(version_dir)
    recipe = {k: v for k, v in card["training"].items() if k not in ("seed", "preset")}
    expected = json.loads(json.dumps({k: v for k, v in vars(cfg).items() if k not in ("seed", "preset")}))
    if recipe != expected:
        sys.exit(f"{version_dir} was not trained with the {name!r} row's recipe")
    x, labels, kinds = uploads
    right = network.predict(x) == labels
    per_kind = {k: float(right[kinds == k].mean()) for k in np.unique(kinds)}
    return [{"row": name, "seed": run["seed"], "test_accuracy": run["test_accuracy"],
             "seconds": run["training_time_seconds"], "upload_accuracy": float(right.mean()),
             "upload_per_kind": per_kind, "from": str(version_dir)} for run in card["runs"]]


def table(rows, results):
    lines = ["| # | change (on top of the row above) | seeds | test accuracy | gain | training s | uploads "
             "| worst kind |", "| --: | --- | --: | --: | --: | --: | --: | --- |"]
    previous = None
    for i, (name, change, _) in enumerate(rows):
        runs = [r for r in results if r["row"] == name]
        if not runs:
            continue
        acc = np.array([r["test_accuracy"] for r in runs])
        up = np.array([r["upload_accuracy"] for r in runs])
        kinds = {k: np.mean([r["upload_per_kind"][k] for r in runs]) for k in runs[0]["upload_per_kind"]}
        worst = min(kinds, key=kinds.get)
        gain = "" if previous is None else f"{100 * (acc.mean() - previous):+.2f}"
        lines.append(f"| {i} | {change} | {len(runs)} | {acc.mean():.2%} ± {acc.std():.2%} | {gain} | "
                     f"{np.mean([r['seconds'] for r in runs]):.0f} | {up.mean():.2%} | "
                     f"{worst} {kinds[worst]:.1%} |")
        previous = acc.mean()
    return "\n".join(lines) + "\n\nSeeds 1..N; mean ± standard deviation over seeds; gain in percentage points."


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds 1..N per row")
    p.add_argument("--rows", nargs="+", choices=[r[0] for r in ROWS], help="only these rows (default: all)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each with one BLAS thread when > 1)")
    p.add_argument("--uploads", type=int, default=1500, help="mixed uploads to score each run on")
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data/mnist"))
    p.add_argument("--results", type=Path, default=Path("ablation-results.json"),
                   help="JSON file the runs are saved to and resumed from")
    p.add_argument("--final-from", type=Path, metavar="VERSION_DIR",
                   help="take the last row from the multi-seed run that wrote this model version")
    p.add_argument("--from-card", action="append", default=[], metavar="ROW=VERSION_DIR",
                   help="take ROW from the multi-seed run that wrote this model version (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change a field of every row's recipe, e.g. lr=0.01 (the rows are then named for it)")
    args = p.parse_args(argv)
    rows = configs()
    if args.set:
        fields = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
        tag = ", ".join(args.set)
        rows = [(f"{name} ({tag})", f"{change} ({tag})", replace(cfg, **fields)) for name, change, cfg in rows]
        args.rows = args.rows and [f"{name} ({tag})" for name in args.rows]
    results = json.loads(args.results.read_text()) if args.results.exists() else []
    if any("=" not in item for item in args.from_card):
        p.error("--from-card takes ROW=VERSION_DIR")
    cards = dict(item.split("=", 1) for item in args.from_card)
    if args.final_from is not None:
        cards[rows[-1][0]] = args.final_from
    recipes = {name: cfg for name, _, cfg in rows}
    if set(cards) - set(recipes):
        p.error(f"no row named {', '.join(sorted(set(cards) - set(recipes)))}")
    done = {(r["row"], r["seed"]) for r in results}
    todo = [(name, cfg, seed) for name, _, cfg in reversed(rows)  # the slowest rows first
            for seed in range(1, args.seeds + 1)
            if (not args.rows or name in args.rows) and (name, seed) not in done and name not in cards]
    to_read = {name: path for name, path in cards.items() if not any(r["row"] == name for r in results)}
    print(f"{len(todo)} runs to do, {len(done)} already in {args.results}", flush=True)
    uploads = build_uploads(args.data_dir, args.uploads) if todo or to_read else None
    for name, path in to_read.items():
        results += from_card(Path(path), name, recipes[name], uploads)
        args.results.write_text(json.dumps(results, indent=1) + "\n")
    if todo:
        if args.jobs > 1:
            os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read by each worker's NumPy as it starts
        import multiprocessing

        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init, initargs=(args.data_dir, uploads)) as pool:
            futures = [pool.submit(train_row, name, cfg, seed) for name, cfg, seed in todo]
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                args.results.write_text(json.dumps(results, indent=1) + "\n")
                print(f"{result['row']:<14} seed {result['seed']}: test {result['test_accuracy']:.2%}, "
                      f"uploads {result['upload_accuracy']:.2%}, {result['seconds']:.0f} s", flush=True)
    print(table(rows, results))


if __name__ == "__main__":
    main()
