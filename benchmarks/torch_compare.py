"""Seconds per training epoch of the ``cnn`` preset: this NumPy library against PyTorch.

    pip install torch==2.13.0        # CPU build; a benchmark-only dependency
    python benchmarks/torch_compare.py [--epochs 1] [--threads 2]

Both train the same network (the preset's layers, in the same order), with
the same batch size, optimiser (Adam), initial learning rate and data: the
55,000-image training split in memory, shuffled, without augmentation or
validation, so that only the forward pass, the backward pass and the update
are timed (NumPy's ``fit`` also counts each batch's right answers, which
costs microseconds). The two alternate epoch by epoch in one process, so both see the
same machine. PyTorch uses ``--threads`` intra-op threads; NumPy's OpenBLAS
uses what OPENBLAS_NUM_THREADS allows (all cores by default).
"""
import argparse
import os
import platform
import time

import numpy as np

from neuralnet.conv import output_size
from trainer.data import load_mnist
from trainer.presets import preset
from trainer.train import build_network, conv_blocks, split


def numpy_epoch(net, optimizer, x, y, batch, rng):
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


def torch_epoch(model, optimizer, x, y, batch, rng):
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cnn")
    p.add_argument("--epochs", type=int, default=2, help="epochs of each, alternating")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data/mnist"))
    args = p.parse_args()
    import torch

    from neuralnet import optim

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = preset(args.preset)
    rng = np.random.default_rng(0)
    (x, y), _, _ = split(load_mnist(args.data_dir), cfg, rng)
    net = build_network(cfg, rng)
    np_opt = optim.get("adam", net.parameters(), cfg.lr)
    model = torch_network(cfg)
    t_opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    tx = torch.from_numpy(x.reshape(-1, 1, 28, 28).copy())
    ty = torch.from_numpy(y.argmax(1))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; numpy {np.__version__}, torch {torch.__version__} "
          f"({args.threads} threads); preset {args.preset}, batch {cfg.batch_size}, {len(x):,} images per epoch",
          flush=True)
    times = {"numpy": [], "torch": []}
    for epoch in range(1, args.epochs + 1):
        times["numpy"].append(numpy_epoch(net, np_opt, x, y, cfg.batch_size, rng))
        times["torch"].append(torch_epoch(model, t_opt, tx, ty, cfg.batch_size, rng))
        print(f"epoch {epoch}: numpy {times['numpy'][-1]:.1f} s, torch {times['torch'][-1]:.1f} s", flush=True)
    n, t = min(times["numpy"]), min(times["torch"])
    print(f"\nbest epoch: numpy {n:.1f} s, torch {t:.1f} s; numpy / torch = {n / t:.2f}x")


if __name__ == "__main__":
    main()
