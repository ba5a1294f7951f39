"""Test accuracy and training time of the presets, over several seeds.

This is the notebook's protocol (mean of five runs) applied to each preset:

    python benchmarks/train_accuracy.py --presets cnn mlp fast notebook --runs 5

Each run trains from scratch on the real MNIST (``--data-dir`` or MNIST_DIR)
and is evaluated in memory; nothing is written to ``models/``. Prints one
line per run and a summary table: mean ± std test accuracy and seconds of
training per run (the fit alone, not data loading or evaluation).
"""
import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

from trainer.download import fetch_mnist  # noqa: E402
from trainer.presets import preset  # noqa: E402
from trainer.train import train_once  # noqa: E402


def measure(name, runs, seed, mnist, log_every):
    rows = []
    for i in range(runs):
        cfg = preset(name, seed=seed + i)
        _, _, seconds, metrics = train_once(cfg, mnist, log_every)
        rows.append((cfg.seed, metrics["test_accuracy"], seconds))
        print(f"{name} seed {cfg.seed}: test accuracy {metrics['test_accuracy']:.2%}, {seconds:.1f}s", flush=True)
    return rows


def summary(name, rows):
    acc, sec = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    return {"preset": name, "runs": len(rows), "mean": acc.mean(), "std": acc.std(),
            "min": acc.min(), "max": acc.max(), "seconds_mean": sec.mean(), "seconds_max": sec.max(),
            "per_run": [{"seed": s, "test_accuracy": a, "seconds": round(t, 2)} for s, a, t in rows]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["cnn", "mlp", "fast", "notebook"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data/mnist"))
    p.add_argument("--log-every", type=int, default=10, help="epoch log lines per run (every N-th epoch)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    mnist = fetch_mnist(args.data_dir)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}", flush=True)
    results = [summary(name, measure(name, args.runs, args.seed, mnist, args.log_every)) for name in args.presets]
    print(f"\n{'preset':<10} {'runs':>4} {'mean ± std':>16} {'min':>7} {'max':>7} {'s/run':>7} {'max s':>7}")
    for r in results:
        print(f"{r['preset']:<10} {r['runs']:>4} {r['mean']:>8.2%} ± {r['std']:.2%} {r['min']:>7.2%} "
              f"{r['max']:>7.2%} {r['seconds_mean']:>7.1f} {r['seconds_max']:>7.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
