"""The model card's schema, checked field by field before anything reads it.

A card is a file on a shared volume that people edit, copy and generate, so
the reader trusts none of it: every field the code uses is checked for type
and range here, and anything unexpected rejects the whole version with a
one-line reason (which never quotes a path, so it may be shown to clients).
Fields the code does not use are free.
"""
import math
import re
from typing import Any

from neuralnet import activations

FORMAT = "mnist-serving/model"
FORMAT_VERSION = 1
WEIGHTS, CARD = "model.npz", "model.json"
PIXEL_SCALE = 1 / 255  # the service feeds pixels in [0, 1]; a card cannot ask for another scale
SHA256 = re.compile(r"[0-9a-f]{64}")


class ModelFormatError(Exception):
    """A version directory that is missing, incomplete, corrupt or inconsistent."""


def check(card: Any) -> None:
    """Raise :class:`ModelFormatError` unless ``card`` (parsed JSON) is a card this code can serve."""
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelFormatError(f"{CARD} is not a {FORMAT} card")
    if card.get("format_version") != FORMAT_VERSION or isinstance(card.get("format_version"), bool):
        raise ModelFormatError(f"{CARD}: unsupported format_version")
    arch = _field(card, "architecture", dict)
    for key in ("input_size", "output_size"):
        _count(arch, key, "architecture")
    layers = _field(arch, "layers", list, "architecture")
    if not layers:
        raise ModelFormatError(f"{CARD}: architecture.layers is empty")
    for i, layer in enumerate(layers):
        _check_layer(layer, f"architecture.layers[{i}]")
    _check_files(card.get("files", {}))
    _check_input(card.get("input", {}))
    _check_answers(_field(card, "answers", dict, default={}))
    metrics = _field(card, "metrics", dict, default={})
    accuracy = metrics.get("test_accuracy")
    if accuracy is not None and not (_real(accuracy) and 0 <= accuracy <= 1):
        raise ModelFormatError(f"{CARD}: metrics.test_accuracy must be a number in [0, 1]")


# the arrays each kind of layer names, by role (see model_io.ARRAY_PREFIX)
LAYER_ARRAYS = {"dense": ("weights", "bias"), "conv2d": ("weights", "bias"),
                "batchnorm": ("gamma", "beta", "mean", "var")}
ARRAY_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
MAX_KERNEL = 64  # larger kernels than any image the network sees are a typo or an attack
MAX_SAMPLE_VALUES = 1 << 24


def _check_layer(layer: Any, where: str) -> None:
    if not isinstance(layer, dict):
        raise ModelFormatError(f"{CARD}: {where} must be an object")
    kind = layer.get("type")
    if not isinstance(kind, str) or kind not in LAYER_CHECKS:  # a list here would not even be hashable
        raise ModelFormatError(f"{CARD}: {where}.type must be {', '.join(LAYER_CHECKS)}")
    for key in LAYER_ARRAYS.get(kind, ()):
        if not (isinstance(layer.get(key), str) and ARRAY_NAME.fullmatch(layer[key])):
            raise ModelFormatError(f"{CARD}: {where}.{key} must name an array (letters, digits, _)")
    LAYER_CHECKS[kind](layer, where)


def _check_dense(layer: dict, where: str) -> None:
    _count(layer, "out", where)


def _check_conv2d(layer: dict, where: str) -> None:
    _count(layer, "filters", where)
    kernel = _count(layer, "kernel", where, limit=MAX_KERNEL)
    _count(layer, "stride", where, limit=MAX_KERNEL, default=1)
    padding = layer.get("padding", 0)
    if type(padding) is not int or not 0 <= padding < kernel:
        raise ModelFormatError(f"{CARD}: {where}.padding must be an integer in [0, kernel)")


def _check_maxpool2d(layer: dict, where: str) -> None:
    _count(layer, "size", where, limit=MAX_KERNEL)


def _check_batchnorm(layer: dict, where: str) -> None:
    eps = layer.get("eps", 1e-5)
    if not (_real(eps) and 1e-12 <= eps < 1):  # smaller vanishes next to a float32 variance
        raise ModelFormatError(f"{CARD}: {where}.eps must be a number in [1e-12, 1)")


def _check_reshape(layer: dict, where: str) -> None:
    shape = layer.get("shape")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 3 and all(type(d) is int and d > 0 for d in shape)
            and math.prod(shape) <= MAX_SAMPLE_VALUES):
        raise ModelFormatError(f"{CARD}: {where}.shape must be a list of 1 to 3 positive integers")


def _check_activation(layer: dict, where: str) -> None:
    if not isinstance(layer.get("name"), str) or layer["name"] not in activations.ACTIVATIONS:
        raise ModelFormatError(f"{CARD}: {where}.name must be one of {', '.join(activations.ACTIVATIONS)}")


def _check_dropout(layer: dict, where: str) -> None:
    if not (_real(layer.get("rate")) and 0 <= layer["rate"] < 1):
        raise ModelFormatError(f"{CARD}: {where}.rate must be a number in [0, 1)")


LAYER_CHECKS = {"dense": _check_dense, "conv2d": _check_conv2d, "maxpool2d": _check_maxpool2d,
                "batchnorm": _check_batchnorm, "activation": _check_activation, "dropout": _check_dropout,
                "reshape": _check_reshape, "flatten": lambda layer, where: None}


def _check_files(files: Any) -> None:
    if not isinstance(files, dict):
        raise ModelFormatError(f"{CARD}: files must be an object")
    entry = files.get(WEIGHTS, {})
    if not isinstance(entry, dict):
        raise ModelFormatError(f"{CARD}: files.{WEIGHTS} must be an object")
    sha = entry.get("sha256")
    if sha is not None and not (isinstance(sha, str) and SHA256.fullmatch(sha)):
        raise ModelFormatError(f"{CARD}: files.{WEIGHTS}.sha256 must be 64 lower-case hex digits")


# digit scores a card may name (service/answers.py computes them)
SCORES = ("top2_probability", "max_probability", "energy")


def _check_answers(block: dict) -> None:
    """The optional ``answers`` block: how the service turns outputs into statuses (trainer/calibrate.py)."""
    temperature = block.get("temperature", 1.0)
    if not (_real(temperature) and 0.01 <= temperature <= 100):
        raise ModelFormatError(f"{CARD}: answers.temperature must be a number in [0.01, 100]")
    score = block.get("score", SCORES[0])
    if not isinstance(score, str) or score not in SCORES:
        raise ModelFormatError(f"{CARD}: answers.score must be one of {', '.join(SCORES)}")
    confidence = block.get("confidence_threshold", 0.0)
    if not (_real(confidence) and 0 <= confidence <= 1):
        raise ModelFormatError(f"{CARD}: answers.confidence_threshold must be a number in [0, 1]")
    for key in ("digit_score_threshold", "read_digit_score_threshold"):
        if key in block and not _real(block[key]):
            raise ModelFormatError(f"{CARD}: answers.{key} must be a finite number")


def _check_input(inp: Any) -> None:
    if not isinstance(inp, dict):
        raise ModelFormatError(f"{CARD}: input must be an object")
    for key, default in (("scale", PIXEL_SCALE), ("mean", 0.0), ("std", 1.0)):
        if not _real(inp.get(key, default)):
            raise ModelFormatError(f"{CARD}: input.{key} must be a finite number")
    if inp.get("std", 1.0) <= 0:
        raise ModelFormatError(f"{CARD}: input.std must be positive")
    if not math.isclose(inp.get("scale", PIXEL_SCALE), PIXEL_SCALE, rel_tol=1e-6):
        raise ModelFormatError(f"{CARD}: input.scale must be 1/255 (pixels are fed in [0, 1])")


def _field(obj: dict, key: str, kind: type, where: str | None = None, default: Any = None) -> Any:
    value = obj.get(key, default)
    if not isinstance(value, kind):
        name = f"{where}.{key}" if where else key
        raise ModelFormatError(f"{CARD}: {name} must be {'an object' if kind is dict else 'a ' + kind.__name__}")
    return value


def _count(obj: dict, key: str, where: str, limit: int = 1 << 24, default: Any = None) -> int:
    value = obj.get(key, default)
    if type(value) is not int or not 0 < value <= limit:
        raise ModelFormatError(f"{CARD}: {where}.{key} must be a positive integer" +
                               (f" up to {limit}" if limit < 1 << 24 else ""))
    return value


def _real(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)
