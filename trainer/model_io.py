"""Model versions on disk: ``MODELS_DIR/<name>/<N>/{model.npz, model.json}``.

The format is documented in ``models/README.md``. Writers build a version in a
hidden temporary directory and rename it into place, so readers never see a
half-written version; readers verify the card, the weights' checksum and every
shape before handing back a network.
"""
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from trainer import activations
from trainer.layers import Activation, Dense, Dropout
from trainer.network import Network

FORMAT = "mnist-serving/model"
FORMAT_VERSION = 1
WEIGHTS, CARD = "model.npz", "model.json"


class ModelFormatError(Exception):
    """A version directory that is missing, incomplete, corrupt or inconsistent."""


def list_versions(model_dir):
    """Integer version numbers present in ``model_dir``, ascending; [] if it does not exist."""
    try:
        names = os.listdir(model_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(n) for n in names if n.isdigit() and int(n) > 0 and (Path(model_dir) / n).is_dir())


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def architecture(network):
    """The card's ``architecture`` block, naming each dense layer's arrays."""
    layers, i = [], 0
    for layer in network.layers:
        entry = layer.describe()
        if entry["type"] == "dense":
            entry.update(weights=f"W{i}", bias=f"b{i}")
            i += 1
        layers.append(entry)
    dense = network.dense_layers()
    return {"input_size": dense[0].W.shape[0], "output_size": dense[-1].W.shape[1], "layers": layers}


def save_version(network, card, models_dir, name, artifacts=None):
    """Write ``network`` and ``card`` as the next version of ``name``; return its path.

    ``card`` holds everything but the format, name, version, architecture and
    file checksums, which are filled in here. ``artifacts`` maps extra file
    names to ``write(path)`` callables (plots, reports) that land in the same
    directory. The rename is atomic; a crash or Ctrl-C leaves at most a
    ``.tmp-*`` directory, which readers ignore and this function removes.
    """
    model_dir = Path(models_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=model_dir))
    try:
        np.savez(tmp / WEIGHTS, **weights(network))
        for filename, write in (artifacts or {}).items():
            write(tmp / filename)
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "version": None,
                **card, "architecture": architecture(network),
                "files": {WEIGHTS: {"sha256": sha256_file(tmp / WEIGHTS),
                                    "bytes": (tmp / WEIGHTS).stat().st_size}}}
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the service may run as another user
        return _rename_into_place(tmp, model_dir, full)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def weights(network):
    """The npz arrays: ``W{i}``, ``b{i}`` for the i-th dense layer."""
    arrays = {}
    for i, dense in enumerate(network.dense_layers()):
        arrays[f"W{i}"], arrays[f"b{i}"] = dense.W, dense.b
    return arrays


def _rename_into_place(tmp, model_dir, card):
    """Claim the next free version number; retry if a concurrent writer took it."""
    for _ in range(100):
        card["version"] = max(list_versions(model_dir), default=0) + 1
        (tmp / CARD).write_text(json.dumps(card, indent=2) + "\n")
        target = model_dir / str(card["version"])
        try:
            os.rename(tmp, target)  # atomic; fails if another writer created the target
            return target
        except OSError:
            if not target.exists():
                raise
    raise ModelFormatError(f"{model_dir}: could not claim a version number")


def load_version(path):
    """Read and validate one version directory; return ``(network, card)``.

    Raises :class:`ModelFormatError` with a one-line reason for anything wrong:
    missing files, unreadable JSON, a checksum mismatch (e.g. a half-copied
    file), unknown layer types, inconsistent shapes or non-finite weights.
    """
    path = Path(path)
    card = _read_card(path)
    expected = card.get("files", {}).get(WEIGHTS, {}).get("sha256")
    if expected is not None and sha256_file(path / WEIGHTS) != expected:
        raise ModelFormatError(f"{path}: {WEIGHTS} does not match the checksum in {CARD}")
    try:
        with np.load(path / WEIGHTS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ModelFormatError(f"{path}: {WEIGHTS} is not a readable npz file ({type(exc).__name__})") from None
    return _build(card, arrays, path), card


def _read_card(path):
    try:
        card = json.loads((path / CARD).read_text())
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no {CARD}") from None
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: {CARD} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: {CARD} is not a {FORMAT} card")
    if card.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: unsupported format_version {card.get('format_version')!r}")
    if not (path / WEIGHTS).is_file():
        raise ModelFormatError(f"{path}: no {WEIGHTS}")
    return card


def _build(card, arrays, path):
    """Rebuild the network from the card's layer list, checking every array against it."""
    try:
        specs = card["architecture"]["layers"]
        net, width = Network(), card["architecture"]["input_size"]
        for spec in specs:
            net.add(_layer(spec, arrays, width))
            width = spec["out"] if spec["type"] == "dense" else width
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: {exc}") from None
    if width != card["architecture"].get("output_size", width) or not net.dense_layers():
        raise ModelFormatError(f"{path}: architecture output does not match output_size")
    return net


def _layer(spec, arrays, width):
    kind = spec["type"]
    if kind == "activation":
        activations.get(spec["name"])
        return Activation(spec["name"])
    if kind == "dropout":
        return Dropout(float(spec["rate"]))
    if kind != "dense":
        raise ValueError(f"unknown layer type {kind!r}")
    W, b = arrays.get(spec["weights"]), arrays.get(spec["bias"])
    if W is None or b is None:
        raise ValueError(f"missing array {spec['weights']!r} or {spec['bias']!r}")
    if W.shape != (width, spec["out"]) or b.shape != (spec["out"],):
        raise ValueError(f"{spec['weights']} has shape {W.shape}, {spec['bias']} {b.shape}; "
                         f"expected ({width}, {spec['out']}) and ({spec['out']},)")
    if W.dtype.kind != "f" or b.dtype.kind != "f":
        raise ValueError(f"{spec['weights']}/{spec['bias']} must be floating point")
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise ValueError(f"{spec['weights']}/{spec['bias']} contain NaN or infinity")
    return Dense.from_arrays(W, b)
