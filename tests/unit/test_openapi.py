"""The OpenAPI document is generated from the request models and describes security and errors."""

import json
from pathlib import Path

import msgspec

from shared.api.openapi import openapi_document
from shared.errors import AppError
from shared.models import OperationStatus
from shared.work.record import Operation


def test_document_is_openapi_31_with_the_nine_paths():
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/mail/send",
        "/mail/move",
        "/mail/draft",
        "/mail/reply",
        "/mail/forward",
        "/mail/export",
        "/operations/{operationId}",
        "/health",
        "/openapi.json",
    }


def test_request_schemas_come_from_the_models_with_wire_names():
    schemas = openapi_document()["components"]["schemas"]
    send = schemas["SendRequest"]
    # `from` may be left out on user-mode connections (it defaults to `user`).
    assert send["required"] == ["connection"]
    assert "user" in send["properties"]["from"]["anyOf"][0]["description"]
    assert "saveToSentItems" in send["properties"] and "replyTo" in send["properties"]
    assert send["properties"]["importance"]["enum"] == ["low", "normal", "high"]
    assert "contentEncoding" in str(schemas["Attachment"]["properties"]["contentBytes"])
    assert "createMissingFolders" in schemas["MoveRequest"]["properties"]
    reply = schemas["ReplyRequest"]
    assert reply["required"] == ["connection", "mailbox"]
    assert {"replyAll", "comment", "messageId", "internetMessageId", "sender"} <= set(
        reply["properties"]
    )
    assert {"draftId", "draftInternetMessageId", "categories", "flag"} <= set(send["properties"])
    assert schemas["Flag"]["properties"]["flagStatus"]["enum"] == [
        "notFlagged",
        "flagged",
        "complete",
    ]
    assert "message" in schemas["Attachment"]["properties"]
    operations = {
        path: doc_path["post"]["operationId"]
        for path, doc_path in openapi_document()["paths"].items()
        if "post" in doc_path
    }
    assert len(set(operations.values())) == len(operations)
    move = schemas["MoveRequest"]["properties"]
    assert {"markAsRead", "categories", "replaceCategories", "flag", "copy", "archive"} <= set(move)
    assert "fileTo" in send["properties"] and "archive" in send["properties"]
    assert schemas["FileTo"]["required"] == ["destination"]
    assert "archiveUrl" in schemas["ExportRequest"]["properties"]


def test_the_export_answers_the_eml_or_where_it_was_archived():
    done = openapi_document()["paths"]["/mail/export"]["post"]["responses"]["200"]
    assert set(done["content"]) == {"message/rfc822", "application/json"}
    assert done["content"]["application/json"]["schema"]["$ref"].endswith("/ExportResult")


def test_mail_routes_need_a_function_key_and_document_the_error_shape():
    doc = openapi_document()
    assert doc["components"]["securitySchemes"]["functionKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
    }
    send = doc["paths"]["/mail/send"]["post"]
    assert {"functionKey": []} in send["security"]
    assert send["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )
    assert "Retry-After" in send["responses"]["503"]["headers"]
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_every_reference_resolves():
    doc = openapi_document()
    names = set(doc["components"]["schemas"])
    refs = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    refs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert refs and all(r.rsplit("/", 1)[1] in names for r in refs)


def test_queued_modes_answer_202_with_a_status_url_and_signed_callbacks():
    doc = openapi_document()
    send = doc["paths"]["/mail/send"]["post"]
    accepted = send["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"]["$ref"].endswith("/Accepted")
    assert "Location" in accepted["headers"]
    assert {"operationId", "status", "statusUrl"} <= set(
        doc["components"]["schemas"]["Accepted"]["required"]
    )
    callback = send["callbacks"]["operationFinished"]["{$request.body#/callbackUrl}"]["post"]
    signed = {"Signature-Input", "Signature", "Content-Digest"}
    assert {p["name"] for p in callback["parameters"]} == signed
    assert {p["name"] for p in send["parameters"]} >= signed
    assert "409" in send["responses"]


def test_the_operation_status_route_and_schema_match_what_the_store_answers():
    doc = openapi_document()
    route = doc["paths"]["/operations/{operationId}"]["get"]
    assert route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OperationStatus"
    )
    assert "404" in route["responses"] and {"functionKey": []} in route["security"]
    op = Operation(
        operation_id="op-1",
        kind="send",
        connection="contoso.test",
        status="parked",
        attempts=1,
        created_at="2026-01-01T00:00:00Z",
        error={"code": "reauth_required", "message": "sign in", "signInUrl": "/api/auth/x"},
        sign_in_url="/api/auth/x",
        parked_until="2026-01-04T00:00:00Z",
        callback={"status": "delivered", "attempts": 1, "httpStatus": 204},
    )
    decoded = msgspec.convert(op.public(), OperationStatus)
    assert decoded.status == "parked" and decoded.sign_in_url == "/api/auth/x"
    statuses = doc["components"]["schemas"]["OperationStatus"]["properties"]["status"]["enum"]
    assert set(statuses) == {"accepted", "running", "succeeded", "failed", "parked", "poisoned"}


def _error_codes() -> set[str]:
    """Every code an AppError subclass of the function app can carry."""

    found: set[str] = set()
    pending = [AppError]
    while pending:
        cls = pending.pop()
        found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return found - {"authenticate_failed"}  # the admin command line's own, never over HTTP


def test_every_error_code_is_documented_in_the_openapi_document_and_the_api_guide():
    text = json.dumps(openapi_document())
    guide = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    codes = _error_codes()
    assert len(codes) >= 20
    assert sorted(c for c in codes if c not in text) == []
    assert sorted(c for c in codes if f"`{c}`" not in guide) == []
