"""Validation of the conversation fields: sender, receipts, categories, flag, item attachments,
drafts by id, and reply/forward requests (every bad field named, all at once)."""

from __future__ import annotations

import json

import pytest

from shared.api.validation import check_categories, check_flag, decode
from shared.errors import Detail, ValidationFailed
from shared.models import DraftRequest, Flag, ForwardRequest, ReplyRequest, SendRequest
from shared.operations.marks import graph_flag, graph_marks

ADMIN = "administratie@contoso.test"
WHEN = {"dateTime": "2026-03-10T17:00:00"}


def flag(**fields) -> dict:
    return {"flagStatus": "flagged", **fields}


def send(**overrides) -> bytes:
    base = {"connection": "contoso.test", "from": ADMIN, "to": ["anna@contoso.test"]}
    base.update(overrides)
    return json.dumps(base).encode()


def answer(**overrides) -> bytes:
    base = {"connection": "contoso.test", "mailbox": ADMIN, "messageId": "AAMkAD=="}
    base.update(overrides)
    return json.dumps(base).encode()


def problems(model, raw: bytes) -> dict[str | None, str]:
    with pytest.raises(ValidationFailed) as exc:
        decode(model, raw)
    assert exc.value.status == 400
    return {d.field: d.message for d in exc.value.details}


def test_marks_decode_and_map_to_graph_properties():
    req = decode(
        SendRequest,
        send(
            sender="anna@contoso.test",
            isReadReceiptRequested=True,
            isDeliveryReceiptRequested=False,
            categories=["Verwerkt", "Klant A"],
            flag={
                "flagStatus": "flagged",
                "startDateTime": {
                    "dateTime": "2026-03-09T09:00:00",
                    "timeZone": "W. Europe Standard Time",
                },
                "dueDateTime": {"dateTime": "2026-03-10T17:00:00", "timeZone": "UTC"},
            },
        ),
    )
    assert req.sender == "anna@contoso.test"
    assert isinstance(req.flag, Flag)
    assert graph_marks(
        categories=req.categories,
        flag=req.flag,
        is_read_receipt_requested=req.is_read_receipt_requested,
        is_delivery_receipt_requested=req.is_delivery_receipt_requested,
    ) == {
        "categories": ["Verwerkt", "Klant A"],
        "flag": {
            "flagStatus": "flagged",
            "startDateTime": {
                "dateTime": "2026-03-09T09:00:00",
                "timeZone": "W. Europe Standard Time",
            },
            "dueDateTime": {"dateTime": "2026-03-10T17:00:00", "timeZone": "UTC"},
        },
        "isReadReceiptRequested": True,
        "isDeliveryReceiptRequested": False,
    }
    assert graph_flag("complete") == {"flagStatus": "complete"}
    assert graph_marks() == {}


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("sender", "anna@contoso.test\r\nBcc: x@evil.test", "sender"),
        ("sender", "not-an-address", "sender"),
        ("categories", ["ok", "Bad\nname"], "categories[1]"),
        ("categories", ["a,b"], "categories[0]"),
        ("categories", ["Verwerkt", "verwerkt"], "categories[1]"),
        ("categories", ["   "], "categories[0]"),
        ("flag", "urgent", "flag"),
        ("flag", {"flagStatus": "later"}, "flag.flagStatus"),
        ("flag", flag(dueDateTime=WHEN), "flag.startDateTime"),
        ("flag", flag(completedDateTime=WHEN), "flag.completedDateTime"),
        ("flag", flag(startDateTime={"dateTime": "tomorrow"}), "flag.startDateTime.dateTime"),
        ("flag", flag(startDateTime={"dateTime": "2026-03-10T17:00:00+01:00"}),
         "flag.startDateTime.dateTime"),
        ("flag", flag(startDateTime={**WHEN, "timeZone": "UTC\r\nX: y"}),
         "flag.startDateTime.timeZone"),
    ],
)  # fmt: skip
def test_each_bad_mark_is_named(field, value, where):
    assert where in problems(SendRequest, send(**{field: value}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("isReadReceiptRequested", "yes"),
        ("isDeliveryReceiptRequested", 1),
        ("categories", "Verwerkt"),
        ("categories", [42]),
        ("categories", ["x" * 256]),
        ("categories", [f"c{i}" for i in range(26)]),
        ("flag", 7),
        ("flag", {"flagStatus": "flagged", "colour": "red"}),
        ("sender", 42),
    ],
)
def test_wrong_types_of_the_new_fields_are_refused_with_their_field(field, value):
    found = problems(SendRequest, send(**{field: value}))
    assert found and all((name or "").startswith(field) for name in found), found


def test_shared_checks_report_into_the_callers_list():
    out: list[Detail] = []
    check_categories("markCategories", ["a", "A"], out)
    check_flag("markFlag", "maybe", out)
    assert [d.field for d in out] == ["markCategories[1]", "markFlag"]


def test_item_attachments_name_a_message_and_nothing_else():
    ok = decode(
        SendRequest,
        send(attachments=[{"message": {"mailbox": ADMIN, "internetMessageId": "<a@b>"}}]),
    )
    assert ok.attachments[0].message is not None and ok.attachments[0].name is None
    found = problems(
        SendRequest,
        send(
            attachments=[
                {"message": {"mailbox": "x\r\n@contoso.test", "messageId": "a"}},
                {"message": {"mailbox": ADMIN}},
                {"message": {"mailbox": ADMIN, "messageId": "a", "internetMessageId": "<b>"}},
                {"message": {"mailbox": ADMIN, "messageId": "a"}, "url": "https://x.test/f"},
                {"message": {"mailbox": ADMIN, "messageId": "a\nb"}},
                {"contentBytes": "aGk="},
            ]
        ),
    )
    assert set(found) == {
        "attachments[0].message.mailbox",
        "attachments[1].message.messageId",
        "attachments[2].message.messageId",
        "attachments[3]",
        "attachments[4].message.messageId",
        "attachments[5].name",
    }


def test_draft_references():
    assert decode(SendRequest, send(to=[], draftId="AAMk+/=")).draft_id == "AAMk+/="
    found = problems(
        SendRequest,
        send(
            draftId="a", draftInternetMessageId="<b>", saveToSentItems=False, headers={"x-a": "1"}
        ),
    )
    assert {"draftId", "saveToSentItems", "headers"} <= set(found)
    assert "draftId" in problems(DraftRequest, send(draftId="a\r\n"))
    # A new mail still needs a recipient; a draft has its own.
    assert "to" in problems(SendRequest, send(to=[]))


def test_reply_and_forward_requests():
    req = decode(ReplyRequest, answer(replyAll=True, comment="Dank je!\n\nGroet"))
    assert req.reply_all and req.from_ is None  # from defaults to the mailbox (the operation)
    found = problems(
        ReplyRequest,
        answer(
            mailbox="nope",
            internetMessageId="<x@y>",
            comment="c",
            body={"contentType": "text", "content": "b"},
        ),
    )
    assert set(found) == {"mailbox", "messageId", "comment"}
    assert "to" in problems(ForwardRequest, answer())
    assert decode(ForwardRequest, answer(to=["bram@contoso.test"])).to == ["bram@contoso.test"]
    missing = problems(ReplyRequest, json.dumps({"connection": "c", "messageId": "x"}).encode())
    assert "`mailbox`" in missing[None]
    assert "replyAll" in problems(ReplyRequest, answer(replyAll="yes"))


@pytest.mark.parametrize(
    ("model", "fields", "where"),
    [
        (ReplyRequest, {"mailbox": 5}, "mailbox"),
        (ReplyRequest, {"messageId": 5}, "messageId"),
        (ReplyRequest, {"messageId": " "}, "messageId"),
        (ReplyRequest, {"messageId": "x" * 513}, "messageId"),
        (ReplyRequest, {"messageId": None, "internetMessageId": ["<a@b>"]}, "internetMessageId"),
        (ReplyRequest, {"sender": "anna@contoso.test\r\nBcc: x@evil.test"}, "sender"),
        (ForwardRequest, {"to": "bram@contoso.test"}, "to"),
        (ForwardRequest, {"to": ["bram@contoso.test"], "comment": {"text": "x"}}, "comment"),
        (SendRequest, {"draftInternetMessageId": 5}, "draftInternetMessageId"),
        (SendRequest, {"draftInternetMessageId": "<a@b>\r\nX: y"}, "draftInternetMessageId"),
        (DraftRequest, {"draftId": True}, "draftId"),
        (SendRequest, {"attachments": [{"message": "AAMk=="}]}, "attachments[0].message"),
        (SendRequest, {"attachments": [{"message": {"mailbox": ADMIN, "messageId": 1}}]},
         "attachments[0].message.messageId"),
        (SendRequest, {"flag": {"flagStatus": "flagged", "startDateTime": "2026-03-09"}},
         "flag.startDateTime"),
        (SendRequest, {"flag": {"flagStatus": "flagged", "startDateTime": {"dateTime": 5}}},
         "flag.startDateTime.dateTime"),
    ],
)  # fmt: skip
def test_wrong_types_and_text_of_the_reference_fields_are_refused_with_their_field(
    model, fields, where
):
    raw = answer(**fields) if model in (ReplyRequest, ForwardRequest) else send(**fields)
    body = {k: v for k, v in json.loads(raw).items() if v is not None}
    assert where in problems(model, json.dumps(body).encode())
