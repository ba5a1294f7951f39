"""Seconds per training epoch of the ``cnn`` preset: this NumPy library against PyTorch.

    pip install torch==2.13.0        # CPU build; a benchmark-only dependency
    python benchmarks/torch_compare.py [--epochs 2] [--segments 10] [--threads 2]
    python benchmarks/torch_compare.py --conv 32:5,64:3 --hidden 256   # models/mnist/4's network
    python benchmarks/torch_compare.py --batch 128                     # another batch size, for both

Both train the same network (the preset's layers, in the same order), with
the same batch size, optimiser (Adam), initial learning rate and data: the
55,000-image training split in memory, shuffled, without augmentation or
validation, so that only the forward pass, the backward pass and the update
are timed (NumPy's ``fit`` also counts each batch's right answers, which
costs microseconds). PyTorch uses ``--threads`` intra-op threads; NumPy's
OpenBLAS uses what OPENBLAS_NUM_THREADS allows (all cores by default).

Both run in one process. Each epoch is cut into ``--segments`` runs of
whole batches, and the two libraries take turns segment by segment, so that
a change in the machine's speed during the run (a shared VM's is large)
falls on both alike. A library's epoch is the sum of its segments; the
spread of the per-segment ratios shows how much the machine moved.
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

from neuralnet.conv import output_size  # noqa: E402
from trainer.__main__ import _conv_blocks, _widths  # noqa: E402
from trainer.data import load_mnist  # noqa: E402
from trainer.presets import preset  # noqa: E402
from trainer.train import build_network, conv_blocks, split  # noqa: E402


def numpy_segment(net, optimizer, x, y, batch, rng):
    start = time.perf_counter()
    net.fit(x, y, epochs=1, batch_size=batch, lr=optimizer.lr, optimizer=optimizer, rng=rng)
    return time.perf_counter() - start


def torch_network(cfg):
    """The preset's network in PyTorch, NCHW as PyTorch prefers."""
    import torch.nn as nn

    layers, channels, side = [], 1, 28
    for filters, kernel, stride in conv_blocks(cfg):
        layers.append(nn.Conv2d(channels, filters, kernel, stride=stride, padding=kernel // 2))
        layers += [nn.MaxPool2d(2)] if stride == 1 else []  # as trainer.train.build_network
        layers += [nn.BatchNorm2d(filters)] if cfg.batchnorm else []
        layers += [nn.ReLU()]
        channels, side = filters, output_size(side, kernel, stride, kernel // 2) if stride > 1 else side // 2
    layers.append(nn.Flatten())
    width = channels * side * side
    for hidden in cfg.hidden:
        layers += [nn.Linear(width, hidden)] + ([nn.BatchNorm1d(hidden)] if cfg.batchnorm else []) + [nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def torch_segment(model, optimizer, x, y, batch, rng):
    import torch

    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.from_numpy(rng.permutation(len(x)))
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def segments(n, batch, count, rng):
    """A shuffled epoch of ``n`` samples as ``count`` index arrays of whole batches (the last may be short)."""
    order = rng.permutation(n)
    starts = np.array_split(np.arange(0, n, batch), count)
    return [order[s[0]:s[-1] + batch] for s in starts if len(s)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cnn")
    p.add_argument("--epochs", type=int, default=2, help="epochs of each")
    p.add_argument("--segments", type=int, default=10, help="turns per epoch: the libraries alternate this often")
    p.add_argument("--conv", type=_conv_blocks, help="the preset with these blocks instead (as mnist-train --conv)")
    p.add_argument("--hidden", type=_widths,
                   help="the preset with these dense widths instead (as mnist-train --hidden)")
    p.add_argument("--batch", type=int, help="the preset with this batch size instead")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data/mnist"))
    args = p.parse_args()
    import torch

    from neuralnet import optim

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    given = {"conv": args.conv, "hidden": args.hidden, "batch_size": args.batch}
    overrides = {name: value for name, value in given.items() if value is not None}
    cfg = preset(args.preset, **overrides)
    rng = np.random.default_rng(0)
    (x, y), _, _ = split(load_mnist(args.data_dir), cfg, rng)
    net = build_network(cfg, rng)
    np_opt = optim.get("adam", net.parameters(), cfg.lr)
    model = torch_network(cfg)
    t_opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    tx = torch.from_numpy(x.reshape(-1, 1, 28, 28).copy())
    ty = torch.from_numpy(y.argmax(1))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; numpy {np.__version__}, torch {torch.__version__} "
          f"({args.threads} threads); preset {args.preset} {overrides or ''}, batch {cfg.batch_size}, "
          f"{len(x):,} images per epoch in {args.segments} turns", flush=True)
    times, turns = {"numpy": [], "torch": []}, []
    for epoch in range(1, args.epochs + 1):
        spent = {"numpy": 0.0, "torch": 0.0}
        for idx in segments(len(x), cfg.batch_size, args.segments, rng):
            tidx = torch.from_numpy(idx)
            xs, ys, txs, tys = x[idx], y[idx], tx[tidx], ty[tidx]  # gathered outside the timings
            turn = (numpy_segment(net, np_opt, xs, ys, cfg.batch_size, rng),
                    torch_segment(model, t_opt, txs, tys, cfg.batch_size, rng))
            spent["numpy"] += turn[0]
            spent["torch"] += turn[1]
            turns.append(turn[0] / turn[1])
        for library in times:
            times[library].append(spent[library])
        print(f"epoch {epoch}: numpy {times['numpy'][-1]:.1f} s, torch {times['torch'][-1]:.1f} s", flush=True)
    n, t = min(times["numpy"]), min(times["torch"])
    print(f"\nbest epoch: numpy {n:.1f} s, torch {t:.1f} s; numpy / torch = {n / t:.2f}x")
    q1, median, q3 = np.percentile(turns, [25, 50, 75])
    print(f"numpy / torch per turn: median {median:.2f}x, middle half {q1:.2f}-{q3:.2f}x, "
          f"range {min(turns):.2f}-{max(turns):.2f}x over {len(turns)} turns")


if __name__ == "__main__":
    main()
