"""The OpenAPI 3.1 document of the HTTP API, generated from the same models that validate."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from shared.models import (
    DraftRequest,
    DraftResult,
    ErrorResponse,
    Health,
    MoveRequest,
    MoveResult,
    SendRequest,
    SendResult,
)

VERSION = "0.1.0"
_REF = "#/components/schemas/{name}"
# Error statuses each mail route may answer (DESIGN §3), with what they mean.
_ERRORS = {
    "400": "validation_failed: `details` names each bad field",
    "401": "unauthorized (missing or wrong function key) or reauth_required (with signInUrl)",
    "403": "sender_not_allowed, send_as_denied (with the Exchange permissions to grant) or "
    "access_denied",
    "404": "unknown_connection, mailbox_not_found, message_not_found or folder_not_found",
    "413": "payload_too_large",
    "429": "throttled (see Retry-After)",
    "500": "internal_error (the operationId is in the logs)",
    "501": "not_implemented (connection mode not available yet)",
    "502": "graph_error, auth_failed, attachment_fetch_failed or outcome_unknown",
    "503": "graph_unavailable or secrets_unavailable (see Retry-After)",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=ref)}}}


def _mail_route(summary: str, request: str, result: str, status: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {"description": "Done.", "content": _json(result)},
    }
    for code, description in _ERRORS.items():
        item: dict[str, Any] = {"description": description, "content": _json("ErrorResponse")}
        if code in ("429", "503"):
            item["headers"] = _RETRY_AFTER
        responses[code] = item
    return {
        "post": {
            "summary": summary,
            "operationId": summary.split()[0].lower() + request.removesuffix("Request"),
            "security": [{"functionKey": []}, {"functionKeyQuery": []}],
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "Same as the body's idempotencyKey.",
                }
            ],
            "requestBody": {"required": True, "content": _json(request)},
            "responses": responses,
        }
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    models = [
        SendRequest,
        MoveRequest,
        DraftRequest,
        SendResult,
        MoveResult,
        DraftResult,
        ErrorResponse,
        Health,
    ]
    _, components = msgspec.json.schema_components(models, ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "exchange-processor",
            "version": VERSION,
            "description": "Send, move and draft Exchange Online mail through Microsoft Graph. "
            "Errors share one shape: ErrorResponse.",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/mail/send": _mail_route("Send a mail", "SendRequest", "SendResult", "200"),
            "/mail/move": _mail_route("Move a mail", "MoveRequest", "MoveResult", "200"),
            "/mail/draft": _mail_route("Create a draft", "DraftRequest", "DraftResult", "201"),
            "/health": {
                "get": {
                    "summary": "Liveness (anonymous; says nothing about dependencies)",
                    "operationId": "health",
                    "security": [],
                    "responses": {"200": {"description": "Alive.", "content": _json("Health")}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }
