"""What one image costs each network's forward pass the way a server meets it: caches cold.

    python benchmarks/forward_cost.py --versions models/mnist/1 models/mnist/4 --conv 32:5:2,48:3 --hidden 128
    python benchmarks/forward_cost.py --conv 32:5,64:3 32:5,32:3 --hidden 256 128   # pairs, in order

Picks an architecture for serving before training it: the weights of
``--conv``/``--hidden`` networks (the ``cnn`` preset with those two fields,
paired in order) are random, which does not change what a forward pass costs;
``--versions`` times trained models. Each call sees one 28x28 image, on one
BLAS thread as in a worker, after 6 MB of other memory has been written, so
that like a request (HTTP, decoding, JSON, the other worker) it finds the
weights out of the core's caches. Networks alternate in rounds, so a VM
whose speed drifts treats them alike; the table gives each network's median,
and its ratio to the first one.

The served rate follows from it: a 28x28 PNG request is roughly the rest of
the request, the same for every model, plus this forward pass
(docs/benchmarks.md#cnn-against-mlp).
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads: a worker's setting

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neuralnet.model_io import load_version  # noqa: E402
from trainer.__main__ import _conv_blocks, _show, _widths  # noqa: E402
from trainer.presets import preset  # noqa: E402
from trainer.train import build_network  # noqa: E402

EVICT_BYTES = 6_000_000


def networks(args):
    """``[(label, network)]`` in the order given."""
    nets = [(str(path), load_version(path)[0]) for path in args.versions]
    if len(args.hidden) not in (1, len(args.conv)):
        sys.exit("--hidden takes one value or one per --conv")
    hidden = args.hidden * len(args.conv) if len(args.hidden) == 1 else args.hidden
    for conv, width in zip(args.conv, hidden):
        cfg = preset("cnn", conv=conv, hidden=_widths(width))
        label = f"conv {_show(cfg.conv)}, dense {_show(cfg.hidden)}"
        nets.append((label, build_network(cfg, np.random.default_rng(0))))
    return nets


def weights_mb(net):
    return sum(p.nbytes for layer in net.layers for p, _ in layer.parameters()) / 1e6


def time_rounds(nets, rounds, calls):
    """Median seconds per single-image forward pass, per network, caches evicted before each call."""
    x = np.random.default_rng(0).random((1, 784), dtype=np.float32)
    other = np.ones(EVICT_BYTES // 4, np.float32)
    times = [[] for _ in nets]
    for _ in range(rounds):
        for i, (_, net) in enumerate(nets):
            for _ in range(calls):
                other += 1
                start = time.perf_counter()
                net.predict_proba(x)
                times[i].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--versions", nargs="*", type=Path, default=[], metavar="VERSION_DIR",
                   help="trained model versions, e.g. models/mnist/4")
    p.add_argument("--conv", nargs="*", type=_conv_blocks, default=[], metavar="BLOCKS",
                   help="untrained cnn-preset networks with these blocks, e.g. 32:5,64:3 (as mnist-train --conv)")
    p.add_argument("--hidden", nargs="*", default=["256"], metavar="WIDTHS",
                   help="their dense layers: one value for all, or one per --conv (default 256)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--calls", type=int, default=50, help="calls per network per round")
    args = p.parse_args(argv)
    nets = networks(args)
    if not nets:
        p.error("give --versions and/or --conv")
    medians = time_rounds(nets, args.rounds, args.calls)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, "
          f"{args.rounds} rounds x {args.calls} calls, one BLAS thread, {EVICT_BYTES / 1e6:.0f} MB written "
          f"between calls\n")
    print("| network | weights MB | one image, us (median) | against the first |")
    print("| --- | --: | --: | --: |")
    for (label, net), m in zip(nets, medians):
        print(f"| {label} | {weights_mb(net):.1f} | {m * 1e6:.0f} | {m / medians[0]:.0%} |")


if __name__ == "__main__":
    main()
