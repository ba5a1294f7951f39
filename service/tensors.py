"""V2 (Open Inference Protocol) JSON tensors in and out of NumPy.

An inference request carries one input tensor, ``image``, as JSON:

    {"id": "...", "inputs": [{"name": "image", "datatype": "FP32", "shape": [n, 784],
     "data": [...]}], "outputs": [{"name": "label"}]}

``data`` is row-major, flat or nested. FP32 and FP64 carry pixels in [0, 1]
(the MNIST scaling), UINT8 carries pixels in 0-255; the shape is ``[n, 784]``
or ``[n, 28, 28]``. The tensor may instead follow the JSON as raw bytes, and
outputs go back that way when asked for (Triton's binary tensor extension, see
:mod:`service.binary_tensors`). Everything a client can get wrong raises an
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

from service import binary_tensors
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
    outputs: tuple  # (name, binary) of the outputs to return, in the order asked


def bad(message, code="invalid_tensor"):
    return ApiError(400, code, message)


def parse_request(body, max_batch, binary=b""):
    """An inference request's JSON (and binary tensor bytes) -> :class:`InferRequest`; 400/413 if malformed."""
    # A parser per request: simdjson refuses to reuse one while any object it
    # returned is alive, and an error's traceback can keep one alive.
    try:
        doc = simdjson.Parser().parse(body)
    except (ValueError, RuntimeError):  # RuntimeError: integers beyond 64 bits, nesting beyond 1,024 levels
        raise bad("the request body is not valid JSON, nests deeper than 1,024 levels or holds a number "
                  "out of range", "invalid_json") from None
    if not isinstance(doc, simdjson.Object):
        raise bad("the request body must be a JSON object", "invalid_json")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad("'id' must be a string")
    inputs = doc.get("inputs")
    if not isinstance(inputs, simdjson.Array) or len(inputs) != 1 or not isinstance(inputs[0], simdjson.Object):
        raise bad(f"'inputs' must be a list holding one tensor, '{INPUT}'")
    outputs, parameters = (_plain(doc.get(key)) for key in ("outputs", "parameters"))
    binary_default = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    x = _pixels(inputs[0], max_batch, binary)
    return InferRequest(request_id, x, _requested(outputs, binary_default))


def shown(value, limit=40):
    """A client's JSON value as an error message may quote it: short, and never a repr of our objects."""
    if isinstance(value, list) and len(value) <= 4 and all(type(v) is int for v in value):
        return repr(value)  # a shape
    if isinstance(value, (simdjson.Array, list)):
        return "a list"
    if isinstance(value, (simdjson.Object, dict)):
        return "an object"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _plain(value):
    """simdjson containers as Python lists and dicts (for the small parts of a request)."""
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value.as_dict() if isinstance(value, simdjson.Object) else value


def _requested(outputs, binary_default):
    if outputs is None or outputs == []:
        return tuple((name, binary_default) for name in OUTPUTS)
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise bad("'outputs' must be a list of objects like {\"name\": \"label\"}")
    names = tuple(o.get("name") for o in outputs)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise bad(f"unknown output {shown(unknown[0])}; this model has {', '.join(OUTPUTS)}", "unknown_output")
    return tuple((o["name"], _binary_asked(o, binary_default)) for o in outputs)


def _binary_asked(output, default):
    parameters = output.get("parameters")
    if isinstance(parameters, dict) and isinstance(parameters.get("binary_data"), bool):
        return parameters["binary_data"]
    return default


def _pixels(tensor, max_batch, binary):
    """The ``image`` input tensor (and the binary bytes after the JSON) -> ``(n, 784)`` float32 in [0, 1]."""
    if tensor.get("name") != INPUT:
        raise bad(f"unknown input {shown(tensor.get('name'))}; this model takes one input, '{INPUT}'", "unknown_input")
    datatype = tensor.get("datatype")
    if datatype not in FLOAT_TYPES + PIXEL_TYPES:
        raise bad(f"datatype {shown(datatype)} not accepted; send FP32 (pixels in [0, 1]) or UINT8 (0-255)",
                  "invalid_datatype")
    shape = _shape(tensor.get("shape"), max_batch)
    values = _values(tensor, datatype, shape, binary)
    if datatype in PIXEL_TYPES:
        if values.min() < 0 or values.max() > 255:
            raise bad(f"{datatype} data must lie in 0-255, got {values.min()}..{values.max()}")
        return values.reshape(shape[0], 784).astype(np.float32) * np.float32(1 / 255)
    x = values.reshape(shape[0], 784).astype(np.float32)
    lo, hi = x.min(), x.max()
    if not (lo >= 0 and hi <= 1):  # also false for NaN
        raise bad(f"{datatype} pixels must lie in [0, 1], got {lo:g}..{hi:g}; send 0-255 pixels as UINT8")
    return x


def _values(tensor, datatype, shape, binary):
    """The tensor's numbers, flat: from its JSON ``data``, or from the bytes after the JSON."""
    parameters = _plain(tensor.get("parameters"))
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        return binary_tensors.values(binary, size, datatype, shape, has_data=tensor.get("data") is not None)
    if binary:
        raise bad(f"{len(binary)} bytes of binary tensor data follow the JSON, but input '{INPUT}' has no "
                  "parameters.binary_data_size", "invalid_binary_data")
    return _numbers(tensor.get("data"), shape, integers=datatype in PIXEL_TYPES)


def _shape(shape, max_batch):
    shape = shape.as_list() if isinstance(shape, simdjson.Array) else shape
    if (not isinstance(shape, list) or not all(type(d) is int for d in shape)
            or tuple(shape[1:]) not in SHAPES or shape[0] < 1):
        raise bad(f"shape must be [n, 784] or [n, 28, 28] with n >= 1, got {shown(shape)}",
                  "invalid_shape")
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
    except ValueError:  # an integer beyond int64 where integers were asked for
        raise bad("'data' holds a number out of range") from None
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
    """``(body, json_length)``: the response with the outputs asked for, in that order.

    ``json_length`` is None for a plain JSON body; with binary outputs the
    body is the JSON followed by their raw bytes, and it is the JSON's length
    (the ``Inference-Header-Content-Length`` header).
    """
    n = len(labels)
    arrays = {"probabilities": ("FP32", [n, 10], probabilities.astype("<f4", copy=False).ravel()),
              "label": ("INT64", [n], labels.astype("<i8"))}
    tensors, blobs = [], []
    for name, binary in outputs:
        datatype, shape, array = arrays[name]
        tensor = {"name": name, "datatype": datatype, "shape": shape}
        if binary:
            tensor["parameters"] = {"binary_data_size": array.nbytes}
            blobs.append(array.tobytes())
        else:
            tensor["data"] = array
        tensors.append(tensor)
    body = orjson.dumps({"model_name": model.name, "model_version": str(model.version), "id": request_id,
                         "outputs": tensors}, option=orjson.OPT_SERIALIZE_NUMPY)
    return (body + b"".join(blobs), len(body)) if blobs else (body, None)
