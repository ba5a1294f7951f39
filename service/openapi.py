"""The service's OpenAPI 3.1 description: the contract /openapi.json serves and /docs renders.

It is built from the same names the code uses (statuses, tensor names,
open endpoints, limits from the Config), so the description of a deployment
says what that deployment does: with API_KEY set the guarded operations
require the key and may answer 401; without it, nothing does. Errors share
one shape; :func:`error` writes each status's response once, with the codes
it may carry as an enum, so a fuzzer checks the codes too.
"""
import re

from service import security
from service.config import Config
from service.openapi_schemas import SCHEMAS

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
REQUEST_ID = {"description": "the client's X-Request-ID if it is 1-128 characters of `A-Z a-z 0-9 . _ : -`, "
                             "else a new one; it tags the request's log lines",
              "required": True, "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$"}}
TRACEPARENT = {"description": "W3C trace context: the trace this request belongs to (the caller's, continued, or a "
                              "new one) and the service's span in it", "required": True,
               "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"}}
RETRY_AFTER = {"description": "seconds to wait before retrying", "required": True,
               "schema": {"type": "string", "pattern": "^[0-9]+$"}}
WWW_AUTHENTICATE = {"description": "the scheme to authenticate with", "required": True,
                    "schema": {"type": "string"}}
NAME = {"name": "name", "in": "path", "required": True, "description": "the model's name",
        "schema": {"type": "string"}, "example": "mnist"}
VERSION = {"name": "version", "in": "path", "required": True, "description": "a version number on disk",
           "schema": {"type": "string"}, "example": "1"}
BINARY_LENGTH = {"name": "Inference-Header-Content-Length", "in": "header",
                 "description": "binary tensor extension: the length in bytes of the JSON at the start of the "
                                "body; the raw tensors follow it",
                 "schema": {"type": "string", "pattern": "^[0-9]{1,15}$"}}
COMMON_HEADERS = [
    {"name": "X-Request-ID", "in": "header", "description": "an ID for this request, echoed in the response "
     "when it is 1-128 characters of `A-Z a-z 0-9 . _ : -` (replaced otherwise)", "schema": {"type": "string"}},
    {"name": "traceparent", "in": "header", "description": "W3C trace context (`00-<trace id>-<span id>-<flags>`); "
     "optional, and ignored when malformed", "schema": {"type": "string"}},
]
# status -> what it means, for every error response
MEANING = {400: "the request is malformed", 401: "the API key is missing or wrong",
           404: "no such model or version", 408: "the body did not arrive in time (the connection is closed)",
           413: "too large: the body, an image, the pixels or the number of images",
           415: "the body is of a type this operation does not take",
           503: "unavailable for now: no model is loaded, or the worker is full; retry after Retry-After"}
# what every request with a body may be refused for (service.body), before anything reads it
BODY_ERRORS = {400: ["bad_request"], 408: ["request_timeout"], 413: ["payload_too_large"], 503: ["overloaded"]}
UPLOAD_ERRORS = {400: ["missing_image", "empty_image", "invalid_image"],
                 413: ["image_too_large", "too_many_pixels", "too_many_images"],
                 415: ["unsupported_media_type"], 503: ["no_model"]}
INFER_ERRORS = {400: ["invalid_json", "invalid_tensor", "invalid_shape", "invalid_datatype", "invalid_binary_data",
                      "unknown_input", "unknown_output"],
                413: ["too_many_images"], 415: ["unsupported_media_type"]}


def description(config: Config) -> dict:
    """The OpenAPI 3.1 document (a dict ready for JSON) for a service running with ``config``."""
    paths: dict = {}
    for path, method, op in operations(config):
        # unique and stable, for client generators: "post_v2_models_name_infer"
        op["operationId"] = re.sub(r"[^a-z0-9]+", "_", f"{method} {path if path != '/' else 'page'}").strip("_")
        paths.setdefault(path, {})[method] = op
    return {"openapi": "3.1.0", "info": info(config), "servers": [{"url": "/"}], "tags": TAGS,
            "paths": paths, "components": components()}


TAGS = [{"name": "digits", "description": "read handwritten digits from images"},
        {"name": "probes", "description": "health probes and metrics"},
        {"name": "v2", "description": "the Open Inference Protocol (KServe V2, REST), with Triton's binary "
                                      "tensor extension"},
        {"name": "pages", "description": "pages for people, and this description"}]


def info(config: Config) -> dict:
    key = ("API_KEY is set on this server: operations marked with a lock need it, sent as "
           "`Authorization: Bearer <key>` or `X-API-Key: <key>`." if config.api_key else
           "API_KEY is not set on this server, so every operation is open; when it is set, everything that runs "
           "a model, loads a version or describes versions needs it.")
    return {"title": "mnist-serving", "version": "1",
            "description": (
                "Handwritten digits in, answers out. Every error, on every route, is `{\"error\": <message>, "
                "\"code\": <machine code>}` with a JSON Content-Type. Every response carries `X-Request-ID` "
                f"and `traceparent`. {key}\n\nLimits on this server: a body of at most {config.max_upload_bytes} "
                f"bytes (MAX_UPLOAD_BYTES), at most {config.max_batch_images} images per request "
                f"(MAX_BATCH_IMAGES), {config.max_image_pixels} decoded pixels per image and "
                f"{config.max_request_pixels} per request. Methods a path does not list get 405 "
                "`method_not_allowed` with `Allow`; unknown paths 404 `not_found`; a malformed request line or "
                "header 400 `bad_request`, an overlong one 414 `uri_too_long` or 431 `headers_too_large`; a bug 500 "
                "`internal_error` (the service log has the traceback).")}


def components() -> dict:
    schemes = {"bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API_KEY>"},
               "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "X-API-Key: <API_KEY>"}}
    return {"schemas": SCHEMAS, "securitySchemes": schemes}


def merged(*tables: dict[int, list[str]]) -> dict[int, list[str]]:
    """Error tables (status -> codes) combined, codes in order and once each."""
    out: dict[int, list[str]] = {}
    for table in tables:
        for status, codes in table.items():
            out.setdefault(status, [])
            out[status] += [c for c in codes if c not in out[status]]
    return dict(sorted(out.items()))


def error(status, codes):
    """The response for ``status``: the error shape, its ``code`` one of ``codes``."""
    headers = {"Retry-After": RETRY_AFTER} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return {"description": f"{MEANING[status]} ({', '.join(f'`{c}`' for c in codes)})", "headers": headers,
            "content": {JSON: {"schema": {"allOf": [ERROR], "properties": {"code": {"enum": codes}}},
                               "example": {"error": MEANING[status], "code": codes[0]}}}}


def body(ref, description, example=None, media=JSON, headers=None):
    """A successful response whose ``media`` body follows schema ``ref`` (a name in SCHEMAS, or a schema)."""
    schema = {"$ref": f"#/components/schemas/{ref}"} if isinstance(ref, str) else ref
    content = {"schema": schema, **({"example": example} if example is not None else {})}
    return {"description": description, "headers": headers or {}, "content": {media: content}}


def operation(tag, summary, description, responses, errors=None, parameters=(), request=None, keyed=False):
    """An operation: ``responses`` (status -> response) plus ``errors`` (status -> codes); with ``keyed``
    it needs the API key, and may answer 401. Every response gets the headers every response carries."""
    errors = merged(errors or {}, {401: ["unauthorized"]} if keyed else {})
    out = {"tags": [tag], "summary": summary, "description": description,
           "parameters": [*parameters, *COMMON_HEADERS],
           "responses": {**{str(s): r for s, r in responses.items()},
                         **{str(s): error(s, codes) for s, codes in errors.items()}}}
    for response in out["responses"].values():
        response["headers"] = {**response["headers"], "X-Request-ID": REQUEST_ID, "traceparent": TRACEPARENT}
    if request is not None:
        out["requestBody"] = request
    if keyed:
        out["security"] = [{"bearer": []}, {"apiKey": []}]
    return out


def guarded(config, endpoint, path):
    """Whether ``endpoint`` at ``path`` needs the API key on this server (as security.authorise decides)."""
    if not config.api_key or endpoint in security.OPEN_ENDPOINTS:
        return False
    return not (endpoint == "v2.model_ready" and "{version}" not in path)


def image_upload(config):
    part = {"type": "string", "format": "binary"}
    file_example = {"summary": "examples/digit.png from the repository, a 28x28 greyscale 7",
                    "externalValue": "examples/digit.png"}
    return {"required": True, "description": (
        f"One image as the raw body, or up to {config.max_batch_images} as multipart file parts named `image` "
        "(a batch: one answer per image, in order). PNG, JPEG, GIF, BMP, TIFF or WebP, in any mode."),
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["image"], "properties": {"image": {
                    "type": "array", "items": part, "minItems": 1,
                    "description": f"one file part per image (with a filename), at most {config.max_batch_images}"}}},
                "encoding": {"image": {"contentType": "image/*, application/octet-stream"}},
                "examples": {"digit": {**file_example, "description": "curl -F image=@examples/digit.png"}}},
            "image/*": {"schema": part, "examples": {"photo": {
                "summary": "examples/photo.jpg from the repository, a phone photo of a 2",
                "description": "curl --data-binary @examples/photo.jpg -H 'Content-Type: image/jpeg'",
                "externalValue": "examples/photo.jpg"}}},
            "application/octet-stream": {"schema": part}}}


def infer_body():
    one = [255 if 4 <= i // 28 < 24 and 13 <= i % 28 < 15 else 0 for i in range(784)]  # a stroke: a "1"
    example = {"id": "r1", "inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 784], "data": one}],
               "outputs": [{"name": "label"}]}
    return {"required": True, "description": (
        "A V2 inference request. With Triton's binary tensor extension the body is that JSON followed by the raw "
        "little-endian tensor (the input's `parameters.binary_data_size` gives its size instead of `data`), and "
        "the `Inference-Header-Content-Length` header gives the JSON's length. No Content-Type is needed; "
        "image and multipart bodies are refused (415: send images to /predict)."),
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/InferenceRequest"},
                           "examples": {"label": {"summary": "a UINT8 [1, 784] image of a 1; only the label",
                                                  "value": example}}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


PREDICTED = {"model": {"name": "mnist", "version": "6"}, "predictions": [
    {"status": "ok", "digit": 7, "confidence": 0.999999,
     "probabilities": [0.0, 0.0, 1e-06, 0.0, 0.0, 0.0, 0.0, 0.999999, 0.0, 0.0]}]}
READ = {"model": {"name": "mnist", "version": "6"}, "readings": [
    {"text": "72", "status": "ok", "confidence": 0.999437,
     "digits": [{"digit": 7, "status": "ok", "confidence": 1.0, "box": [42, 46, 56, 70]},
                {"digit": 2, "status": "ok", "confidence": 0.999437, "box": [148, 44, 54, 74]}]}]}
INFERRED = {"model_name": "mnist", "model_version": "5", "id": "r1",
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [1]}]}


def operations(config):
    """``(path, method, operation)`` for every route the service answers (but the automatic HEAD, OPTIONS)."""
    def op(endpoint, path, *args, **kwargs):
        return operation(*args, keyed=guarded(config, endpoint, path), **kwargs)

    uploads = merged(BODY_ERRORS, UPLOAD_ERRORS)
    yield "/predict", "post", op(
        "predict.predict", "/predict", "digits", "One answer per image",
        "The digit in each image, with a status saying what the service saw (docs/answers.md): `ok`, "
        "`uncertain`, `no_digit`, `not_a_digit` or `several_digits`, and calibrated probabilities.",
        {200: body("Predictions", "one prediction per image, in the order sent", PREDICTED)}, uploads,
        request=image_upload(config))
    yield "/read", "post", op(
        "read.read", "/read", "digits", "The number written in each image",
        "Each image read digit by digit, left to right, with a box per digit; the reading's status is its "
        "worst digit's.", {200: body("Readings", "one reading per image, in the order sent", READ)}, uploads,
        request=image_upload(config))
    yield from probes(op)
    yield from v2(op)
    for path, endpoint, summary in (("/", "page.index", "The drawing page"),
                                    ("/docs", "apidocs.docs", "This description, for people")):
        yield path, "get", op(endpoint, path, "pages", summary, "A self-contained HTML page.",
                              {200: body({"type": "string"}, "the page", media="text/html")})
    yield "/openapi.json", "get", op(
        "apidocs.openapi", "/openapi.json", "pages", "This description", "The OpenAPI 3.1 description of this "
        "server: its operations, limits and whether it needs the API key.",
        {200: body({"type": "object"}, "the OpenAPI document")})


def probes(op):
    yield "/health", "get", op(
        "health.ready", "/health", "probes", "Readiness",
        "200 while a model that passed its self-check serves; lists the versions on disk that were refused.",
        {200: body("Health", "a model is serving"), 503: body("Unavailable", "no model is serving",
                                                              headers={})})
    yield "/health/live", "get", op(
        "health.live", "/health/live", "probes", "Liveness", "200 while the process is up.",
        {200: body(obj_const("status", "alive"), "alive", {"status": "alive"})})
    yield "/metrics", "get", op(
        "health.metrics", "/metrics", "probes", "Prometheus metrics",
        "The Prometheus text format, summed over the server's workers.",
        {200: body({"type": "string"}, "the metrics", media="text/plain")})


def obj_const(name, value, *more):
    return {"type": "object", "required": [name, *more], "properties": {name: {"const": value}}}


def v2(op):
    """The Open Inference Protocol's routes, each with and without ``/versions/{version}``."""
    yield "/v2", "get", op("v2.server_metadata", "/v2", "v2", "Server metadata", "The server's name, version and "
                           "protocol extensions.", {200: body("ServerMetadata", "server metadata")})
    yield "/v2/health/live", "get", op("v2.live", "/v2/health/live", "v2", "Liveness", "As /health/live.",
                                       {200: body(obj_const("live", True), "alive", {"live": True})})
    not_ready = {"allOf": [obj_const("ready", False), {"$ref": "#/components/schemas/Error"}]}
    yield "/v2/health/ready", "get", op(
        "v2.ready", "/v2/health/ready", "v2", "Readiness", "As /health.",
        {200: body(obj_const("ready", True), "a model is serving", {"ready": True}),
         503: body(not_ready, "no model is serving (`code` is `no_model`)")})
    for base, params in (("/v2/models/{name}", [NAME]), ("/v2/models/{name}/versions/{version}", [NAME, VERSION])):
        versioned = len(params) == 2
        which = "that version, if it is still on disk" if versioned else "the serving version"
        unavailable = {} if versioned else {503: ["no_model"]}
        not_found = {404: ["model_not_found", "version_not_found"] if versioned else ["model_not_found"]}
        yield base, "get", op(
            "v2.model_metadata", base, "v2", "Model metadata", f"The model's versions on disk, inputs and outputs "
            f"({which}).", {200: body("ModelMetadata", "model metadata")}, merged(not_found, unavailable),
            parameters=params)
        yield base + "/ready", "get", op(
            "v2.model_ready", base + "/ready", "v2", "Model readiness", f"200 when {which} is ready to serve.",
            {200: body("ModelReady", "ready")}, merged(not_found, unavailable), parameters=params)
        binary = body("InferenceResponse", "the outputs", INFERRED)
        binary["content"]["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
        binary["headers"] = {"Inference-Header-Content-Length": {
            "description": "with binary outputs (application/octet-stream): the length of the JSON that "
                           "precedes them", "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
        yield base + "/infer", "post", op(
            "v2.infer", base + "/infer", "v2", "Inference", f"Runs {which} on JSON or binary tensors: `image`, "
            "FP32 or FP64 pixels in [0, 1] or UINT8 0-255, shape [n, 784] or [n, 28, 28]. The tensors go to "
            "the model as they are (send photos to /predict).", {200: binary},
            merged(BODY_ERRORS, INFER_ERRORS, not_found, unavailable), parameters=[*params, BINARY_LENGTH],
            request=infer_body())
