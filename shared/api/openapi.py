"""The OpenAPI 3.1 document of the HTTP API, generated from the same models that validate."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from shared.models import (
    Accepted,
    DraftRequest,
    DraftResult,
    ErrorResponse,
    ExportRequest,
    ExportResult,
    ForwardRequest,
    Health,
    MoveRequest,
    MoveResult,
    OperationStatus,
    ReplyRequest,
    ReplyResult,
    SendRequest,
    SendResult,
)

VERSION = "0.1.0"
_REF = "#/components/schemas/{name}"
# Error statuses each mail route may answer, with their codes (shared/errors.py; docs/api.md).
_ERRORS = {
    "400": "validation_failed: `details` names each bad field",
    "401": "unauthorized (missing or wrong function key, or a missing, wrong or stale request "
    "signature on a connection that requires signed requests) or reauth_required (with "
    "signInUrl or adminCommand)",
    "403": "sender_not_allowed, send_as_denied (with the Exchange permissions to grant), "
    "send_on_behalf_denied (with the Set-Mailbox -GrantSendOnBehalfTo grant) or access_denied",
    "404": "unknown_connection, mailbox_not_found, message_not_found or folder_not_found",
    "409": "idempotency_conflict (this idempotency key was used with another payload) or "
    "draft_already_sent (draftId names a message that is no longer a draft)",
    "413": "payload_too_large",
    "429": "throttled (see Retry-After)",
    "500": "internal_error (the operationId is in the logs) or token_cache_too_large",
    "501": "not_implemented (connection mode not available yet)",
    "502": "graph_error, auth_failed, attachment_fetch_failed, archive_failed, outcome_unknown "
    "or sent_copy_missing (sent, but its Sent Items copy never came: not filed)",
    "503": "graph_unavailable, secrets_unavailable or storage_unavailable (see Retry-After); "
    "`pending` appears only in a status: Exchange has not filed a sent mail's copy yet",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_SIGNATURE_HEADERS = [
    {
        "name": "Signature-Input",
        "in": "header",
        "schema": {"type": "string"},
        "description": 'RFC 9421: covered `("@method" "@path" "content-digest")` plus '
        '`"idempotency-key"` when that header is sent; `created`, `nonce` (single use) and '
        "`keyid` (the connection name); `alg` `hmac-sha256` (docs/security.md).",
    },
    {
        "name": "Signature",
        "in": "header",
        "schema": {"type": "string"},
        "description": "RFC 9421: HMAC-SHA256 with the connection's signing key.",
    },
    {
        "name": "Content-Digest",
        "in": "header",
        "schema": {"type": "string"},
        "description": "RFC 9530: `sha-256=:<base64>:` of the exact body (also an empty one).",
    },
]
_CALLBACKS = {
    "operationFinished": {
        "{$request.body#/callbackUrl}": {
            "post": {
                "summary": "The final status (and `parked`) of a queued operation, signed",
                "description": "Sent when the request had a callbackUrl (async/auto). Verify "
                "its RFC 9421 signature (keyid = the connection name) before trusting the body; "
                "up to 4 tries on 429, 5xx and network errors; redirects are not followed.",
                "parameters": [{**h, "required": True} for h in _SIGNATURE_HEADERS],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/OperationStatus"}
                        }
                    },
                },
                "responses": {
                    "2XX": {
                        "description": "Received; anything else is retried "
                        "(429, 5xx) or recorded as failed."
                    }
                },
            }
        }
    }
}


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=ref)}}}


def _mail_route(summary: str, request: str, result: str, status: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {
            "description": "Done (mode sync, or auto that ran now).",
            "content": _json(result),
        },
        "202": {
            "description": "Accepted for the queue (mode async, or auto that fell back); poll "
            "statusUrl or wait for the callback.",
            "content": _json("Accepted"),
            "headers": {
                "Location": {"description": "The status URL.", "schema": {"type": "string"}}
            },
        },
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
                    "description": "Same as the body's idempotencyKey (the header wins).",
                },
                *({**h, "required": False} for h in _SIGNATURE_HEADERS),
            ],
            "requestBody": {"required": True, "content": _json(request)},
            "responses": responses,
            "callbacks": _CALLBACKS,
        }
    }


def _export_route() -> dict[str, Any]:
    """The mail route, whose sync answer is the .eml itself unless archiveUrl is given."""
    route = _mail_route("Export a mail as .eml", "ExportRequest", "ExportResult", "200")
    done = route["post"]["responses"]["200"]
    done["description"] = (
        "Without archiveUrl: the message's MIME (RFC 5322), streamed from Graph whatever its "
        "size, with Content-Disposition naming the file after the subject and Content-Length "
        "when Graph gave it (chunked otherwise). Errors come before the first byte; should "
        "Graph fail after it, the connection is cut: fewer bytes than Content-Length (or no "
        "last chunk) means the file is incomplete. With archiveUrl: where it was PUT, its size "
        "and SHA-256."
    )
    done["content"] = {
        "message/rfc822": {"schema": {"type": "string", "contentMediaType": "message/rfc822"}},
        **_json("ExportResult"),
    }
    return route


def _operations_route() -> dict[str, Any]:
    return {
        "get": {
            "summary": "The status of a queued or finished operation",
            "operationId": "getOperation",
            "security": [{"functionKey": []}, {"functionKeyQuery": []}],
            "parameters": [
                {
                    "name": "operationId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "responses": {
                "200": {"description": "The status.", "content": _json("OperationStatus")},
                "401": {"description": "unauthorized (function key)"},
                "404": {
                    "description": "operation_not_found: never accepted, or past the retention",
                    "content": _json("ErrorResponse"),
                },
                "503": {
                    "description": "storage_unavailable",
                    "content": _json("ErrorResponse"),
                    "headers": _RETRY_AFTER,
                },
            },
        }
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    models = [
        SendRequest,
        MoveRequest,
        DraftRequest,
        ReplyRequest,
        ForwardRequest,
        ExportRequest,
        SendResult,
        MoveResult,
        DraftResult,
        ReplyResult,
        ExportResult,
        Accepted,
        OperationStatus,
        ErrorResponse,
        Health,
    ]
    _, components = msgspec.json.schema_components(models, ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "exchange-processor",
            "version": VERSION,
            "description": "Send, reply to, forward, move, draft and export Exchange Online mail "
            "through Microsoft Graph. "
            "Errors share one shape: ErrorResponse.",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/mail/send": _mail_route("Send a mail", "SendRequest", "SendResult", "200"),
            "/mail/move": _mail_route("Move a mail", "MoveRequest", "MoveResult", "200"),
            "/mail/draft": _mail_route(
                "Create or update a draft", "DraftRequest", "DraftResult", "201"
            ),
            "/mail/reply": _mail_route(
                "Reply to a mail in its conversation", "ReplyRequest", "ReplyResult", "200"
            ),
            "/mail/forward": _mail_route(
                "Forward a mail in its conversation", "ForwardRequest", "ReplyResult", "200"
            ),
            "/mail/export": _export_route(),
            "/operations/{operationId}": _operations_route(),
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
