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


def _decode(model, **fields):
    return decode(model, json.dumps({"connection": "c", **fields}).encode())


def test_a_send_on_behalf_names_both_and_is_composed_in_the_delegates_mailbox():
    from shared.operations.compose import on_behalf, sending_mailbox

    req = _decode(
        SendRequest,
        **{"from": "administratie@contoso.test"},
        sender="anna@contoso.test",
        to=["k@x.nl"],
    )
    assert on_behalf(req) and sending_mailbox(req) == "anna@contoso.test"
    msg = build_message(req, "op", [], mailbox=sending_mailbox(req))
    assert msg["from"] == {"emailAddress": {"address": "administratie@contoso.test"}}
    assert msg["sender"] == {"emailAddress": {"address": "anna@contoso.test"}}
    plain = _decode(SendRequest, **{"from": "administratie@contoso.test"}, to=["k@x.nl"])
    assert sending_mailbox(plain) == "administratie@contoso.test"
    assert "from" not in build_message(plain, "op", [], mailbox="administratie@contoso.test")
    same = _decode(
        SendRequest, **{"from": "a@contoso.test"}, sender="A@contoso.test", to=["k@x.nl"]
    )
    assert not on_behalf(same) and "sender" not in build_message(
        same, "op", [], mailbox="a@contoso.test"
    )


def test_a_reply_keeps_graphs_recipients_and_subject_unless_given():
    from shared.models import ForwardRequest, ReplyRequest

    reply = _decode(
        ReplyRequest, mailbox="administratie@contoso.test", messageId="m", cc=["b@x.nl"]
    )
    msg = build_message(reply, "op", [], mailbox="administratie@contoso.test")
    assert not {"toRecipients", "ccRecipients", "subject", "bccRecipients", "replyTo"} & set(msg)
    assert msg["singleValueExtendedProperties"][0]["value"] == "op"
    forward = _decode(
        ForwardRequest, mailbox="administratie@contoso.test", messageId="m", to=["b@x.nl"],
        subject="Doorgestuurd", categories=["Dossier"], flag="flagged",
    )  # fmt: skip
    msg = build_message(forward, "op", [], mailbox="administratie@contoso.test")
    assert msg["toRecipients"] == [{"emailAddress": {"address": "b@x.nl"}}]
    assert msg["subject"] == "Doorgestuurd" and msg["categories"] == ["Dossier"]
    assert msg["flag"] == {"flagStatus": "flagged"}


def test_a_drafts_patch_carries_only_what_the_request_gives():
    from shared.models import DraftRequest
    from shared.operations.compose import patch_message

    req = _decode(DraftRequest, **{"from": "a@contoso.test"}, draftId="d", cc=["b@x.nl"])
    patch = patch_message(req, "op", "a@contoso.test")
    assert set(patch) == {"singleValueExtendedProperties", "ccRecipients"}
    full = _decode(
        DraftRequest, **{"from": "a@contoso.test"}, draftId="d", subject="S", importance="high",
        body={"content": "x"}, isReadReceiptRequested=False,
    )  # fmt: skip
    patch = patch_message(full, "op", "a@contoso.test")
    assert patch["subject"] == "S" and patch["importance"] == "high"
    assert patch["body"] == {"contentType": "Text", "content": "x"}
    assert patch["isReadReceiptRequested"] is False
