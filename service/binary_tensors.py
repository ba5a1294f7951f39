"""Triton's binary tensor data extension to the V2 protocol, which tritonclient uses by default.

A request body is the JSON request followed by the raw tensors, and the
``Inference-Header-Content-Length`` header gives the JSON's length. An input
sent this way has ``parameters.binary_data_size`` (its byte count) instead of
``data``; its bytes are the tensor in row-major order, little-endian. Outputs
asked for in binary come back the same way after the response's JSON.
"""
import re

import numpy as np

from service.errors import ApiError

HEADER = "Inference-Header-Content-Length"
LENGTH = re.compile(r"[0-9]{1,15}")  # ASCII digits only: str.isdigit() also takes "²", and int() refuses 4,301+
DTYPES = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"), "UINT8": np.dtype("u1")}


def split(body, json_length):
    """``(json, binary)`` of a request body; ``json_length`` is the header's value (None: JSON only)."""
    if json_length is None:
        return body, b""
    if not LENGTH.fullmatch(json_length) or int(json_length) > len(body):
        raise ApiError(400, "invalid_binary_data", f"{HEADER} must be the length in bytes of the JSON at the "
                                                   f"start of the {len(body)}-byte body")
    return body[:int(json_length)], body[int(json_length):]


def values(binary, size, datatype, shape, has_data):
    """The input's bytes -> a flat array; a 400 unless they are exactly the tensor ``shape`` describes."""
    expected = int(np.prod(shape)) * DTYPES[datatype].itemsize
    if type(size) is not int or size != len(binary) or has_data:
        raise ApiError(400, "invalid_binary_data", f"binary_data_size must be the {len(binary)} bytes that follow "
                                                   f"the JSON, and 'data' absent")
    if size != expected:
        raise ApiError(400, "invalid_shape", f"binary data holds {size} bytes; {datatype} shape {shape} "
                                             f"needs {expected}")
    return np.frombuffer(binary, DTYPES[datatype])
