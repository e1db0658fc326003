"""The OpenAPI 3.1 description of the API, written by hand (six routes)."""

from __future__ import annotations

from typing import Any

from moma_cli import __version__

_ERROR = {"description": "A JSON error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{schema}"}}}}


_SCHEMAS: dict[str, Any] = {
    "PredictRequest": {
        "type": "object", "required": ["inputs"],
        "properties": {"inputs": {"type": "array", "minItems": 1, "items": {"oneOf": [
            {"type": "array", "description": "feature values in training column order"},
            {"type": "object", "description": "feature name -> value "
                                              "(models trained with feature names)"},
        ]}}, "request_key": {"type": ["string", "integer"], "description": (
            "keeps this client on one side of a canary split (the X-Request-Key header "
            "wins)")}},
        "example": {"inputs": [[5.1, 3.5, 1.4, 0.2]]},
    },
    "PredictResponse": {
        "type": "object", "required": ["model", "version", "predictions"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": ["integer", "null"]},
            "stage": {"type": ["string", "null"]},
            "role": {"enum": ["primary", "canary", "shadow"],
                     "description": "which of the model's served refs answered"},
            "predictions": {"type": "array"},
            "probabilities": {"type": "array", "items": {"type": "array"},
                              "description": "present when the model has predict_proba"},
        },
    },
    "Models": {"type": "object", "properties": {"models": {"type": "array", "items": {
        "type": "object", "properties": {
            "ref": {"type": "string"}, "name": {"type": "string"},
            "version": {"type": ["integer", "null"]}, "stage": {"type": ["string", "null"]},
            "role": {"enum": ["primary", "canary", "shadow"]},
            "percent": {"type": "number", "description": "a canary's share of the requests"},
            "oid": {"type": "string"}, "metadata": {"type": "object"},
            "features": {"type": ["array", "null"], "items": {"type": "string"}},
            "n_features": {"type": ["integer", "null"]}, "probabilities": {"type": "boolean"},
        }}}}},
    "ReloadReport": {"type": "object", "properties": {
        "switched": {"type": "array", "items": {"type": "object", "properties": {
            "spec": {"type": "string"}, "old_version": {"type": ["integer", "null"]},
            "new_version": {"type": ["integer", "null"]}}}},
        "added": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "string"}}}},
    "Error": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "hint": {"type": "string"}}},
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "moma serve", "version": __version__,
                 "description": "Predictions from models registered with moma."},
        "paths": {
            "/v1/models/{target}/predict": {"post": {
                "summary": "Predict with a served model",
                "parameters": [{
                    "name": "target", "in": "path", "required": True,
                    "schema": {"type": "string"},
                    "description": "NAME, NAME:VERSION or NAME:STAGE of a served model"}, {
                    "name": "X-Request-Key", "in": "header", "schema": {"type": "string"},
                    "description": "keeps this client on one side of a canary split"}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
                "responses": {"200": _json("PredictResponse", "Predictions"),
                              "400": _ERROR, "404": _ERROR, "413": _ERROR, "422": _ERROR},
            }},
            "/v1/models": {"get": {"summary": "The served models",
                                   "responses": {"200": _json("Models", "Served models")}}},
            "/v1/admin/reload": {"post": {
                "summary": "Re-resolve stages now and switch models whose tag moved",
                "description": "Bound beyond loopback: needs the bearer token in the "
                               "server's MOMA_SERVE_ADMIN_TOKEN, and is off without it.",
                "security": [{}, {"adminToken": []}],
                "responses": {"200": _json("ReloadReport", "What changed"),
                              "401": _ERROR, "403": _ERROR}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {
                "description": "The server is up"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {
                "description": "OpenAPI 3.1"}}}},
        },
        "components": {"schemas": _SCHEMAS, "securitySchemes": {
            "adminToken": {"type": "http", "scheme": "bearer"}}},
    }
