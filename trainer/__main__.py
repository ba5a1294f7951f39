"""``mnist-train`` / ``python -m trainer``: train a model and write it as a new version."""
import argparse
import os
import signal
import sys

from neuralnet import activations, init, losses, optim
from trainer import augment, preflight
from trainer.data import DataError, load_mnist
from trainer.download import fetch_mnist
from trainer.presets import DEFAULT, NAMES, PRESETS, preset
from trainer.train import log, run


def error(message):
    print(f"mnist-train: error: {message}", file=sys.stderr, flush=True)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show real defaults, keep the presets table's layout, and hide "default: None"
    (an unset option means "whatever the preset says")."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parser():
    p = argparse.ArgumentParser(
        prog="mnist-train", formatter_class=_Formatter, epilog=_presets_table(),
        description="Train a NumPy network on MNIST and write it to MODELS_DIR/<name>/<N>/ "
                    "(model.npz + model.json + training.png). Options left unset come from --preset.")
    p.add_argument("--preset", choices=sorted(NAMES), default="default",
                   help=f"recipe to start from: 'default' (= '{DEFAULT}'), 'cnn' (the convolutional network "
                        "the service ships, ~7 min), 'mlp' (784-800-800-10, ~3 min), 'fast' (~15 s), "
                        "'notebook' (the original 784-100-50-10 tanh/MSE per-sample SGD)")
    p.add_argument("--conv", type=_conv_blocks,
                   help="convolution blocks as FILTERS:KERNEL[:STRIDE], comma-separated, e.g. 32:5,64:3; each "
                        "halves the image by a 2x2 max pool, or with a STRIDE of 2 by its own stride (32:5:2); "
                        "'none' for an MLP")
    p.add_argument("--batchnorm", action=argparse.BooleanOptionalAction,
                   help="batch normalisation after each convolution block and hidden layer")
    p.add_argument("--epochs", type=int, help="passes over the training split")
    p.add_argument("--batch-size", type=int, help="samples per gradient step")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--hidden", type=_widths,
                   help="hidden layer widths, comma-separated, e.g. 800,800")
    p.add_argument("--activation", choices=sorted(set(activations.ACTIVATIONS) - {"softmax"}),
                   help="hidden-layer activation")
    p.add_argument("--loss", choices=sorted(losses.LOSSES), help="training loss")
    p.add_argument("--optimizer", choices=sorted(optim.OPTIMISERS), help="update rule")
    p.add_argument("--schedule", choices=sorted(optim.SCHEDULES), help="learning-rate schedule")
    p.add_argument("--init", choices=sorted(init.INITIALISERS), help="weight initialisation")
    p.add_argument("--weight-decay", type=float, help="L2 (decoupled for Adam) weight decay")
    p.add_argument("--dropout", type=float, help="dropout rate after each hidden layer (0 = off)")
    p.add_argument("--augment", choices=sorted(augment.AUGMENTERS),
                   help="training-time augmentation: random shifts, or rotation+scale+shift")
    p.add_argument("--outliers", type=int,
                   help="generated non-digits to train on, so the model learns to say \"not a digit\" (0 = none)")
    p.add_argument("--val-split", type=float, help="fraction of training data held out for validation")
    p.add_argument("--seed", type=int, help="seed of the first run (runs use seed, seed+1, ...)")
    p.add_argument("--runs", type=int, default=1,
                   help="train this many seeds, report mean ± std test accuracy, keep the best")
    p.add_argument("--log-every", type=int, default=1, help="log every N-th epoch")
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "data/mnist"),
                   help="directory with the four MNIST IDX files (downloaded when missing; env MNIST_DIR)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")
    p.add_argument("--models-dir", default=os.environ.get("MODELS_DIR", "models"),
                   help="model store root (env MODELS_DIR)")
    p.add_argument("--model-name", default=os.environ.get("MODEL_NAME", "mnist"),
                   help="model name: versions go to MODELS_DIR/NAME/N (env MODEL_NAME)")
    return p


def _widths(text):
    """``"800,800"`` -> ``(800, 800)``: the dense layers' widths."""
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTH[,WIDTH...], got {text!r}") from None


def _conv_blocks(text):
    if text == "none":
        return ()
    try:
        blocks = tuple(tuple(int(v) for v in block.split(":")) for block in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FILTERS:KERNEL[:STRIDE][,...], got {text!r}") from None
    if any(len(b) not in (2, 3) or min(b) < 1 for b in blocks):
        raise argparse.ArgumentTypeError(f"expected positive FILTERS:KERNEL[:STRIDE] blocks, got {text!r}")
    return blocks


def _presets_table():
    """What each preset sets, so --help answers "what does --preset fast mean"."""
    fields = ("conv", "batchnorm", "hidden", "activation", "loss", "init", "optimizer", "lr", "schedule",
              "weight_decay", "dropout", "epochs", "batch_size", "epoch_size", "augment", "outliers", "val_split",
              "seed")
    names = sorted(PRESETS)
    rows = [f"  {'':<13}" + "".join(f"{n:>23}" for n in names)]
    for f in fields:
        values = [getattr(PRESETS[n], f) for n in names]
        values = [_show(v) if isinstance(v, tuple) else f"{v:.4g}" if isinstance(v, float) else str(v)
                  for v in values]
        rows.append(f"  {f:<13}" + "".join(f"{v:>23}" for v in values))
    return "preset values (options override them one by one):\n" + "\n".join(rows)


def _show(value):
    return ",".join(":".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in value) or "none"


def _stop(signum, frame):
    raise KeyboardInterrupt  # unwinds through save_version's cleanup like Ctrl-C


def main(argv=None):
    args = parser().parse_args(argv)
    fields = ("epochs", "batch_size", "lr", "conv", "batchnorm", "hidden", "activation", "loss", "optimizer",
              "schedule", "init", "weight_decay", "dropout", "augment", "outliers", "val_split", "seed")
    try:
        cfg = preset(args.preset, **{f: getattr(args, f) for f in fields})
    except ValueError as exc:
        parser().error(str(exc))
    signal.signal(signal.SIGTERM, _stop)
    found = preflight.problems(args.models_dir, args.model_name, args.data_dir, download=not args.no_download)
    for problem in found:
        error(problem)
    if found:
        return 2
    try:
        log(f"loading MNIST from {args.data_dir}")
        mnist = load_mnist(args.data_dir) if args.no_download else fetch_mnist(args.data_dir)
        run(cfg, mnist, args.models_dir, args.model_name, runs=args.runs, log_every=args.log_every)
    except DataError as exc:
        error(str(exc))
        return 2
    except KeyboardInterrupt:
        error("interrupted: stopped before saving; no model was written")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
