"""reply, forward, send on behalf, drafts by id and item attachments, called directly against
the sandbox (no devhost): what lands in which mailbox, resumes that never send twice, and the
refusals (allowedSenders, unknown or foreign messages, missing grants)."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid

import pytest

from shared.api.validation import decode
from shared.errors import (
    DraftAlreadySent,
    MailboxBusy,
    MessageNotFound,
    SenderNotAllowed,
    SendOnBehalfDenied,
    ValidationFailed,
)
from shared.graph.limiter import InstanceLimits
from shared.models import DraftRequest, ForwardRequest, ReplyRequest, SendRequest
from shared.operations import direct as operations
from shared.operations.context import Progress
from shared.operations.reply import forward, reply
from shared.runtime import Runtime
from tests.conftest import q
from tests.functional.conftest import CONNECTION, Ops, secret_client, until

pytestmark = pytest.mark.timeout(120)

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"
CARLA = "carla@contoso.test"
FOREIGN = "ceo@fabrikam.test"  # another tenant's mailbox: not on the connection's senders
OP_PROPERTY = "String {3f5c8a2e-7b1d-4e6f-9a0c-2d4b6e8f1a3c} Name OperationId"


def decoded(model, **fields):
    return decode(model, json.dumps({"connection": CONNECTION, **fields}).encode())


def in_folder(ops: Ops, mailbox: str, folder: str, subject: str) -> list[dict]:
    return [m for m in ops.folder_messages(mailbox, folder) if m.get("subject") == subject]


def arrived(ops: Ops, mailbox: str, subject: str) -> dict:
    found = until(lambda: in_folder(ops, mailbox, "inbox", subject), ops.sandbox.transit_seconds())
    assert found, f"{subject!r} never reached {mailbox}"
    return found[0]  # type: ignore[index]


def headers(ops: Ops, mailbox: str, message_id: str) -> dict[str, str]:
    msg = ops.graph_get(
        f"users/{mailbox}/messages/{q(message_id)}", **{"$select": "internetMessageHeaders"}
    )
    return {h["name"]: h["value"] for h in msg["internetMessageHeaders"]}


def original_from_anna(ops: Ops, **fields) -> dict:
    """anna writes to administratie (and whoever `fields` add); administratie's copy."""
    subject = fields.pop("subject", f"vraag {uuid.uuid4().hex[:8]}")
    body = {"from": ANNA, "to": [ADMIN], "subject": subject, **fields}
    operations.send(decoded(SendRequest, **body), ops.context())
    return arrived(ops, ADMIN, subject)


def test_a_reply_from_the_shared_mailbox_stays_in_the_conversation(ops: Ops):
    original = original_from_anna(ops, cc=[CARLA])
    result = reply(
        decoded(
            ReplyRequest,
            mailbox=ADMIN,
            internetMessageId=original["internetMessageId"],
            comment="Hierbij de factuur.",
            cc=[BRAM],
            categories=["Beantwoord"],
            flag="flagged",
            isReadReceiptRequested=True,
        ),
        ops.context(),
    )
    assert result.status == "sent" and result.conversation_id == original["conversationId"]
    got = arrived(ops, ANNA, f"RE: {original['subject']}")
    assert got["conversationId"] == original["conversationId"]
    assert headers(ops, ANNA, got["id"])["In-Reply-To"] == original["internetMessageId"]
    assert got["isReadReceiptRequested"] is True
    assert arrived(ops, BRAM, f"RE: {original['subject']}")  # the extra cc
    # A plain reply goes to the sender only; carla (cc on the original) gets nothing.
    ops.settle(ADMIN)
    assert in_folder(ops, CARLA, "inbox", f"RE: {original['subject']}") == []
    sent = in_folder(ops, ADMIN, "sentitems", f"RE: {original['subject']}")
    assert [m["id"] for m in sent] == [result.message_id]
    assert sent[0]["categories"] == ["Beantwoord"] and sent[0]["flag"]["flagStatus"] == "flagged"
    assert in_folder(ops, ADMIN, "drafts", f"RE: {original['subject']}") == []


def test_reply_all_leaves_the_replying_mailbox_out(ops: Ops):
    original = original_from_anna(ops, to=[ADMIN, BRAM], cc=[CARLA])
    reply(
        decoded(
            ReplyRequest,
            mailbox=ADMIN,
            messageId=original["id"],
            replyAll=True,
            body={"contentType": "text", "content": "Aan allen"},
        ),
        ops.context(),
    )
    subject = f"RE: {original['subject']}"
    for who in (ANNA, BRAM, CARLA):
        assert arrived(ops, who, subject), who
    ops.settle(ADMIN)
    assert in_folder(ops, ADMIN, "inbox", subject) == []
    copy = in_folder(ops, ADMIN, "sentitems", subject)[0]
    everyone = [r["emailAddress"]["address"] for r in copy["toRecipients"] + copy["ccRecipients"]]
    assert sorted(everyone) == sorted([ANNA, BRAM, CARLA])


def test_forward_with_the_original_attached_as_an_item(ops: Ops):
    original = original_from_anna(
        ops,
        attachments=[{"name": "order.txt", "contentBytes": base64.b64encode(b"order 42").decode()}],
    )
    result = forward(
        decoded(
            ForwardRequest,
            mailbox=ADMIN,
            messageId=original["id"],
            to=[BRAM],
            comment="Ter info",
            attachments=[{"message": {"mailbox": ADMIN, "messageId": original["id"]}}],
        ),
        ops.context(),
    )
    got = arrived(ops, BRAM, f"FW: {original['subject']}")
    assert result.conversation_id == original["conversationId"] == got["conversationId"]
    listed = ops.graph_get(f"users/{BRAM}/messages/{q(got['id'])}/attachments")["value"]
    kinds = sorted((a["name"], a["@odata.type"]) for a in listed)
    assert kinds == [
        ("order.txt", "#microsoft.graph.fileAttachment"),
        (original["subject"], "#microsoft.graph.itemAttachment"),
    ]
    item_id = next(a["id"] for a in listed if a["@odata.type"].endswith("itemAttachment"))
    item = ops.graph_get(
        f"users/{BRAM}/messages/{q(got['id'])}/attachments/{q(item_id)}",
        **{"$expand": "microsoft.graph.itemattachment/item"},
    )["item"]
    assert item["internetMessageId"] == original["internetMessageId"]
    assert item["from"]["emailAddress"]["address"] == ANNA


def test_a_resumed_reply_finds_the_answer_it_sent_and_sends_nothing_again(ops: Ops):
    original = original_from_anna(ops)
    operation_id = str(uuid.uuid4())
    saved: dict = {}
    request = decoded(ReplyRequest, mailbox=ADMIN, messageId=original["id"], comment="een keer")
    first = reply(request, ops.context(operation_id, progress=Progress(persist=saved.update)))
    # While the answer is in the Outbox a resume waits (tests/functional/test_reliability_send);
    # once it went out, the resume finds it.
    ops.settle(ADMIN)
    again = reply(
        decoded(ReplyRequest, mailbox=ADMIN, messageId=original["id"], comment="een keer"),
        ops.context(operation_id, progress=Progress(saved, resume=True)),
    )
    assert again.message_id == first.message_id
    ops.settle(ADMIN)
    assert len(in_folder(ops, ANNA, "inbox", f"RE: {original['subject']}")) == 1


def test_a_reviewed_draft_is_sent_by_id_with_its_changes_and_only_once(ops: Ops):
    person = ops.context().graph.post(
        f"users/{ADMIN}/messages",
        json={
            "subject": "Concept offerte",
            "toRecipients": [{"emailAddress": {"address": ANNA}}],
            "body": {"contentType": "text", "content": "Beoordeeld door Bram"},
        },
    )
    request = decoded(
        SendRequest,
        **{"from": ADMIN},
        draftId=person["id"],
        subject="Offerte 2026-042",
        cc=[CARLA],
        attachments=[{"name": "offerte.txt", "contentBytes": base64.b64encode(b"42").decode()}],
    )
    operation_id = str(uuid.uuid4())
    saved: dict = {}
    result = operations.send(
        request, ops.context(operation_id, progress=Progress(persist=saved.update))
    )
    assert result.message_id == person["id"]  # immutable: the Sent Items copy keeps the id
    got = arrived(ops, ANNA, "Offerte 2026-042")
    assert arrived(ops, CARLA, "Offerte 2026-042")
    files = ops.graph_get(f"users/{ANNA}/messages/{q(got['id'])}/attachments")["value"]
    assert [f["name"] for f in files] == ["offerte.txt"]
    # The same operation again (a redelivery) finds it sent; a new one is refused.
    ops.settle(ADMIN)
    resumed = operations.send(
        request, ops.context(operation_id, progress=Progress(saved, resume=True))
    )
    assert resumed.message_id == result.message_id
    with pytest.raises(DraftAlreadySent) as exc:
        operations.send(request, ops.context())
    assert exc.value.status == 409
    ops.settle(ADMIN)
    assert len(in_folder(ops, ANNA, "inbox", "Offerte 2026-042")) == 1


def test_a_draft_is_updated_by_id_and_a_foreign_draft_is_not_found(ops: Ops):
    person = ops.context().graph.post(
        f"users/{ADMIN}/messages", json={"subject": "Concept", "importance": "low"}
    )
    result = operations.draft(
        decoded(
            DraftRequest,
            **{"from": ADMIN},
            draftId=person["id"],
            to=[ANNA],
            categories=["Te controleren"],
        ),
        ops.context(),
    )
    assert result.status == "updated" and result.message_id == person["id"]
    stored = ops.graph_get(f"users/{ADMIN}/messages/{q(person['id'])}")
    assert stored["subject"] == "Concept" and stored["importance"] == "low"  # left as it was
    assert [r["emailAddress"]["address"] for r in stored["toRecipients"]] == [ANNA]
    assert stored["categories"] == ["Te controleren"]
    # The id of administratie's draft, sent "from" bram: not in bram's mailbox.
    with pytest.raises(MessageNotFound) as exc:
        operations.send(decoded(SendRequest, **{"from": BRAM}, draftId=person["id"]), ops.context())
    assert exc.value.status == 404 and exc.value.details[0].field == "draftId"
    assert ops.graph_get(f"users/{ADMIN}/messages/{q(person['id'])}")["isDraft"] is True


def test_an_app_sends_on_behalf_through_the_delegates_mailbox(ops: Ops):
    subject = f"namens {uuid.uuid4().hex[:8]}"
    operations.send(
        decoded(SendRequest, **{"from": ADMIN}, sender=ANNA, to=[CARLA], subject=subject),
        ops.context(),
    )
    got = arrived(ops, CARLA, subject)
    assert got["from"]["emailAddress"]["address"] == ADMIN
    assert got["sender"]["emailAddress"]["address"] == ANNA
    ops.settle(ANNA)
    assert len(in_folder(ops, ANNA, "sentitems", subject)) == 1
    assert in_folder(ops, ADMIN, "sentitems", subject) == []
    with pytest.raises(SendOnBehalfDenied) as exc:
        operations.send(
            decoded(SendRequest, **{"from": ADMIN}, sender=BRAM, to=[CARLA], subject="nee"),
            ops.context(),
        )
    assert exc.value.status == 403 and "-GrantSendOnBehalfTo" in exc.value.message
    assert BRAM in exc.value.message and ADMIN in exc.value.message
    assert in_folder(ops, BRAM, "drafts", "nee") == []


@pytest.mark.parametrize(
    ("model", "fields", "error", "field"),
    [
        (SendRequest, {"from": ADMIN, "sender": "x@fabrikam.test", "to": [ANNA]},
         SenderNotAllowed, "sender"),
        (ReplyRequest, {"mailbox": FOREIGN, "messageId": "x"}, SenderNotAllowed, "mailbox"),
        (SendRequest, {"from": ADMIN, "to": [ANNA],
                       "attachments": [{"message": {"mailbox": FOREIGN, "messageId": "x"}}]},
         SenderNotAllowed, "attachments[0].message.mailbox"),
        (ReplyRequest, {"mailbox": ADMIN, "internetMessageId": "<nobody@nowhere.test>"},
         MessageNotFound, "internetMessageId"),
        (ForwardRequest, {"mailbox": ADMIN, "messageId": "not-a-graph-id", "to": [ANNA]},
         ValidationFailed, "messageId"),
        (ForwardRequest, {"mailbox": ADMIN, "internetMessageId": "<nobody@nowhere.test>",
                          "to": [ANNA]}, MessageNotFound, "internetMessageId"),
        (SendRequest, {"from": ADMIN, "to": [ANNA], "attachments": [{"message": {
            "mailbox": ADMIN, "internetMessageId": "<nobody@nowhere.test>"}}]},
         MessageNotFound, "attachments[0].message.internetMessageId"),
    ],
)  # fmt: skip
def test_refusals_name_their_field_and_leave_nothing_behind(ops: Ops, model, fields, error, field):
    run = {
        SendRequest: operations.send,
        ReplyRequest: reply,
        ForwardRequest: forward,
    }[model]
    with pytest.raises(error) as exc:
        run(decoded(model, **fields), ops.context())
    assert [d.field for d in exc.value.details] == [field]
    assert ops.folder_messages(ADMIN, "drafts") == []


def test_a_message_of_another_mailbox_is_not_found_there(ops: Ops):
    original = original_from_anna(ops)
    with pytest.raises(MessageNotFound) as exc:
        reply(decoded(ReplyRequest, mailbox=BRAM, messageId=original["id"]), ops.context())
    assert exc.value.details[0].field == "messageId"
    with pytest.raises(MessageNotFound) as exc:
        operations.send(
            decoded(
                SendRequest,
                **{"from": ADMIN},
                to=[ANNA],
                attachments=[{"message": {"mailbox": BRAM, "messageId": original["id"]}}],
            ),
            ops.context(),
        )
    assert exc.value.details[0].field == "attachments[0].message.messageId"
    assert ops.folder_messages(ADMIN, "drafts") == [] == ops.folder_messages(BRAM, "drafts")


def test_answers_count_toward_the_mailboxs_sending_rate_and_wait_before_a_draft_is_made(
    ops: Ops,
):
    """A reply and a forward are sends of the mailbox: past its sending rate (here 1 a
    minute) the next is refused with Retry-After before anything is composed."""
    original = original_from_anna(ops)
    slow = dataclasses.replace(ops.settings, mailbox_sends_per_minute=1)
    client = secret_client(ops.sandbox.url)
    runtime = Runtime(slow, lambda: client, mailbox_limits=InstanceLimits())

    def ctx():
        return runtime.context(CONNECTION, str(uuid.uuid4()))

    reply(decoded(ReplyRequest, mailbox=ADMIN, messageId=original["id"], comment="1"), ctx())
    # A no-op fault counts the createForward calls that reach Graph.
    create = r"/messages/[^/]+/createForward$"
    ops.sandbox.add_fault(method="POST", path=create, action="delay", delayMs=1)
    try:
        with pytest.raises(MailboxBusy) as busy:
            forward(
                decoded(ForwardRequest, mailbox=ADMIN, messageId=original["id"], to=[CARLA]),
                ctx(),
            )
        faults = ops.sandbox.control("GET", "faults").json()["value"]
    finally:
        ops.sandbox.clear_faults()
    assert busy.value.status == 429 and (busy.value.retry_after or 0) > 1
    assert [f["applied"] for f in faults if f["path"] == create] == [0]  # nothing composed
    ops.settle(ADMIN)
    assert ops.folder_messages(ADMIN, "drafts") == []
    assert in_folder(ops, CARLA, "inbox", f"FW: {original['subject']}") == []
