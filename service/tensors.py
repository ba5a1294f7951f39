"""V2 (Open Inference Protocol) JSON tensors in and out of NumPy.

An inference request carries one input tensor, ``image``, as JSON:

    {"id": "...", "inputs": [{"name": "image", "datatype": "FP32", "shape": [n, 784],
     "data": [...]}], "outputs": [{"name": "label"}]}

``data`` is row-major, flat or nested. FP32 and FP64 carry pixels in [0, 1]
(the MNIST scaling), UINT8 carries pixels in 0-255; the shape is ``[n, 784]``
or ``[n, 28, 28]``. Everything a client can get wrong raises a
:class:`~service.errors.ApiError` with a 400 that says what and where, so a
malformed tensor never reaches the model.

The body is parsed with simdjson, whose arrays hand their numbers to NumPy as
one buffer: a batch of 64 images is 50,176 numbers, and building a Python float
for each (the stdlib ``json`` module, or orjson) costs three to ten times as
long as parsing them, and more than the forward pass. Replies are written by
orjson straight from the NumPy arrays.
"""
from dataclasses import dataclass

import numpy as np
import orjson
import simdjson

from service.errors import ApiError

INPUT = "image"
OUTPUTS = ("probabilities", "label")
FLOAT_TYPES = ("FP32", "FP64")
PIXEL_TYPES = ("UINT8",)
SHAPES = ((784,), (28, 28))  # per image


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    x: np.ndarray  # (n, 784) float32 in [0, 1]
    outputs: tuple  # names of the outputs to return, in the order asked


def bad(message, code="invalid_tensor"):
    return ApiError(400, code, message)


def parse_request(body, max_batch):
    """Bytes of an inference request -> :class:`InferRequest`; 400/413 on anything malformed."""
    # A parser per request: simdjson refuses to reuse one while any object it
    # returned is alive, and an error's traceback can keep one alive.
    try:
        doc = simdjson.Parser().parse(body)
    except ValueError:
        raise bad("the request body is not valid JSON (or holds a number out of range)", "invalid_json") from None
    if not isinstance(doc, simdjson.Object):
        raise bad("the request body must be a JSON object", "invalid_json")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad("'id' must be a string")
    inputs = doc.get("inputs")
    if not isinstance(inputs, simdjson.Array) or len(inputs) != 1 or not isinstance(inputs[0], simdjson.Object):
        raise bad(f"'inputs' must be a list holding one tensor, '{INPUT}'")
    outputs = doc.get("outputs")
    if isinstance(outputs, (simdjson.Array, simdjson.Object)):
        outputs = outputs.as_list() if isinstance(outputs, simdjson.Array) else outputs.as_dict()
    return InferRequest(request_id, _pixels(inputs[0], max_batch), _requested(outputs))


def _requested(outputs):
    if outputs is None or outputs == []:
        return OUTPUTS
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise bad("'outputs' must be a list of objects like {\"name\": \"label\"}")
    names = tuple(o.get("name") for o in outputs)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise bad(f"unknown output {unknown[0]!r}; this model has {', '.join(OUTPUTS)}", "unknown_output")
    return names


def _pixels(tensor, max_batch):
    """The ``image`` input tensor -> ``(n, 784)`` float32 in [0, 1]."""
    if tensor.get("name") != INPUT:
        raise bad(f"unknown input {tensor.get('name')!r}; this model takes one input, '{INPUT}'", "unknown_input")
    datatype = tensor.get("datatype")
    if datatype not in FLOAT_TYPES + PIXEL_TYPES:
        raise bad(f"datatype {datatype!r} not accepted; send FP32 (pixels in [0, 1]) or UINT8 (0-255)",
                  "invalid_datatype")
    shape = _shape(tensor.get("shape"), max_batch)
    values = _numbers(tensor.get("data"), shape, integers=datatype in PIXEL_TYPES)
    if datatype in PIXEL_TYPES:
        if values.min() < 0 or values.max() > 255:
            raise bad(f"{datatype} data must lie in 0-255, got {values.min()}..{values.max()}")
        return values.reshape(shape[0], 784).astype(np.float32) * np.float32(1 / 255)
    x = values.reshape(shape[0], 784).astype(np.float32)
    lo, hi = x.min(), x.max()
    if not (lo >= 0 and hi <= 1):  # also false for NaN
        raise bad(f"{datatype} pixels must lie in [0, 1], got {lo:g}..{hi:g}; send 0-255 pixels as UINT8")
    return x


def _shape(shape, max_batch):
    shape = shape.as_list() if isinstance(shape, simdjson.Array) else shape
    if (not isinstance(shape, list) or not all(type(d) is int for d in shape)
            or tuple(shape[1:]) not in SHAPES or shape[0] < 1):
        raise bad(f"shape must be [n, 784] or [n, 28, 28] with n >= 1, got {shape!r}", "invalid_shape")
    if shape[0] > max_batch:
        raise ApiError(413, "too_many_images", f"at most {max_batch} images per request, got {shape[0]}")
    return shape


def _numbers(data, shape, integers):
    """``data``: flat or nested (exactly as ``shape``) numbers -> a flat int64 or float64 array."""
    if not isinstance(data, simdjson.Array):
        raise bad("'data' must be a list of numbers (flat or nested, row-major)")
    expected = int(np.prod(shape))
    nested = len(data) > 0 and isinstance(data[0], simdjson.Array)
    if nested:
        _check_nesting(data, shape)
    try:  # one C loop over the numbers; it flattens nested lists and refuses any non-number
        values = np.frombuffer(data.as_buffer(of_type="i" if integers else "d"), np.int64 if integers else np.float64)
    except TypeError:
        raise bad("'data' must hold only integers" if integers else "'data' must hold only numbers") from None
    if not nested and len(data) != values.size:
        raise bad("'data' mixes numbers and lists; send it flat or nested exactly as 'shape'", "invalid_shape")
    if values.size != expected:
        raise bad(f"'data' holds {values.size} values; shape {shape} needs {expected}", "invalid_shape")
    return values


def _check_nesting(data, shape):
    if len(data) != shape[0]:
        raise bad(f"nested 'data' has {len(data)} rows where 'shape' {shape} says {shape[0]}", "invalid_shape")
    if len(shape) > 1:
        for row in data:
            if not isinstance(row, simdjson.Array):
                raise bad(f"nested 'data' does not follow 'shape' {shape}", "invalid_shape")
            _check_nesting(row, shape[1:])


def encode_response(model, request_id, outputs, probabilities, labels):
    """The inference response body (bytes) with the outputs asked for, in that order."""
    n = len(labels)
    tensors = {
        "probabilities": {"name": "probabilities", "datatype": "FP32", "shape": [n, 10],
                          "data": probabilities.astype(np.float32, copy=False).ravel()},
        "label": {"name": "label", "datatype": "INT64", "shape": [n], "data": labels.astype(np.int64)},
    }
    body = {"model_name": model.name, "model_version": str(model.version), "id": request_id,
            "outputs": [tensors[name] for name in outputs]}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
