"""The JSON schemas of the service's request and response bodies, for :mod:`service.openapi`.

Enums come from the code's own names (statuses, tensor names), so the
description cannot drift from what the service says.
"""
from service import answers, tensors


def obj(required, **properties):
    return {"type": "object", "required": list(required), "properties": properties}


def nullable(kind, **more):
    return {"type": [kind, "null"], **more}


PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
PROBABILITIES = {"type": "array", "items": PROBABILITY, "minItems": 10, "maxItems": 10}
READ_STATUSES = [s for s in answers.STATUSES if s != answers.SEVERAL]
SCHEMAS = {
    "Error": obj(["error", "code"], error={"type": "string", "description": "what went wrong, for people"},
                 code={"type": "string", "description": "what went wrong, for programs"}),
    "Model": obj(["name", "version"], name={"type": "string"}, version={"type": "string"}),
    "Prediction": obj(
        ["status", "digit", "confidence", "probabilities"],
        status={"enum": list(answers.STATUSES), "description": "what the service saw (docs/answers.md)"},
        digit=nullable("integer", minimum=0, maximum=9, description="null unless status is ok or uncertain"),
        confidence=nullable("number", minimum=0, maximum=1, description="calibrated; null for no_digit"),
        probabilities={**PROBABILITIES, "type": ["array", "null"]},
        message={"type": "string", "description": "for several_digits: send the image to /read"}),
    "Predictions": obj(["model", "predictions"], model={"$ref": "#/components/schemas/Model"},
                       predictions={"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}),
    "Digit": obj(["digit", "status", "confidence", "box"],
                 digit=nullable("integer", minimum=0, maximum=9), confidence=PROBABILITY,
                 status={"enum": [answers.OK, answers.UNCERTAIN, answers.NOT_A_DIGIT]},
                 box={"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
                      "description": "[x, y, width, height] in the uploaded picture's pixels"}),
    "Reading": obj(["text", "status", "confidence", "digits"],
                   text={"type": "string", "pattern": r"^[0-9?]*$", "description": "? where a mark is not a digit"},
                   status={"enum": READ_STATUSES, "description": "its worst digit's"},
                   confidence=nullable("number", minimum=0, maximum=1),
                   digits={"type": "array", "items": {"$ref": "#/components/schemas/Digit"}},
                   message={"type": "string"}),
    "Readings": obj(["model", "readings"], model={"$ref": "#/components/schemas/Model"},
                    readings={"type": "array", "items": {"$ref": "#/components/schemas/Reading"}}),
    "Health": obj(["status", "model", "rejected_versions", "metrics"], status={"const": "ok"},
                  model=obj(["name", "version", "loaded_at", "probe_checked"], name={"type": "string"},
                            version={"type": "string"}, loaded_at={"type": "string", "format": "date-time"},
                            test_accuracy=nullable("number"), probe_checked={"type": "boolean"}),
                  rejected_versions={"$ref": "#/components/schemas/Rejected"}, metrics={"type": "string"}),
    "Unavailable": obj(["status", "reason", "error", "code", "rejected_versions", "metrics"],
                       status={"const": "unavailable"}, reason={"type": "string"}, error={"type": "string"},
                       code={"const": "no_model"}, rejected_versions={"$ref": "#/components/schemas/Rejected"},
                       metrics={"type": "string"}),
    "Rejected": {"type": "array", "items": obj(["version", "reason"], version={"type": "string"},
                                               reason={"type": "string"})},
    "Tensor": obj(["name", "datatype", "shape"], name={"type": "string"}, datatype={"type": "string"},
                  shape={"type": "array", "items": {"type": "integer"}},
                  data={"type": "array", "description": "row-major, flat or nested as shape"},
                  parameters={"type": "object", "properties": {"binary_data_size": {"type": "integer"}}}),
    "InferenceRequest": obj(
        ["inputs"], id={"type": "string", "description": "echoed; default: the request ID"},
        inputs={"type": "array", "minItems": 1, "maxItems": 1, "items": obj(
            ["name", "datatype", "shape"], name={"const": tensors.INPUT},
            datatype={"enum": list(tensors.FLOAT_TYPES + tensors.PIXEL_TYPES),
                      "description": "FP32/FP64: pixels in [0, 1]; UINT8: 0-255"},
            shape={"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 3,
                   "description": "[n, 784] or [n, 28, 28]"},
            data={"type": "array", "description": "n x 784 numbers, flat or nested as shape; absent with binary data"},
            parameters={"type": "object", "properties": {"binary_data_size": {
                "type": "integer", "description": "binary extension: the tensor's bytes follow the JSON"}}})},
        outputs={"type": "array", "items": obj(["name"], name={"enum": list(tensors.OUTPUTS)}, parameters={
            "type": "object", "properties": {"binary_data": {"type": "boolean"}}})},
        parameters={"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}}),
    "InferenceResponse": obj(["model_name", "model_version", "id", "outputs"], model_name={"type": "string"},
                             model_version={"type": "string"}, id={"type": "string"},
                             outputs={"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}}),
    "ServerMetadata": obj(["name", "version", "extensions"], name={"type": "string"}, version={"type": "string"},
                          extensions={"type": "array", "items": {"type": "string"}}),
    "ModelMetadata": obj(["name", "versions", "platform", "inputs", "outputs"], name={"type": "string"},
                         versions={"type": "array", "items": {"type": "string"}}, platform={"type": "string"},
                         inputs={"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
                         outputs={"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}}),
    "ModelReady": obj(["name", "version", "ready"], name={"type": "string"}, version={"type": "string"},
                      ready={"const": True}),
}
