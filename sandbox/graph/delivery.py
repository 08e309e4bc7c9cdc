"""Delivery: sandbox recipients get an Inbox copy with the transport's headers, every other
address goes to the outbound log."""

from __future__ import annotations

import copy
import json
import sqlite3
import uuid
from datetime import datetime
from email.utils import format_datetime, formataddr
from typing import Any

from sandbox.graph import model
from sandbox.graph.store import Store, now_iso


def _address(rcpt: dict[str, Any] | None) -> str:
    email = (rcpt or {}).get("emailAddress") or {}
    return formataddr((str(email.get("name") or ""), str(email.get("address") or "")))


def transport_headers(
    data: dict[str, Any], sending_host: str, has_attachments: bool
) -> list[dict[str, str]]:
    """The headers a received copy shows in internetMessageHeaders: what transport wrote
    (Received, Date, From, To, Subject, Message-ID, MIME-Version, Content-Type, ...) and the
    sender's own x- headers."""
    sent = datetime.fromisoformat(str(data.get("sentDateTime")).replace("Z", "+00:00"))
    date = format_datetime(sent)
    body_type = str((data.get("body") or {}).get("contentType") or "text").lower()
    headers = [
        (
            "Received",
            f"from {sending_host} (127.0.0.1) by sandbox.mail.protection.local with HTTPS; {date}",
        ),
        ("Authentication-Results", "sandbox.mail.protection.local; dkim=none; spf=none"),
        ("Content-Type", "multipart/mixed" if has_attachments else f"text/{body_type}"),
        ("Date", date),
        ("From", _address(data.get("from"))),
    ]
    if (data.get("sender") or {}) != (data.get("from") or {}):
        headers.append(("Sender", _address(data.get("sender"))))
    for name, field in (("To", "toRecipients"), ("Cc", "ccRecipients")):
        if data.get(field):
            headers.append((name, ", ".join(_address(r) for r in data[field])))
    headers += [
        ("Subject", str(data.get("subject") or "")),
        ("Thread-Index", str(data.get("conversationIndex") or "")),
        ("Message-ID", str(data.get("internetMessageId") or "")),
    ]
    # A reply's threading headers (sandbox.graph.replies), and the receipt requests as MIME
    # carries them (Disposition-Notification-To: RFC 8098; Return-Receipt-To for delivery).
    for name, field in (("In-Reply-To", "_inReplyTo"), ("References", "_references")):
        if data.get(field):
            headers.append((name, str(data[field])))
    if data.get("isReadReceiptRequested"):
        headers.append(("Disposition-Notification-To", _address(data.get("from"))))
    if data.get("isDeliveryReceiptRequested"):
        headers.append(("Return-Receipt-To", _address(data.get("from"))))
    headers += [
        ("MIME-Version", "1.0"),
        ("X-MS-Has-Attach", "yes" if has_attachments else ""),
        ("X-MS-Exchange-Organization-Network-Message-Id", str(uuid.uuid4())),
    ]
    out = [{"name": n, "value": v} for n, v in headers]
    out += list(data.get("internetMessageHeaders") or [])
    return out


class Delivery:
    """Hands a sent message to its recipients (what Exchange's transport does after submit)."""

    def __init__(self, store: Store, directory: Any) -> None:
        self.store = store
        self.directory = directory

    def deliver(self, tenant_id: str, owner: Any, row: sqlite3.Row) -> None:
        """Copies of the sent message `row` (its attachments too) for sandbox recipients; the
        rest go to the outbound log."""
        data = json.loads(row["data"])
        boxes = {m.address.lower(): m for m in self.directory.mailboxes()}
        attachments = self.store.attachments(row["immutable_id"])
        external = []
        received = copy.deepcopy(data)
        received["bccRecipients"] = []
        # Named properties set by the sender do not travel with the message.
        received["singleValueExtendedProperties"] = []
        received["isRead"] = False
        # Categories and the follow-up flag are the sender's own marks on its copy.
        received["categories"] = []
        received["flag"] = {"flagStatus": "notFlagged"}
        received["receivedDateTime"] = now_iso()
        received["internetMessageHeaders"] = transport_headers(
            data, owner.address.split("@")[-1], any(not a["is_inline"] for a in attachments)
        )
        for address in model.addresses(data):
            box = boxes.get(address.lower())
            if box is None:
                external.append(address)
                continue
            self.store.ensure_mailbox(box.id)
            inbox = self.store.folder(box.id, "inbox")
            copy_row = self.store.create_message(box.id, inbox["id"], copy.deepcopy(received))
            self.store.copy_attachments(row["immutable_id"], copy_row["immutable_id"])
        if external:
            self.store.log_outbound(tenant_id, owner.address, data, external)
