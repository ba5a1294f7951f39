"""Milliseconds per layer of one training step of a preset's network, forward and backward.

    python benchmarks/step_profile.py [--preset cnn] [--batch 128] [--steps 30]

Builds the preset's network (as the trainer does), then runs ``--steps``
training steps on random ``[0, 1)`` images with random one-hot targets
(the timings do not depend on the values, only on the shapes), timing each
layer's ``forward(training=True)`` and ``backward`` and the optimiser's
update separately. Prints the median of each over the steps after a few
warm-up steps, and the median of the whole step. Use it to see where a step's
time goes before and after changing a layer; ``torch_compare.py`` gives the
per-epoch figure that counts.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

from neuralnet import optim  # noqa: E402
from trainer.presets import preset  # noqa: E402
from trainer.train import build_network  # noqa: E402


def profile(net, opt, x, y, steps, warmup=3):
    """``{label: [seconds per step]}`` for every layer's forward and backward, the update and the step."""
    layers = net.layers[:-1] if net.loss.fuses == getattr(net.layers[-1], "name", None) else net.layers
    times = {}

    def timed(label, f, *args):
        start = time.perf_counter()
        out = f(*args)
        times.setdefault(label, []).append(time.perf_counter() - start)
        return out

    for step in range(steps + warmup):
        if step == warmup:
            times.clear()
        start = time.perf_counter()
        a = x
        for i, layer in enumerate(net.layers):
            a = timed(f"{i:2d} {type(layer).__name__} forward", layer.forward, a, True)
        delta = net.loss.delta(a, y)
        for i in reversed(range(len(layers))):
            delta = timed(f"{i:2d} {type(layers[i]).__name__} backward", layers[i].backward, delta)
            if delta is None:
                break
        timed("update", opt.step, 1e-3)
        times.setdefault("whole step", []).append(time.perf_counter() - start)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cnn")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    net = build_network(preset(args.preset), rng)
    learning = [layer for layer in net.layers if layer.parameters()]
    learning[0].needs_input_grad = False  # as Network.fit does
    opt = optim.get("adam", net.parameters(), 1e-3)
    x = rng.random((args.batch, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.batch)]
    for label, t in sorted(profile(net, opt, x, y, args.steps).items()):
        print(f"{label:28s} {1e3 * np.median(t):7.2f} ms")


if __name__ == "__main__":
    main()
