"""The OpenAPI document is generated from the request models and describes security and errors."""

from shared.openapi import openapi_document


def test_document_is_openapi_31_with_the_five_paths():
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/mail/send",
        "/mail/move",
        "/mail/draft",
        "/health",
        "/openapi.json",
    }


def test_request_schemas_come_from_the_models_with_wire_names():
    schemas = openapi_document()["components"]["schemas"]
    send = schemas["SendRequest"]
    assert {"connection", "from"} <= set(send["required"])
    assert "saveToSentItems" in send["properties"] and "replyTo" in send["properties"]
    assert send["properties"]["importance"]["enum"] == ["low", "normal", "high"]
    assert "contentEncoding" in str(schemas["Attachment"]["properties"]["contentBytes"])
    assert "createMissingFolders" in schemas["MoveRequest"]["properties"]


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
