"""Model versions on disk: ``MODELS_DIR/<name>/<N>/{model.npz, model.json}``.

The format is documented in ``models/README.md``. Writers build a version in a
hidden temporary directory and rename it into place, so readers never see a
half-written version; readers verify the card (:mod:`neuralnet.model_card`), the
weights' checksum and every shape before handing back a network, and then that
the network gives the outputs recorded for the version's probe batch, so a
card that misdescribes its weights (say ``sigmoid`` for ``relu``) is refused.
"""
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuralnet import activations
from neuralnet.batchnorm import BatchNorm
from neuralnet.conv import Conv2D, MaxPool2D
from neuralnet.layers import Activation, Dense, Dropout, Flatten, Layer, Reshape
from neuralnet.model_card import CARD, FORMAT, FORMAT_VERSION, WEIGHTS, ModelFormatError, check
from neuralnet.network import Network

__all__ = ["CARD", "FORMAT", "FORMAT_VERSION", "WEIGHTS", "ModelFormatError", "list_versions", "load_version",
           "load_verified", "save_version", "forward"]

VERSION_NAME = re.compile(r"[1-9][0-9]{0,17}")  # ASCII digits: str.isdigit() also takes "²", "٣"
PROBE_INPUTS, PROBE_OUTPUTS = "probe_inputs", "probe_outputs"
PROBE_SIZE = 64
INPUT_SIZE = 784  # every network takes 28x28 pixels, flattened row by row
FORWARD_CHUNK = 128
MAX_WEIGHT_BYTES = 256 << 20  # 50x the largest network here; a zip bomb would inflate far beyond
# values one sample may occupy in any layer, im2col's copies included (the shipped CNN needs
# ~56K): a card cannot make a small file cost gigabytes per request
MAX_SAMPLE_WORK = 1 << 18
PROBE_RTOL, PROBE_ATOL = 1e-3, 1e-4  # other BLAS builds differ in the last bits, a wrong layer in the first


def list_versions(model_dir: str | os.PathLike) -> list[int]:
    """Integer version numbers present in ``model_dir``, ascending; [] if it cannot be read."""
    try:
        names = os.listdir(model_dir)
    except OSError:
        return []
    return sorted(int(n) for n in names if VERSION_NAME.fullmatch(n) and (Path(model_dir) / n).is_dir())


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# npz array names: the i-th layer that has arrays stores its weights as W{i}, its bias as b{i}, ...
ARRAY_PREFIX = {"weights": "W", "bias": "b", "gamma": "gamma", "beta": "beta", "mean": "mean", "var": "var"}


def _named_state(network: Network) -> list[dict[str, tuple[str, NDArray]]]:
    """Per layer, ``{role: (npz name, array)}``; an MLP gets W0, b0, W1, b1, ... as always."""
    named, i = [], 0
    for layer in network.layers:
        state = layer.state()
        named.append({role: (f"{ARRAY_PREFIX[role]}{i}", array) for role, array in state.items()})
        i += bool(state)
    return named


def architecture(network: Network) -> dict[str, Any]:
    """The card's ``architecture`` block: every layer's description, naming its arrays."""
    layers = []
    for layer, state in zip(network.layers, _named_state(network)):
        layers.append({**layer.describe(), **{role: name for role, (name, _) in state.items()}})
    shape: tuple[int, ...] = (INPUT_SIZE,)
    for layer in network.layers:
        shape = layer.output_shape(shape)
    return {"input_size": INPUT_SIZE, "output_size": math.prod(shape), "layers": layers}


def save_version(network: Network, card: dict[str, Any], models_dir: str | os.PathLike, name: str,
                 artifacts: dict[str, Callable[[Path], object]] | None = None,
                 probe: NDArray[np.uint8] | None = None) -> Path:
    """Write ``network`` and ``card`` as the next version of ``name``; return its path.

    ``card`` holds everything but the format, name, version, architecture and
    file checksums, which are filled in here. ``probe``: ``(n, 784)`` uint8
    pixels (default: a seeded synthetic batch) whose outputs are stored with
    the weights, for readers to check the card against. ``artifacts`` maps extra file
    names to ``write(path)`` callables (plots, reports) that land in the same
    directory. The rename is atomic; a crash or Ctrl-C leaves at most a
    ``.tmp-*`` directory, which readers ignore and this function removes.
    """
    model_dir = Path(models_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=model_dir))
    try:
        inputs = synthetic_probe() if probe is None else np.asarray(probe, np.uint8).reshape(-1, 784)
        with np.errstate(all="ignore"):  # a diverged network is saved as it is; readers judge it
            outputs: Any = forward(network, card, inputs.astype(np.float32) / 255)
        np.savez(tmp / WEIGHTS, **weights(network), **{PROBE_INPUTS: inputs, PROBE_OUTPUTS: outputs})
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


def weights(network: Network) -> dict[str, Any]:
    """The npz arrays, by the names :func:`architecture` gives them."""
    return {name: array for state in _named_state(network) for name, array in state.values()}


def synthetic_probe(n: int = PROBE_SIZE, seed: int = 0) -> NDArray[np.uint8]:
    """``(n, 784)`` uint8: sparse strokes of random brightness, a stand-in for digits."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 784)) < 0.2) * rng.integers(0, 256, (n, 784), dtype=np.uint8)


def forward(network: Network, card: dict[str, Any], x: NDArray[np.floating],
            logits: bool = False) -> NDArray[np.floating]:
    """The network's raw outputs for ``x: (n, 784)`` float32 pixels in [0, 1], normalised as ``card`` says;
    with ``logits``, its outputs before a final softmax (:meth:`Network.logits`).

    Runs ``FORWARD_CHUNK`` rows at a time: a convolution holds each pixel k*k
    times (im2col), so one large batch would take hundreds of megabytes.
    """
    inp = card.get("input", {})
    mean, std = inp.get("mean", 0.0), inp.get("std", 1.0)
    if mean or std != 1.0:
        x = (x - np.float32(mean)) / np.float32(std)
    return (network.logits if logits else network.predict_proba)(x, batch_size=FORWARD_CHUNK)


def _rename_into_place(tmp: Path, model_dir: Path, card: dict[str, Any]) -> Path:
    """Claim the next free version number; retry if a concurrent writer (or a stray file) took it."""
    number = 0
    for _ in range(100):
        number = max(max(list_versions(model_dir), default=0), number) + 1
        card["version"] = number
        (tmp / CARD).write_text(json.dumps(card, indent=2) + "\n")
        target = model_dir / str(card["version"])
        try:
            os.rename(tmp, target)  # atomic; fails if another writer created the target
            return target
        except OSError:
            if not target.exists():
                raise
    raise ModelFormatError("could not claim a version number")


def load_version(path: str | os.PathLike) -> tuple[Network, dict[str, Any]]:
    """Read and validate one version directory; return ``(network, card)`` (see :func:`load_verified`)."""
    network, card, _ = load_verified(path)
    return network, card


def load_verified(path: str | os.PathLike) -> tuple[Network, dict[str, Any], bool]:
    """Read and validate one version directory; return ``(network, card, probe_checked)``.

    Raises :class:`ModelFormatError` with a one-line reason (without the path)
    for anything wrong: missing files, a card that breaks its schema, a
    checksum mismatch (e.g. a half-copied file), unreadable arrays, shapes
    that disagree with the card, non-finite weights, or outputs on the probe
    batch that differ from the ones recorded. ``probe_checked`` is False for
    versions written before probes were recorded.
    """
    path = Path(path)
    card = _read_card(path)
    expected = card.get("files", {}).get(WEIGHTS, {}).get("sha256")
    if expected is not None and sha256_file(path / WEIGHTS) != expected:
        raise ModelFormatError(f"{WEIGHTS} does not match the checksum in {CARD}")
    try:  # the file is ours to close: np.load leaks its own when a truncated zip makes it fail
        with open(path / WEIGHTS, "rb") as f:
            _check_sizes(f)
            f.seek(0)
            with np.load(f, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
    except ModelFormatError:
        raise
    except Exception as exc:  # zipfile, zlib, format and OS errors alike: a file that is not what it says
        raise ModelFormatError(f"{WEIGHTS} is not a readable npz file ({type(exc).__name__})") from None
    network = _build(card, arrays)
    return network, card, _check_probe(network, card, arrays)


def _check_sizes(f: Any) -> None:
    """Refuse an npz whose arrays would decompress to more than MAX_WEIGHT_BYTES, reading only their headers."""
    total = 0
    with zipfile.ZipFile(f) as zf:
        for name in zf.namelist():
            with zf.open(name) as member:
                major, _ = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(member)
                total += math.prod(shape) * dtype.itemsize
    if total > MAX_WEIGHT_BYTES:
        raise ModelFormatError(f"{WEIGHTS} holds {total / 2**20:.0f} MiB of arrays; the limit is "
                               f"{MAX_WEIGHT_BYTES // 2**20} MiB")


def _check_probe(network: Network, card: dict[str, Any], arrays: dict[str, NDArray]) -> bool:
    inputs, outputs = arrays.get(PROBE_INPUTS), arrays.get(PROBE_OUTPUTS)
    if inputs is None and outputs is None:
        return False
    if (inputs is None or outputs is None or inputs.dtype != np.uint8 or inputs.ndim != 2
            or inputs.shape[1] != 784 or outputs.shape != (len(inputs), card["architecture"]["output_size"])):
        raise ModelFormatError(f"{WEIGHTS}: malformed probe arrays")
    try:
        with np.errstate(all="ignore"):
            got = forward(network, card, inputs.astype(np.float32) / 255)
    except (ValueError, MemoryError) as exc:  # _build checked every shape; this is a last line of defence
        raise ModelFormatError(f"the network fails on its probe batch ({type(exc).__name__})") from None
    if not np.allclose(got, outputs, rtol=PROBE_RTOL, atol=PROBE_ATOL, equal_nan=True):
        raise ModelFormatError("the network the card describes does not give the outputs recorded for this "
                               "version's probe batch: the card does not match the weights")
    return True


def _read_card(path: Path) -> dict[str, Any]:
    for name in (CARD, WEIGHTS):  # a FIFO or device would block or stream forever: regular files only
        if not (path / name).is_file():
            raise ModelFormatError(f"no {name}" if not (path / name).exists() else f"{name} is not a regular file")
    try:
        card = json.loads((path / CARD).read_text())
    except FileNotFoundError:
        raise ModelFormatError(f"no {CARD}") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{CARD} is not valid JSON ({type(exc).__name__})") from None
    check(card)
    return card


def _build(card: dict[str, Any], arrays: dict[str, NDArray]) -> Network:
    """Rebuild the network from the card's layer list (schema-checked), following the
    shape of one sample through it and checking every array against that shape."""
    if card["architecture"]["input_size"] != INPUT_SIZE:
        raise ModelFormatError(f"architecture.input_size must be {INPUT_SIZE} (28x28 pixels)")
    try:
        net, shape = Network(), (INPUT_SIZE,)
        for i, spec in enumerate(card["architecture"]["layers"]):
            layer = _layer(spec, arrays, shape)
            shape = layer.output_shape(shape)
            if min(shape) < 1 or _work(layer, shape) > MAX_SAMPLE_WORK:
                raise ValueError(f"layers[{i}] would give samples of shape {shape}: "
                                 f"{'empty' if min(shape) < 1 else 'too large to serve'}")
            net.add(layer)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(str(exc)) from None
    if shape != (card["architecture"]["output_size"],) or not net.dense_layers():
        raise ModelFormatError("architecture output does not match output_size")
    return net


def _work(layer: Layer, out_shape: tuple[int, ...]) -> int:
    """Values one sample occupies at ``layer``'s output, and in its im2col windows for a convolution."""
    if isinstance(layer, Conv2D):
        k, _, c_in, _ = layer.W.shape
        return math.prod(out_shape[:2]) * k * k * c_in + math.prod(out_shape)
    return math.prod(out_shape)


def _layer(spec: dict[str, Any], arrays: dict[str, NDArray], shape: tuple[int, ...]) -> Layer:
    """One layer from its card entry, for samples of ``shape`` (the previous layer's output)."""
    kind = spec["type"]
    if kind == "activation":
        activations.get(spec["name"])
        return Activation(spec["name"])
    if kind == "dropout":
        return Dropout(float(spec["rate"]))
    if kind == "reshape":
        return Reshape(spec["shape"])
    if kind == "flatten":
        return Flatten()
    if kind == "maxpool2d":
        return MaxPool2D(spec["size"])
    if len(shape) not in ((1,) if kind == "dense" else (1, 3)):
        raise ValueError(f"a {kind} layer cannot take samples of shape {shape}")
    if kind == "dense":
        W, b = _arrays(spec, arrays, {"weights": (shape[0], spec["out"]), "bias": (spec["out"],)})
        return Dense.from_arrays(W, b)
    if kind == "conv2d":
        if len(shape) != 3:
            raise ValueError(f"a conv2d layer needs images (h, w, c), not samples of shape {shape}")
        k, filters = spec["kernel"], spec["filters"]
        W, b = _arrays(spec, arrays, {"weights": (k, k, shape[2], filters), "bias": (filters,)})
        return Conv2D.from_arrays(W, b, stride=spec.get("stride", 1), padding=spec.get("padding", 0))
    if kind == "batchnorm":
        c = (shape[-1],)
        gamma, beta, mean, var = _arrays(spec, arrays, {"gamma": c, "beta": c, "mean": c, "var": c})
        if (var < 0).any():
            raise ValueError(f"{spec['var']!r} holds a negative variance")
        return BatchNorm.from_arrays(gamma, beta, mean, var, eps=spec.get("eps", 1e-5))
    raise ValueError(f"unknown layer type {kind!r}")


def _arrays(spec: dict[str, Any], arrays: dict[str, NDArray], shapes: dict[str, tuple[int, ...]]) -> list[NDArray]:
    """The arrays a card entry names for each role, checked for presence, shape, type and finiteness."""
    found = []
    for role, shape in shapes.items():
        name, array = spec[role], arrays.get(spec[role])
        if array is None:
            raise ValueError(f"missing array {name!r}")
        if array.shape != shape:
            raise ValueError(f"{name} has shape {array.shape}; expected {shape}")
        if array.dtype != np.float32:  # float64 would run at half the speed, float16 lose the probe's digits
            raise ValueError(f"{name} must be float32, not {array.dtype}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinity")
        found.append(array)
    return found
