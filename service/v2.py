"""The Open Inference Protocol (KServe V2, REST) that KServe, MLServer and Triton share.

Existing V2 clients (tritonclient, KServe's InferenceRESTClient, MLServer's
tools) work unchanged against these routes:

    GET  /v2                                        server metadata
    GET  /v2/health/live, /v2/health/ready          probes (same meaning as /health/live, /health)
    GET  /v2/models/<name>[/versions/<v>]           model metadata
    GET  /v2/models/<name>[/versions/<v>]/ready     model readiness
    POST /v2/models/<name>[/versions/<v>]/infer     inference on JSON or binary tensors (see service.tensors)

Without a version, a request goes to the serving model (the one /health
reports); with one, to that version if it is still on disk. Errors keep the
service's shape, ``{"error", "code"}``, whose ``error`` is what the protocol
asks for. The API key, limits, request IDs and metrics apply as on /predict;
probes and server metadata stay open (:mod:`service.security`).
"""
import re

from flask import Blueprint, Response, g, request

import neuralnet
from service import binary_tensors, tensors
from service.errors import ApiError
from service.inference import classify, model_version, serving_model
from service.state import state

bp = Blueprint("v2", __name__, url_prefix="/v2")

SERVER_NAME = "mnist-serving"
PLATFORM = "numpy_mlp"
INPUTS = [{"name": tensors.INPUT, "datatype": "FP32", "shape": [-1, 784]}]
VERSION = re.compile(r"[1-9][0-9]{0,17}")  # ASCII digits only: str.isdigit() also takes "²"
OUTPUTS = [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
           {"name": "label", "datatype": "INT64", "shape": [-1]}]


@bp.get("")
def server_metadata():
    return {"name": SERVER_NAME, "version": neuralnet.__version__, "extensions": ["binary_tensor_data"]}


@bp.get("/health/live")
def live():
    return {"live": True}


@bp.get("/health/ready")
def ready():
    store = state().store
    if store.current is None:
        return {"ready": False, "error": store.reason, "code": "no_model"}, 503
    return {"ready": True}


def model_at(name, version):
    """The model a /v2/models/<name>[/versions/<v>] URL names; 404 or 503 if there is none."""
    store = state().store
    if name != store.name:
        raise ApiError(404, "model_not_found", f"unknown model {name!r}; this service serves {store.name!r}")
    if version is None:
        return serving_model()
    if not VERSION.fullmatch(version):
        raise ApiError(404, "version_not_found", "version must be a positive integer")
    return model_version(int(version))


@bp.get("/models/<name>", defaults={"version": None})
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name, version):
    model_at(name, version)
    store = state().store
    return {"name": name, "versions": [str(v) for v in store.available()], "platform": PLATFORM,
            "inputs": INPUTS, "outputs": OUTPUTS}


@bp.get("/models/<name>/ready", defaults={"version": None})
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name, version):
    model = model_at(name, version)
    return {"name": name, "version": str(model.version), "ready": True}


@bp.post("/models/<name>/infer", defaults={"version": None})
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name, version):
    model = model_at(name, version)
    if request.mimetype.startswith(("multipart/", "image/")):
        # tritonclient sends no Content-Type and curl -d sends a form type: judge the body, not the header
        raise ApiError(415, "unsupported_media_type", "infer takes a JSON request body; POST image files "
                                                      "to /predict")
    body = request.get_data(cache=False)
    ext = state()
    ext.metrics.upload_bytes.inc(len(body))
    header, binary = binary_tensors.split(body, request.headers.get(binary_tensors.HEADER))
    req = tensors.parse_request(header, ext.config.max_batch_images, binary)
    probabilities, labels = classify(model, req.x)
    out, json_length = tensors.encode_response(model, req.id or g.request_id, req.outputs, probabilities, labels)
    if json_length is None:
        return Response(out, mimetype="application/json")
    return Response(out, mimetype="application/octet-stream", headers={binary_tensors.HEADER: str(json_length)})
