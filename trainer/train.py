"""The training job: data in, a validated model version out.

``run(config, ...)`` trains ``runs`` seeds, logs one line per epoch to stdout,
evaluates on the test set, and writes the best run as the next model version.
"""
import datetime
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import neuralnet
from neuralnet.batchnorm import BatchNorm
from neuralnet.conv import Conv2D, MaxPool2D
from neuralnet.layers import Activation, Dense, Dropout, Flatten, Reshape
from neuralnet.model_io import PROBE_SIZE, save_version
from neuralnet.network import Network
from trainer import augment, calibrate, nondigits, report


def log(message):
    print(message, file=sys.stdout, flush=True)


def conv_blocks(cfg):
    """``cfg.conv`` as ``(filters, kernel, stride)`` triples: a block given without a stride has 1."""
    return [(block[0], block[1], block[2] if len(block) > 2 else 1) for block in cfg.conv]


def build_network(cfg, rng, side=28, d_out=10):
    """The network ``cfg`` describes: convolution blocks (if any), then the MLP
    ``hidden... - d_out``. A block is conv (same padding) -> 2x2 max pool ->
    [batch norm] -> activation. Pooling first is the cheap order: the
    normalisation and the activation then see a quarter of the pixels. (A max
    commutes with ReLU; with batch norm in between, the order gives a
    different network, which trains as well.) A block given a stride,
    ``(filters, kernel, 2)``, lets its convolution's stride shrink the image
    instead of a pool: it computes only the outputs a pool would keep one of
    four of, so it costs a quarter as much.
    """
    net, shape = Network(), (side * side,)
    if cfg.conv:
        net.add(Reshape((side, side, 1)))
        shape, channels = (side, side, 1), 1
        for filters, kernel, stride in conv_blocks(cfg):
            net.add(Conv2D(channels, filters, kernel, stride=stride, padding=kernel // 2, init=cfg.init, rng=rng))
            if stride == 1:
                net.add(MaxPool2D(2))
            if cfg.batchnorm:
                net.add(BatchNorm(filters))
            net.add(Activation(cfg.activation))
            channels = filters
        net.add(Flatten())
        for layer in net.layers:
            shape = layer.output_shape(shape)
    width = shape[0]
    for hidden in cfg.hidden:
        net.add(Dense(width, hidden, init=cfg.init, rng=rng))
        if cfg.batchnorm:
            net.add(BatchNorm(hidden))
        net.add(Activation(cfg.activation))
        if cfg.dropout:
            net.add(Dropout(cfg.dropout, rng=rng))
        width = hidden
    net.add(Dense(width, d_out, init=cfg.init, rng=rng)).add(Activation(cfg.output_activation))
    return net.use(cfg.loss)


def split(mnist, cfg, rng):
    """Scale to float32 [0, 1], one-hot the targets, hold out a validation split."""
    x = mnist.x_train.reshape(len(mnist.x_train), -1).astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[mnist.y_train]
    order = rng.permutation(len(x))
    n_val = int(round(cfg.val_split * len(x)))
    val, tr = order[:n_val], order[n_val:]
    x_test = mnist.x_test.reshape(len(mnist.x_test), -1).astype(np.float32) / 255
    return (x[tr], y[tr]), (x[val], y[val]) if n_val else None, (x_test, mnist.y_test.astype(np.intp))


def epoch_logger(log_every):
    def callback(s):
        if s["epoch"] % log_every and s["epoch"] != s["epochs"]:
            return
        rate = s["samples"] / s["elapsed"]
        eta = s["elapsed"] / s["epoch"] * (s["epochs"] - s["epoch"])
        val = f"  val {s['val_accuracy']:.2%}" if "val_accuracy" in s else ""
        log(f"epoch {s['epoch']:>3}/{s['epochs']}  loss {s['loss']:.4f}  train {s['train_accuracy']:.2%}{val}"
            f"  {rate:,.0f} samples/s  elapsed {s['elapsed']:.1f}s  eta {eta:.1f}s")
    return callback


def train_once(cfg, mnist, log_every=1):
    """Train one seed; return ``(network, history, seconds, test metrics)``.

    The metrics include the card's ``answers`` block (:mod:`trainer.calibrate`)
    when there is a validation split to fit it on.
    """
    rng = np.random.default_rng(cfg.seed)
    (x, y), val, (x_test, y_test) = split(mnist, cfg, rng)
    net = build_network(cfg, rng)
    x, y = with_outliers(x, y, cfg)
    warmup = int(cfg.warmup_epochs * -(-(cfg.epoch_size or len(x)) // cfg.batch_size))
    start = time.perf_counter()
    history = net.fit(x, y, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                      optimizer=cfg.optimizer, schedule=cfg.schedule, warmup=warmup,
                      weight_decay=cfg.weight_decay, rng=rng, augment=augment.AUGMENTERS[cfg.augment],
                      validation=val, callback=epoch_logger(log_every), epoch_size=cfg.epoch_size)
    seconds = time.perf_counter() - start
    metrics = evaluate(net, x_test, y_test)
    if val is not None:
        metrics["answers"] = calibrate.answers_block(net, (val[0], val[1].argmax(1)), (x_test, y_test), cfg.seed)
    return net, history, seconds, metrics


def with_outliers(x, y, cfg):
    """``(x, y)`` and ``cfg.outliers`` generated non-digits with the uniform target (outlier exposure,
    :mod:`trainer.nondigits`); drawn from their own generator, so the digits' split and the
    network's initialisation are the same with and without them."""
    if not cfg.outliers:
        return x, y
    start = time.perf_counter()
    xo = nondigits.generate(cfg.outliers, np.random.default_rng([cfg.seed, 1]))
    log(f"generated {cfg.outliers} non-digits in {time.perf_counter() - start:.1f}s")
    return np.concatenate([x, xo]), np.concatenate([y, np.full((len(xo), y.shape[1]), 1 / y.shape[1], y.dtype)])


def evaluate(net, x_test, y_test):
    out = net.predict_proba(x_test)
    cm = report.confusion_matrix(y_test, out.argmax(1))
    return {"test_accuracy": float(np.trace(cm) / cm.sum()),
            "test_loss": net.loss.value(out, np.eye(10, dtype=out.dtype)[y_test]),
            "per_class": report.per_class(cm), "confusion_matrix": cm.tolist()}


def code_version():
    """Package version, plus the git commit when run from a checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5, check=True).stdout.strip()
        return f"{neuralnet.__version__}+g{sha}"
    except (OSError, subprocess.SubprocessError):
        return neuralnet.__version__


def model_card(cfg, mnist, history, seconds, metrics, runs, version):
    return {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code_version": version,
        "loss": cfg.loss,
        "labels": [str(d) for d in range(10)],
        "input": {"shape": [28, 28], "layout": "row-major, flattened to 784",
                  "polarity": "white (255) ink on black (0) background, as in MNIST",
                  "scale": 1 / 255, "mean": 0.0, "std": 1.0},
        "training": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "dataset": {"name": "MNIST", "sha256": mnist.sha256},
        "metrics": {k: v for k, v in metrics.items() if k != "answers"},
        **({"answers": metrics["answers"]} if "answers" in metrics else {}),
        "training_time_seconds": round(seconds, 2),
        "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
        "runs": runs,
    }


def run(cfg, mnist, models_dir, model_name, runs=1, log_every=1):
    """Train ``runs`` seeds from ``cfg.seed`` on; save the best as a new version.

    Returns the saved version's path. Interruptions propagate before anything
    is written, so a stopped job never leaves a partial model.
    """
    results, version = [], code_version()  # the code that trains, not whatever HEAD is by the end
    for i in range(runs):
        run_cfg = cfg.__class__(**{**vars(cfg), "seed": cfg.seed + i})
        log(f"run {i + 1}/{runs}: seed {run_cfg.seed}, {describe(run_cfg)}")
        net, history, seconds, metrics = train_once(run_cfg, mnist, log_every)
        log(f"run {i + 1}/{runs}: test accuracy {metrics['test_accuracy']:.2%} in {seconds:.1f}s")
        results.append((metrics["test_accuracy"], run_cfg, net, history, seconds, metrics))
    accs = np.array([r[0] for r in results])
    if runs > 1:
        log(f"test accuracy over {runs} runs: {accs.mean():.2%} ± {accs.std():.2%} "
            f"(min {accs.min():.2%}, max {accs.max():.2%}); keeping seed {results[accs.argmax()][1].seed}")
    acc, best_cfg, net, history, seconds, metrics = results[int(accs.argmax())]
    summary = [{"seed": r[1].seed, "test_accuracy": r[0], "training_time_seconds": round(r[4], 2)}
               for r in results]
    card = model_card(best_cfg, mnist, history, seconds, metrics, summary, version)
    cm = np.array(metrics["confusion_matrix"])
    title = f"{model_name}: {describe(best_cfg)}, test accuracy {acc:.2%}"
    path = save_version(net, card, models_dir, model_name, probe=mnist.x_test[:PROBE_SIZE].reshape(-1, 784),
                        artifacts={"training.png": lambda p: report.plot(history, cm, p, title)})
    log(f"saved {path} (test accuracy {acc:.2%})")
    return path


def describe(cfg):
    """One line naming the architecture and recipe, e.g. for logs and plot titles."""
    convs = "".join(f"conv{k}x{k}-{f}" + (f"/{s}" if s > 1 else "") + " " for f, k, s in conv_blocks(cfg))
    convs += "bn " if cfg.batchnorm else ""
    widths = "-".join(str(w) for w in ((*cfg.hidden, 10) if cfg.conv else (784, *cfg.hidden, 10)))
    return f"{convs}{widths} {cfg.activation}, {cfg.loss}, {cfg.optimizer} lr {cfg.lr}, batch {cfg.batch_size}"
