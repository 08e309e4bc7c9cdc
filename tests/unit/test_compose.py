"""Building the Graph message from a request (pure)."""

import json

from shared.api.validation import decode
from shared.models import SendRequest
from shared.operations.compose import OPERATION_ID_PROPERTY, build_message


def test_message_carries_recipients_body_headers_and_operation_id():
    req = decode(
        SendRequest,
        json.dumps(
            {
                "connection": "c",
                "from": "administratie@contoso.test",
                "to": ["a@contoso.test"],
                "cc": [{"address": "b@contoso.test", "name": "B"}],
                "bcc": ["c@contoso.test"],
                "replyTo": ["r@contoso.test"],
                "subject": "S",
                "body": {"contentType": "html", "content": "<b>x</b>"},
                "importance": "high",
                "headers": {"x-docuflow-id": "42"},
            }
        ).encode(),
    )
    msg = build_message(req, "op-1", [])
    assert msg["toRecipients"] == [{"emailAddress": {"address": "a@contoso.test"}}]
    assert msg["ccRecipients"] == [{"emailAddress": {"address": "b@contoso.test", "name": "B"}}]
    assert msg["bccRecipients"][0]["emailAddress"]["address"] == "c@contoso.test"
    assert msg["replyTo"][0]["emailAddress"]["address"] == "r@contoso.test"
    assert msg["body"] == {"contentType": "HTML", "content": "<b>x</b>"}
    assert msg["importance"] == "high"
    assert msg["internetMessageHeaders"] == [{"name": "x-docuflow-id", "value": "42"}]
    assert msg["singleValueExtendedProperties"] == [{"id": OPERATION_ID_PROPERTY, "value": "op-1"}]
    assert OPERATION_ID_PROPERTY.startswith("String {") and OPERATION_ID_PROPERTY.endswith(
        "} Name OperationId"
    )
