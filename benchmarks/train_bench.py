"""Training throughput of the MLP: the vectorised library against the notebook's loop, BLAS and PyTorch.

    MNIST_DIR=../shared/data/mnist python benchmarks/train_bench.py [--json out.json]

In one run (about 2 minutes on 2 quiet cores):

1. this machine's float32 matrix-product rate (GFLOP/s): a 2048^3 product, and
   the products of one training step of the mlp preset's network at its own shapes;
2. the notebook's network (784-100-50-10 tanh, MSE, SGD lr 0.1) trained for one
   epoch on the same samples by the notebook's per-sample loop
   (``notebook_reference.py``) and by ``Network.fit`` at batch 1, 64, 128, 256:
   samples/s, speed-up (bar: >= 50x at batch >= 64) and test accuracy;
3. the mlp preset (784-800-800-10 ReLU, softmax CE, Adam, cosine, batch 128,
   shifts) on the real MNIST: seconds per epoch, the time its matrix products
   alone need at the measured rates (bar: >= 70% of the epoch), an epoch
   split into augmentation, forward, backward, optimiser step and the rest;
4. the same network and recipe in PyTorch (CPU), when ``torch`` is installed
   (bar: NumPy no slower);
5. peak memory (max RSS) of an mlp training run, in a child process
   (target < 1 GiB).

The machine is shared and noisy, so NumPy and PyTorch epochs alternate (both
meet the same moods of the machine), each library's fastest epoch is compared,
and the mean is printed next to it. Run it on a quiet machine for the README.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from notebook_reference import notebook_network  # noqa: E402

from neuralnet import optim  # noqa: E402
from neuralnet.layers import Activation, Dense  # noqa: E402
from neuralnet.network import Network  # noqa: E402
from trainer import augment  # noqa: E402
from trainer.data import DataError, load_mnist  # noqa: E402
from trainer.presets import preset  # noqa: E402
from trainer.train import build_network, split  # noqa: E402

DEFAULT = preset("mlp")  # the CNN's own comparison with PyTorch is torch_compare.py
WIDTHS = (784, *DEFAULT.hidden, 10)
NOTEBOOK_WIDTHS = (784, 100, 50, 10)
BARS = {"speedup": 50.0, "product_share": 0.70, "torch_ratio": 1.0, "rss_mib": 1024.0}


# -- 1. the machine and its BLAS ------------------------------------------------
def blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see the library and its threads)"
    return ", ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture', '')} "
                     f"({i['num_threads']} threads)" for i in threadpool_info() if i["user_api"] == "blas")


def best_time(f, repeat):
    """Fastest seconds of ``repeat`` calls of ``f`` after one warm-up call."""
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def step_products(batch, widths, rng):
    """The products of one training step with the library's layouts: ``{"forward"|"backward": [(a, b)]}``.

    Forward ``x @ W``; backward ``x.T @ delta`` (dW) and ``delta @ W.T`` for
    every layer but the first, whose input gradient the library skips.
    """
    acts = [rng.random((batch, n), dtype=np.float32) for n in widths]  # deltas share these shapes
    Ws = [rng.random((m, n), dtype=np.float32) for m, n in zip(widths, widths[1:])]
    forward = [(a, W) for a, W in zip(acts, Ws)]
    backward = [(acts[i].T, acts[i + 1]) for i in range(len(Ws))]
    backward += [(acts[i + 1], Ws[i].T) for i in range(1, len(Ws))]
    return {"forward": forward, "backward": backward}


def flops(pairs):
    return sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs)


def matmul_rates(batch, repeat=20):
    """GFLOP/s of a 2048^3 product (``peak``) and of the default network's step products at ``batch``."""
    rng = np.random.default_rng(0)
    a = rng.random((2048, 2048), dtype=np.float32)
    rates = {"peak": 2 * 2048**3 / best_time(lambda: a @ a, 5) / 1e9}
    products = step_products(batch, WIDTHS, rng)
    products["step"] = products["forward"] + products["backward"]
    for name, pairs in products.items():
        seconds = best_time(lambda pairs=pairs: [a @ b for a, b in pairs], repeat)
        rates[name] = flops(pairs) / seconds / 1e9
    return rates


# -- 2. the notebook's loop against Network.fit ---------------------------------
def timed_fit(net, fit):
    """``(seconds, net)`` of ``fit(net)``: only training is timed, not building the network."""
    start = time.perf_counter()
    fit(net)
    return time.perf_counter() - start, net


def notebook_run(x, y):
    net = notebook_network(NOTEBOOK_WIDTHS, np.random.default_rng(0))
    return timed_fit(net, lambda n: n.fit(x, y, epochs=1, learning_rate=0.1))


def library_run(x, y, batch_size):
    rng = np.random.default_rng(0)
    net = Network()
    for m, n in zip(NOTEBOOK_WIDTHS, NOTEBOOK_WIDTHS[1:]):
        net.add(Dense(m, n, init="uniform", rng=rng)).add(Activation("tanh"))
    return timed_fit(net.use("mse"), lambda n: n.fit(x, y, epochs=1, batch_size=batch_size, lr=0.1,
                                                      optimizer="sgd", rng=rng))


def fastest(run, repeat):
    """Fastest seconds of ``repeat`` calls of ``run() -> (seconds, net)`` after a warm-up call; and a net."""
    runs = [run() for _ in range(repeat + 1)][1:]
    return min(seconds for seconds, _ in runs), runs[-1][1]


def notebook_vs_library(x, y, x_test, y_test, batches, repeat):
    """Rows ``{name, batch, samples_per_s, speedup, accuracy}``; the notebook runs in float64 as it did."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    seconds, net = fastest(lambda: notebook_run(x64, y64), repeat)
    accuracy = float((net.predict(x_test.astype(np.float64)).argmax(-1).ravel() == y_test).mean())
    rows = [{"name": "notebook loop (per sample)", "batch": 1, "samples_per_s": len(x) / seconds,
             "speedup": 1.0, "accuracy": accuracy}]
    for b in batches:
        seconds, net = fastest(lambda b=b: library_run(x, y, b), repeat)
        rows.append({"name": f"Network.fit, batch {b}", "batch": b, "samples_per_s": len(x) / seconds,
                     "speedup": len(x) / seconds / rows[0]["samples_per_s"], "accuracy": net.accuracy(x_test, y_test)})
    return rows


# -- 3. the default recipe: epoch time, product share, breakdown -----------------
def numpy_trainer(x, y, seed):
    """The default recipe on ``x: (n, 784)``; returns ``(epoch() -> seconds, net, optimizer)``.

    Each ``epoch()`` is one ``Network.fit`` epoch with the same optimiser
    (no validation pass, which the PyTorch loop has none of either).
    """
    rng = np.random.default_rng(seed)
    net = build_network(DEFAULT, rng)
    opt = optim.get(DEFAULT.optimizer, net.parameters(), DEFAULT.lr, DEFAULT.weight_decay)

    def epoch():
        start = time.perf_counter()
        net.fit(x, y, epochs=1, batch_size=DEFAULT.batch_size, lr=DEFAULT.lr, optimizer=opt,
                schedule=DEFAULT.schedule, rng=rng, augment=augment.AUGMENTERS[DEFAULT.augment])
        return time.perf_counter() - start
    return epoch, net, opt


def breakdown(net, opt, x, y, steps, seed):
    """Seconds per step in each part of ``Network.train_step``, over ``steps`` real batches.

    Run on the trained network and optimiser, so that the optimiser state (and
    any subnormal floats in it) is what a training run meets.
    """
    rng, b = np.random.default_rng(seed), DEFAULT.batch_size
    order = rng.permutation(len(x))[:steps * b]
    parts = dict.fromkeys(("augmentation", "forward", "backward", "optimizer step"), 0.0)

    def timed(part, f, *args):
        start = time.perf_counter()
        result = f(*args)
        parts[part] += time.perf_counter() - start
        return result

    start = time.perf_counter()
    for i in range(0, len(order), b):
        xb, yb = x[order[i:i + b]], y[order[i:i + b]]
        xb = timed("augmentation", augment.AUGMENTERS[DEFAULT.augment], xb, rng)
        out = timed("forward", net.forward, xb, True)
        timed("backward", net.backward, out, yb)
        timed("optimizer step", opt.step, DEFAULT.lr)
        net.loss.value(out, yb), int((out.argmax(1) == yb.argmax(1)).sum())  # as train_step does
    parts["other (indexing, loss, accuracy)"] = time.perf_counter() - start - sum(parts.values())
    n_steps = -(-len(order) // b)
    return {part: seconds / n_steps for part, seconds in parts.items()}


def epoch_products(n_train, rates):
    """Matrix-product FLOPs of one epoch over ``n_train`` samples, and the seconds they need at each rate."""
    per_sample = {k: flops(v) / DEFAULT.batch_size
                  for k, v in step_products(DEFAULT.batch_size, WIDTHS, np.random.default_rng(0)).items()}
    total = n_train * (per_sample["forward"] + per_sample["backward"])
    return {"gflop": total / 1e9, "per_sample": per_sample,
            "seconds_at_peak": total / rates["peak"] / 1e9, "seconds_at_shapes": total / rates["step"] / 1e9}


# -- 4. PyTorch ------------------------------------------------------------------
def torch_mlp(torch):
    """784-800-800-10 ReLU with He-normal weights and zero biases, as ``init="he"`` draws them."""
    layers = []
    for m, n in zip(WIDTHS, WIDTHS[1:]):
        linear = torch.nn.Linear(m, n)
        torch.nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")  # std sqrt(2 / fan_in)
        torch.nn.init.zeros_(linear.bias)
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])  # softmax lives in cross_entropy


def torch_trainer(torch, x, y, epochs, seed):
    """The default recipe in PyTorch: Adam, per-step cosine, batch 128, the same shifts; ``epoch() -> seconds``."""
    torch.manual_seed(seed)
    rng, b = np.random.default_rng(seed), DEFAULT.batch_size
    model = torch_mlp(torch)
    opt = torch.optim.Adam(model.parameters(), lr=DEFAULT.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-len(x) // b))
    labels = torch.from_numpy(y.argmax(1))

    def epoch():
        start, order = time.perf_counter(), rng.permutation(len(x))
        for i in range(0, len(x), b):
            idx = order[i:i + b]
            logits = model(torch.from_numpy(augment.AUGMENTERS[DEFAULT.augment](x[idx], rng)))
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss.item(), int((logits.argmax(1) == labels[idx]).sum())  # the library computes both too
        return time.perf_counter() - start
    return epoch


def pytorch(x, y, epochs, seed):
    """``({version, threads}, epoch() -> seconds)``, or ``(None, None)`` when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(os.cpu_count() or 1)  # NumPy's BLAS uses every core too
    info = {"version": torch.__version__, "threads": torch.get_num_threads()}
    return info, torch_trainer(torch, x, y, epochs, seed)


def alternate(epochs, numpy_epoch, torch_epoch):
    """Epoch seconds of each library, alternating so that both meet the same moods of a shared machine."""
    times = {"numpy": [], "torch": []}
    for _ in range(epochs):
        times["numpy"].append(numpy_epoch())
        if torch_epoch is not None:
            times["torch"].append(torch_epoch())
    return times


# -- 5. peak memory ----------------------------------------------------------------
def peak_rss_mib(data_dir, epochs):
    """Max RSS of a child process that loads MNIST and runs the default training job for ``epochs``."""
    code = ("import resource; from trainer.data import load_mnist; from trainer.presets import preset; "
            "from trainer.train import train_once; "
            f"train_once(preset('mlp', epochs={epochs}), load_mnist({str(data_dir)!r})); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    child = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"training child failed: {child.stderr.strip().splitlines()[-1:]}")
    return int(child.stdout.split()[-1]) / 1024  # Linux reports KiB


# -- reporting -----------------------------------------------------------------------
def section(title):
    print(f"\n{title}", flush=True)


def print_notebook(rows, n, n_test):
    section(f"notebook network 784-100-50-10 tanh, MSE, SGD lr 0.1: 1 epoch of {n:,} MNIST samples, "
            f"accuracy on {n_test:,} test images")
    for r in rows:
        print(f"  {r['name']:<28}{r['samples_per_s']:>11,.0f} samples/s {r['speedup']:>8.1f}x"
              f"   accuracy {r['accuracy']:.1%}")


def print_default(epoch, products, steps, rates):
    fastest = min(epoch["seconds"])
    section(f"default network 784-800-800-10 ReLU, Adam, batch {DEFAULT.batch_size}, shifts; "
            f"{epoch['n_train']:,} samples per epoch")
    print(f"  epoch: {fastest:.2f} s fastest of {len(epoch['seconds'])} "
          f"(mean {np.mean(epoch['seconds']):.2f} s), {epoch['n_train'] / fastest:,.0f} samples/s")
    print(f"  matrix products: {products['gflop']:.0f} GFLOP per epoch; alone they need "
          f"{products['seconds_at_shapes']:.2f} s at the shapes' {rates['step']:.0f} GFLOP/s "
          f"({products['seconds_at_shapes'] / fastest:.0%} of the epoch), "
          f"{products['seconds_at_peak']:.2f} s at the 2048^3 rate ({products['seconds_at_peak'] / fastest:.0%})")
    n_steps = -(-epoch["n_train"] // DEFAULT.batch_size)
    need = {part: products["per_sample"][part] * DEFAULT.batch_size / rates[part] / 1e9
            for part in ("forward", "backward")}
    print(f"  one epoch split by part, timed over {epoch['breakdown_steps']} steps "
          f"(x {n_steps} steps per epoch; products need at the shapes' rate):")
    for part, seconds in steps.items():
        extra = f"   products {need[part] * n_steps:5.2f} s" if part in need else ""
        print(f"    {part:<34}{seconds * 1e3:7.2f} ms/step {seconds * n_steps:6.2f} s/epoch{extra}")
    print(f"    {'sum':<34}{sum(steps.values()) * 1e3:7.2f} ms/step {sum(steps.values()) * n_steps:6.2f} s/epoch")


def print_torch(result, numpy_seconds):
    section("PyTorch, same network and recipe, epochs alternating with NumPy's")
    if result is None:
        print("  PyTorch is not installed; skipped (pip install torch==2.13.0, the CPU wheel, to compare)")
        return
    fastest = min(result["epoch_seconds"])
    print(f"  torch {result['version']}, {result['threads']} threads: {fastest:.2f} s/epoch fastest of "
          f"{len(result['epoch_seconds'])} (mean {np.mean(result['epoch_seconds']):.2f} s); "
          f"NumPy {numpy_seconds:.2f} s "
          f"-> NumPy takes {numpy_seconds / fastest:.2f}x PyTorch's time")


def summary_rows(r):
    """``(measure, value, bar, met)`` for the summary table; ``met`` is None where there is no bar."""
    fastest = min(r["default_epoch"]["seconds"])
    products = r["default_epoch"]["products"]
    rows = [("float32 matmul, 2048^3", f"{r['matmul']['peak']:.0f} GFLOP/s", "", None),
            ("float32 matmul, default step shapes", f"{r['matmul']['step']:.0f} GFLOP/s", "", None)]
    rows += [(f"speed-up vs notebook loop, batch {row['batch']}", f"{row['speedup']:.1f}x",
              f">= {BARS['speedup']:.0f}x" if row["batch"] >= 64 else "",
              row["speedup"] >= BARS["speedup"] if row["batch"] >= 64 else None)
             for row in r["notebook_comparison"][1:]]
    rows.append(("default epoch (fastest)", f"{fastest:.2f} s", "", None))
    for rate, key in (("shapes' rate", "seconds_at_shapes"), ("2048^3 rate", "seconds_at_peak")):
        share = products[key] / fastest
        rows.append((f"products / epoch, {rate}", f"{share:.0%}", f">= {BARS['product_share']:.0%}",
                     share >= BARS["product_share"]))
    if r["pytorch"] is None:
        rows.append(("NumPy / PyTorch epoch time", "not run", "<= 1.00", None))
    else:
        ratio = fastest / min(r["pytorch"]["epoch_seconds"])
        rows.append(("NumPy / PyTorch epoch time", f"{ratio:.3f}", "<= 1.00", ratio <= BARS["torch_ratio"]))
    if r["peak_rss_mib"] is not None:
        rows.append(("peak RSS, default training run", f"{r['peak_rss_mib']:.0f} MiB", "< 1024 MiB",
                     r["peak_rss_mib"] < BARS["rss_mib"]))
    return rows


def print_summary(results):
    section(f"summary (load average {results['machine']['load_before'][0]:.2f} before, "
            f"{results['machine']['load_after'][0]:.2f} after)")
    print(f"  {'measure':<40}{'value':>20}  {'bar':<12}met")
    for measure, value, bar, met in summary_rows(results):
        print(f"  {measure:<40}{value:>20}  {bar:<12}{'' if met is None else ('yes' if met else 'NO')}")


# -- the run ---------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data/mnist"),
                   help="directory with the four MNIST IDX files (env MNIST_DIR; default %(default)s)")
    p.add_argument("--samples", type=int, default=10000, help="training samples for the notebook comparison")
    p.add_argument("--test-samples", type=int, default=2000, help="test images scored after that epoch")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 128, 256],
                   help="batch sizes of Network.fit in the notebook comparison")
    p.add_argument("--repeat", type=int, default=3, help="timed repeats per notebook-comparison run (best kept)")
    p.add_argument("--epochs", type=int, default=5,
                   help="epochs of the default network to time, per library, NumPy and PyTorch alternating")
    p.add_argument("--breakdown-steps", type=int, default=300, help="training steps timed part by part")
    p.add_argument("--memory-epochs", type=int, default=1, help="epochs of the peak-memory child run")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child run")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    return p.parse_args(argv)


THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def machine():
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas_description(), "load_before": os.getloadavg(),
            "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ}}


def run(args, mnist):
    results = {"machine": machine()}
    m = results["machine"]
    print(f"machine: {m['machine']}, {m['cpus']} CPUs, Python {m['python']}, NumPy {m['numpy']}; "
          f"load average {m['load_before'][0]:.2f} {m['load_before'][1]:.2f} {m['load_before'][2]:.2f}")
    print(f"BLAS: {m['blas']}" + "".join(f"; {k}={v}" for k, v in m["thread_env"].items()))

    rates = results["matmul"] = matmul_rates(DEFAULT.batch_size)
    section(f"float32 matmul: {rates['peak']:.0f} GFLOP/s at 2048^3; at the default network's batch-"
            f"{DEFAULT.batch_size} shapes {rates['forward']:.0f} forward, {rates['backward']:.0f} backward, "
            f"{rates['step']:.0f} GFLOP/s for a whole step")

    x = mnist.x_train[:args.samples].reshape(-1, 784).astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[mnist.y_train[:args.samples]]
    x_test = mnist.x_test[:args.test_samples].reshape(-1, 784).astype(np.float32) / 255
    rows = notebook_vs_library(x, y, x_test, mnist.y_test[:args.test_samples], args.batches, args.repeat)
    results["notebook_comparison"] = rows
    print_notebook(rows, len(x), len(x_test))

    (x, y), _, _ = split(mnist, DEFAULT, np.random.default_rng(args.seed))
    numpy_epoch, net, opt = numpy_trainer(x, y, args.seed)
    torch_info, torch_epoch = (None, None) if args.no_torch else pytorch(x, y, args.epochs, args.seed)
    times = alternate(args.epochs, numpy_epoch, torch_epoch)
    steps = breakdown(net, opt, x, y, args.breakdown_steps, args.seed)
    epoch = results["default_epoch"] = {"n_train": len(x), "seconds": times["numpy"],
                                        "breakdown_steps": args.breakdown_steps,
                                        "products": epoch_products(len(x), rates), "step_seconds": steps}
    print_default(epoch, epoch["products"], steps, rates)

    results["pytorch"] = torch_info and {**torch_info, "epoch_seconds": times["torch"]}
    if not args.no_torch:
        print_torch(results["pytorch"], min(times["numpy"]))

    results["peak_rss_mib"] = None
    if not args.no_memory:
        results["peak_rss_mib"] = peak_rss_mib(Path(args.data_dir).resolve(), args.memory_epochs)
        section(f"peak memory of a default training run ({args.memory_epochs} epoch(s), child process): "
                f"{results['peak_rss_mib']:.0f} MiB max RSS")
    m["load_after"] = os.getloadavg()
    return results


def main(argv=None):
    args = parse_args(argv)
    try:
        mnist = load_mnist(args.data_dir)
    except DataError as exc:
        sys.exit(f"train_bench: cannot read MNIST: {exc}\n"
                 "Point --data-dir or MNIST_DIR at the four IDX files (python -m trainer downloads them).")
    results = run(args, mnist)
    print_summary(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
