"""Replies and forwards: createReply, createReplyAll and createForward make a draft in the URL's
mailbox, in the original's conversation; reply, replyAll and forward make it and send it.

message-createreply.md, message-createreplyall.md, message-createforward.md (JSON format):
- "Specify either a comment or the body property of the message parameter. Specifying both
  will return an HTTP 400 Bad Request error." `comment` goes above the quoted original; a
  `message.body` is the whole body (nothing of the original is quoted).
- createReply/createReplyAll: "If the original message specifies a recipient in the replyTo
  property, per Internet Message Format (RFC 2822), you should send the reply to the
  recipients in the replyTo and toRecipients properties, and not the recipients in the from
  and toRecipients properties." Reply-all also keeps the original's Cc, and the replying
  mailbox itself is left out (RFC 5322 3.6.3: a reply goes to the others).
- createForward: "Specify either the toRecipients parameter or the toRecipients property of
  the message parameter. Specifying both or specifying neither will return an HTTP 400".
  The forward carries the original's attachments; a reply does not.
- `message`: "Any writeable properties to update in the reply message" (they replace the
  draft's defaults, recipients included).

The draft shares the original's conversationId, extends its conversationIndex by a child
block (Thread-Index, MS-OXOMSG 2.2.1.3) and, for replies, carries In-Reply-To (the original's
internetMessageId) and References (the original's References plus that id, RFC 5322 3.6.4),
which delivery writes into the recipients' internetMessageHeaders.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import sqlite3
from typing import Any

from sandbox.graph import model
from sandbox.graph.call import Call
from sandbox.graph.errors import GraphError, bad_request
from sandbox.graph.messages import MESSAGE, MessageOps, create_message
from sandbox.graph.permissions import check_send_through
from sandbox.graph.sending import SendOps
from sandbox.graph.services import Services
from sandbox.web import Response

REPLY, REPLY_ALL, FORWARD = "reply", "replyAll", "forward"
PREFIX = {REPLY: "RE: ", REPLY_ALL: "RE: ", FORWARD: "FW: "}
# Graph accepts the action with or without its namespace (…/microsoft.graph.createReply).
_NS = r"(?:microsoft\.graph\.)?"


def _address(rcpt: dict[str, Any] | None) -> str:
    return str(((rcpt or {}).get("emailAddress") or {}).get("address") or "")


def _unique(recipients: list[dict[str, Any]], leave_out: str) -> list[dict[str, Any]]:
    """Recipients in order, each address once, without `leave_out` (case-insensitive)."""
    seen, out = {leave_out.lower()}, []
    for rcpt in recipients:
        address = _address(rcpt).lower()
        if address and address not in seen:
            seen.add(address)
            out.append(rcpt)
    return out


def reply_recipients(
    original: dict[str, Any], kind: str, replier: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(toRecipients, ccRecipients) of a reply or reply-all by mailbox `replier` (pure)."""
    answer_to = (
        list(original.get("replyTo") or [])
        or [r for r in (original.get("from"), original.get("sender")) if r][:1]
    )
    own = all(_address(r).lower() == replier.lower() for r in answer_to)
    if kind == REPLY:
        # Answering one's own mail goes to the people it went to, as Outlook does.
        to = original.get("toRecipients") or [] if own else answer_to
        return _unique(list(to), replier), []
    to = _unique([*answer_to, *(original.get("toRecipients") or [])], replier)
    taken = {_address(r).lower() for r in to}
    cc = [
        r
        for r in _unique(list(original.get("ccRecipients") or []), replier)
        if _address(r).lower() not in taken
    ]
    return to, cc


def subject(original: str, kind: str) -> str:
    """RE:/FW: once (an answer to an answer keeps a single prefix)."""
    prefix = PREFIX[kind]
    if original.lower().startswith(prefix.strip().lower()):
        return original
    return prefix + original


def child_index(parent: str | None) -> str:
    """The conversationIndex of an answer: the parent's bytes and a 5-byte child block."""
    try:
        head = base64.b64decode(parent or "", validate=True)
    except ValueError:
        head = b""
    return base64.b64encode(head + secrets.token_bytes(5)).decode()


def _quote(original: dict[str, Any], comment: str) -> dict[str, str]:
    """The HTML body Exchange writes: the comment, a rule, the original's header and body."""

    def names(field: str) -> str:
        return "; ".join(
            html.escape(str((r.get("emailAddress") or {}).get("name") or _address(r)), quote=False)
            for r in original.get(field) or []
        )

    body = original.get("body") or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "text").lower() != "html":
        content = html.escape(content, quote=False).replace("\n", "<br>\r\n")
    sender = original.get("from") or original.get("sender") or {}
    who = (sender.get("emailAddress") or {}).get("name") or _address(sender)
    lines = [
        f"<b>From:</b> {html.escape(str(who))}",
        f"<b>Sent:</b> {html.escape(str(original.get('sentDateTime') or ''))}",
        f"<b>To:</b> {names('toRecipients')}",
    ]
    if original.get("ccRecipients"):
        lines.append(f"<b>Cc:</b> {names('ccRecipients')}")
    lines.append(f"<b>Subject:</b> {html.escape(str(original.get('subject') or ''))}")
    said = html.escape(comment, quote=False).replace("\n", "<br>\r\n")
    return {
        "contentType": "html",
        "content": f"<div>{said}</div>\r\n<hr>\r\n<div>{'<br>'.join(lines)}</div>\r\n"
        f"<div>{content}</div>",
    }


class ReplyOps:
    def __init__(self, svc: Services, messages: MessageOps, sending: SendOps) -> None:
        self.svc = svc
        self.messages = messages
        self.sending = sending

    def routes(self) -> list[tuple[str, str, object]]:
        def draft(kind: str):
            return lambda call: self.create(call, kind)

        def send(kind: str):
            return lambda call: self.send(call, kind)

        return [
            ("POST", rf"{MESSAGE}/{_NS}createReply", draft(REPLY)),
            ("POST", rf"{MESSAGE}/{_NS}createReplyAll", draft(REPLY_ALL)),
            ("POST", rf"{MESSAGE}/{_NS}createForward", draft(FORWARD)),
            ("POST", rf"{MESSAGE}/{_NS}reply", send(REPLY)),
            ("POST", rf"{MESSAGE}/{_NS}replyAll", send(REPLY_ALL)),
            ("POST", rf"{MESSAGE}/{_NS}forward", send(FORWARD)),
        ]

    def create(self, call: Call, kind: str) -> Response:
        """createReply / createReplyAll / createForward: 201 with the new draft."""
        call.allow(write=True)
        return self.messages.one(call, self._draft(call, kind), 201)

    def send(self, call: Call, kind: str) -> Response:
        """reply / replyAll / forward: 202; the answer goes out like a sent draft."""
        check_send_through(call.principal, call.mailbox.address, call.rights(call.mailbox.address))
        call.allow(write=True)
        row = self._draft(call, kind)
        try:
            self.sending.submit_draft(call, row)
        except GraphError:
            self.svc.store.delete_message(row)  # nothing is left behind by a refused send
            raise
        return Response(202)

    def _params(self, call: Call, kind: str) -> tuple[str | None, dict[str, Any], Any]:
        names = (
            ("comment", "message", "toRecipients") if kind == FORWARD else ("comment", "message")
        )
        body = call.req.json() if call.req.body.strip() else {}
        params = model.action_params(body, names)
        comment = params.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise bad_request("'comment' must be a string.")
        message = params.get("message") or {}
        if not isinstance(message, dict):
            raise bad_request("'message' must be a message object.")
        return comment, message, params.get("toRecipients")

    def _draft(self, call: Call, kind: str) -> sqlite3.Row:
        """The answer to the URL's message as a new draft in the URL mailbox's Drafts."""
        original_row = self.messages.row(call)
        original = json.loads(original_row["data"])
        comment, message, to_param = self._params(call, kind)
        changes = model.clean_input(message, self.svc.limits, names=call.name_of)
        if comment is not None and "body" in changes:
            raise bad_request(
                "Specify either a comment or the body property of the message parameter, not both."
            )
        me = call.mailbox
        record: dict[str, Any] = {
            "subject": subject(str(original.get("subject") or ""), kind),
            "conversationId": original.get("conversationId"),
            "conversationIndex": child_index(original.get("conversationIndex")),
            "body": _quote(original, comment or ""),
        }
        if kind == FORWARD:
            given = [x for x in (to_param, changes.get("toRecipients")) if x]
            if len(given) != 1:
                raise bad_request(
                    "Specify either the toRecipients parameter or the toRecipients property of "
                    "the message parameter (one of them, not both)."
                )
            if to_param is not None:
                given_to = {"toRecipients": to_param}
                changes.update(model.clean_input(given_to, self.svc.limits, names=call.name_of))
        else:
            to, cc = reply_recipients(original, kind, me.address)
            record["toRecipients"], record["ccRecipients"] = to, cc
            record[model.INTERNAL_PREFIX + "inReplyTo"] = original.get("internetMessageId")
            references = " ".join(
                x
                for x in (
                    original.get(model.INTERNAL_PREFIX + "references"),
                    original.get("internetMessageId"),
                )
                if x
            )
            record[model.INTERNAL_PREFIX + "references"] = references
        record.update(changes)
        files = record.get("attachments") or []
        inherited = self.messages.stored_sizes(original_row) if kind == FORWARD else []
        self.messages.check_size(call, record, [*inherited, *(len(f["content"]) for f in files)])
        folder = self.svc.store.folder(me.id, "drafts")
        row = create_message(self.svc, me, folder["id"], record, draft=True)
        if kind == FORWARD:
            self.svc.store.copy_attachments(original_row["immutable_id"], row["immutable_id"])
        return row
