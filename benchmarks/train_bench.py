"""Training throughput: the vectorised library against the notebook's loop, BLAS, PyTorch.

    python benchmarks/train_bench.py            # about 3 minutes on 2 cores

1. this machine's float32 matrix-product rate (GFLOP/s), big and at the
   default network's own shapes;
2. the notebook's network (784-100-50-10 tanh, MSE, SGD 0.1) trained on the
   same samples by the notebook's per-sample loop and by ``Network.fit`` at
   batch sizes 1, 64, 128 and 256: samples/s and the speed-up;
3. the default network (784-800-800-10 ReLU, Adam, batch 128, shifts) on the
   real MNIST: seconds per epoch, the share of it its matrix products need,
   and where the rest goes;
4. the same network and recipe in PyTorch (CPU), when ``torch`` is installed;
5. peak memory (max RSS) of a default training run, in a child process.
"""
import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from notebook_reference import NotebookNetwork  # noqa: E402
from trainer import augment, optim  # noqa: E402
from trainer.data import load_mnist  # noqa: E402
from trainer.presets import preset  # noqa: E402
from trainer.train import build_network, split  # noqa: E402

DEFAULT = preset("default")
WIDTHS = (784, *DEFAULT.hidden, 10)


def best_time(f, repeat=5):
    f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_rates(batch):
    """GFLOP/s of a 2048^3 product, and of one training step's products at ``batch``."""
    rng = np.random.default_rng(0)
    a = rng.random((2048, 2048), dtype=np.float32)
    peak = 2 * 2048**3 / best_time(lambda: a @ a)
    x = rng.random((batch, 784), dtype=np.float32)
    Ws = [rng.random((m, n), dtype=np.float32) for m, n in zip(WIDTHS, WIDTHS[1:])]
    acts = [x] + [rng.random((batch, n), dtype=np.float32) for n in WIDTHS[1:]]

    def step():
        for a_in, W in zip(acts, Ws):
            a_in @ W                      # forward
        for i in reversed(range(len(Ws))):
            acts[i].T @ acts[i + 1]       # dW
            if i:
                acts[i + 1] @ Ws[i].T     # delta for the layer below (none for the input)
    return peak / 1e9, step_flops(batch) / best_time(step, 20) / 1e9


def step_flops(batch):
    pairs = list(zip(WIDTHS, WIDTHS[1:]))
    forward = sum(2 * batch * m * n for m, n in pairs)
    return forward * 2 + sum(2 * batch * m * n for m, n in pairs[1:])  # + dW, + deltas but the input's


def notebook_vs_vectorised(x, y, batches, repeat=3):
    """samples/s of each way of training the notebook's network on ``x``; best of ``repeat``."""
    from trainer import Activation, Dense, Network

    def vectorised(b):
        rng = np.random.default_rng(0)
        net = Network()
        for m, n in zip((784, 100, 50), (100, 50, 10)):
            net.add(Dense(m, n, init="uniform", rng=rng)).add(Activation("tanh"))
        net.use("mse").fit(x, y, epochs=1, batch_size=b, lr=0.1, optimizer="sgd", rng=rng)

    x64 = x.astype(np.float64)
    base = len(x) / best_time(lambda: NotebookNetwork((784, 100, 50, 10), np.random.default_rng(0)).fit(
        x64, y, 1, 0.1), repeat)
    rows = [("notebook loop (per sample)", base, 1.0)]
    for b in batches:
        rate = len(x) / best_time(lambda: vectorised(b), repeat)
        rows.append((f"Network.fit, batch {b}", rate, rate / base))
    return rows


def default_epoch(mnist, epochs):
    """Seconds of the fastest of ``epochs`` epochs (a shared machine is noisy), and the split sizes."""
    cfg = preset("default", epochs=epochs)
    rng = np.random.default_rng(1)
    (x, y), val, _ = split(mnist, cfg, rng)
    net = build_network(cfg, rng)
    ends = [0.0]
    net.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adam", schedule="cosine",
            rng=rng, augment=augment.shift, validation=val, callback=lambda s: ends.append(s["elapsed"]))
    return min(np.diff(ends)), len(x), len(val[0])


def breakdown(steps=200):
    """Milliseconds per training step spent in each part, batch 128."""
    cfg = DEFAULT
    rng = np.random.default_rng(0)
    net = build_network(cfg, rng)
    net.dense_layers()[0].needs_input_grad = False
    opt = optim.get("adam", net.parameters(), cfg.lr)
    x = (rng.random((cfg.batch_size, 784), dtype=np.float32) > 0.8).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, cfg.batch_size)]
    out = net.forward(x, training=True)
    parts = {"augmentation": lambda: augment.shift(x, rng), "forward": lambda: net.forward(x, training=True),
             "backward": lambda: net.backward(out, y), "optimizer step": lambda: opt.step(cfg.lr)}
    return {name: best_time(lambda f=f: [f() for _ in range(steps)], 3) / steps * 1e3 for name, f in parts.items()}


def torch_epoch(mnist, epochs):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(1)
    cfg = DEFAULT
    rng = np.random.default_rng(1)
    (x, y), _, _ = split(mnist, cfg, rng)
    layers = []
    for m, n in zip(WIDTHS, WIDTHS[1:]):
        layers += [torch.nn.Linear(m, n), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = epochs * -(-len(x) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    labels = torch.from_numpy(y.argmax(1))
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        order = rng.permutation(len(x))
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb = torch.from_numpy(augment.shift(x[idx], rng))
            loss = torch.nn.functional.cross_entropy(model(xb), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        times.append(time.perf_counter() - t)
    return min(times), torch.__version__


def peak_memory_mib(data_dir):
    code = ("import resource, sys; from trainer.data import load_mnist; from trainer.presets import preset; "
            "from trainer.train import train_once; "
            f"train_once(preset('default', epochs=1), load_mnist({data_dir!r}, download=False), log_every=99); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data/mnist"))
    p.add_argument("--samples", type=int, default=3000, help="samples for the notebook comparison")
    p.add_argument("--epochs", type=int, default=2, help="epochs of the default network to time")
    args = p.parse_args()
    mnist = load_mnist(args.data_dir, download=False)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    try:
        from threadpoolctl import threadpool_info
        print("BLAS:", ", ".join(f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
                                 for i in threadpool_info()))
    except ImportError:
        pass

    peak, at_shapes = matmul_rates(DEFAULT.batch_size)
    print(f"\nfloat32 matmul: {peak:.0f} GFLOP/s (2048^3); {at_shapes:.0f} GFLOP/s at the default network's "
          f"batch-{DEFAULT.batch_size} shapes")

    x = mnist.x_train[:args.samples].reshape(args.samples, -1).astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[mnist.y_train[:args.samples]]
    print(f"\nnotebook network 784-100-50-10 tanh/MSE/SGD, {args.samples} samples, 1 epoch:")
    for name, rate, ratio in notebook_vs_vectorised(x, y, (1, 64, 128, 256)):
        print(f"  {name:<28}{rate:>12,.0f} samples/s {ratio:>8.1f}x")

    seconds, n_train, n_val = default_epoch(mnist, args.epochs)
    flops = step_flops(1) * n_train + 2 * n_val * sum(m * n for m, n in zip(WIDTHS, WIDTHS[1:]))
    print(f"\ndefault network 784-800-800-10, batch {DEFAULT.batch_size}, fastest of {args.epochs} epochs: "
          f"{seconds:.2f} s/epoch "
          f"({n_train / seconds:,.0f} samples/s), {flops / 1e9:.0f} GFLOP of matrix products per epoch")
    print(f"  products alone at the shapes' rate: {flops / at_shapes / 1e9:.2f} s -> "
          f"{flops / at_shapes / 1e9 / seconds:.0%} of the epoch")
    print(f"  products alone at the 2048^3 rate:  {flops / peak / 1e9:.2f} s -> {flops / peak / 1e9 / seconds:.0%}")
    print("  per step (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in breakdown().items()))

    torch_result = torch_epoch(mnist, args.epochs)
    if torch_result is None:
        print("\nPyTorch: not installed (pip install torch==2.13.0 for the comparison); skipped")
    else:
        t_epoch, version = torch_result
        print(f"\nPyTorch {version}: {t_epoch:.2f} s/epoch vs NumPy {seconds:.2f} s/epoch "
              f"(NumPy takes {seconds / t_epoch:.2f}x PyTorch's time)")

    print(f"\npeak memory of a default training run (1 epoch, child process): "
          f"{peak_memory_mib(args.data_dir):.0f} MiB")


if __name__ == "__main__":
    main()
