"""Write the server's OpenAPI document: inputs from the task's fields, outputs from a prediction.

The request schema follows the task's fields (and optional fields) exactly. What a prediction
holds differs between tasks and no task declares it, so its schema is read off a prediction
the loaded model made at start-up (the same call that warms the model up), with that
prediction as the example.
"""

from __future__ import annotations

from typing import Any

from annotune.core.serve.limits import ServeLimits
from annotune.core.serve.payloads import TaskInputs

OPENAPI_VERSION = "3.1.0"


def schema_of(value: Any) -> dict[str, Any]:
    """Return a JSON schema that ``value`` (parsed JSON) satisfies, types only."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if value is None:
        return {"type": "null"}
    if isinstance(value, list | tuple):
        schema: dict[str, Any] = {"type": "array"}
        if value:
            schema["items"] = schema_of(value[0])
        return schema
    if isinstance(value, dict):
        return {"type": "object", "properties": {str(k): schema_of(v) for k, v in value.items()},
                "required": [str(k) for k in value]}
    return {}


def item_schema(inputs: TaskInputs) -> dict[str, Any]:
    """Return the schema of one input item of the task."""
    properties: dict[str, Any] = {name: {"type": "string"} for name in inputs.fields}
    for name in inputs.optional_fields:
        properties[name] = {"type": "array", "items": {"type": "string"},
                            "description": "optional: the text's own tokens, in order"}
    mapping = {"type": "object", "properties": properties, "required": list(inputs.fields),
               "additionalProperties": False}
    if len(inputs.fields) == 1:
        return {"oneOf": [{"type": "string", "description": f"the {inputs.fields[0]}"},
                          mapping]}
    return mapping


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(metadata: dict[str, Any], inputs: TaskInputs, sample: dict[str, Any],
                     limits: ServeLimits) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of a server for the bundle that ``metadata`` describes."""
    errors = {
        "400": _error_response("the body is not JSON, or an input is not what the task reads "
                               "(the message names it, e.g. inputs[3].question)"),
        "413": _error_response(f"the body is over {limits.max_body_bytes} bytes or holds over "
                               f"{limits.max_items} inputs"),
        "429": _error_response(f"over {limits.max_queue} inputs are waiting: retry after the "
                               "Retry-After header's seconds"),
        "503": _error_response("the server is stopping"),
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": f"annotune: {metadata['title']}",
                 "version": str(metadata.get("annotune_version") or "0"),
                 "description": f"Predictions of the {metadata['task']} bundle "
                                f"{metadata['model']['sha256'][:12]} (model sha256)."},
        "paths": {
            "/predict": {"post": {
                "summary": "Predict one input or a list of inputs",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
                "responses": {"200": {"description": "one prediction per input, in order",
                                      "content": {"application/json": {"schema": {
                                          "$ref": "#/components/schemas/PredictResponse"}}}},
                              **errors}}},
            "/health": {"get": {"summary": "Say whether the server takes requests",
                                "responses": {"200": {"description": "ready"},
                                              "503": _error_response("stopping")}}},
            "/metadata": {"get": {"summary": "Describe the bundle: task, labels, model hash",
                                  "responses": {"200": {"description": "the bundle"}}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {"schemas": {
            "Item": item_schema(inputs),
            "Prediction": {**schema_of(sample), "example": sample},
            "PredictRequest": {"oneOf": [
                {"type": "object", "required": ["inputs"], "additionalProperties": False,
                 "properties": {"inputs": {"type": "array", "minItems": 1,
                                           "maxItems": limits.max_items,
                                           "items": {"$ref": "#/components/schemas/Item"}}}},
                {"type": "object", "required": ["input"], "additionalProperties": False,
                 "properties": {"input": {"$ref": "#/components/schemas/Item"}}}]},
            "PredictResponse": {"oneOf": [
                {"type": "object", "required": ["predictions"], "properties": {
                    "predictions": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Prediction"}}}},
                {"type": "object", "required": ["prediction"], "properties": {
                    "prediction": {"$ref": "#/components/schemas/Prediction"}}}]},
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}}},
        }},
    }
