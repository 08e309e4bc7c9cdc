"""A message's size as Exchange's limit sees it: its MIME form, attachments in base64.

Exchange Online applies the mailbox's maximum message size (MaxSendSize, 35 MB by default,
raisable to 150 MB; attachment-createuploadsession.md) to the whole message as it travels,
and MIME carries attachments in base64 (4 bytes per 3, in lines of 76 characters plus CRLF),
so a 27 MB file already counts as about 36 MB. The estimate here: a fixed allowance for the
transport headers, the subject, recipients and body as UTF-8, and per attachment its base64
length with line breaks plus an allowance for its MIME part headers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sandbox.graph.errors import GraphError

DEFAULT_MAX_BYTES = 35 * 1024 * 1024  # Exchange's "35 MB (36,700,160 bytes)"
HEADER_ALLOWANCE = 1024
PART_ALLOWANCE = 256


def base64_bytes(size: int) -> int:
    """Bytes of `size` octets in MIME base64: 4 per 3, CRLF after every 76 characters."""
    encoded = 4 * math.ceil(size / 3)
    return encoded + 2 * math.ceil(encoded / 76)


def mime_size(message: dict[str, Any], attachment_sizes: Iterable[int]) -> int:
    """The estimated MIME size of `message` (Graph fields) with attachments of these sizes."""
    total = HEADER_ALLOWANCE + len(str(message.get("subject") or "").encode())
    for field in ("toRecipients", "ccRecipients", "bccRecipients", "replyTo"):
        for rcpt in message.get(field) or []:
            email = rcpt.get("emailAddress") or {}
            total += len(str(email.get("address") or "").encode())
            total += len(str(email.get("name") or "").encode()) + 4
    body = message.get("body") or {}
    total += len(str(body.get("content") or "").encode())
    for size in attachment_sizes:
        total += PART_ALLOWANCE + base64_bytes(size)
    return total


def max_send_size(limits: dict[str, Any], mailbox: str) -> int:
    """The mailbox's MaxSendSize: its entry in `mailboxMaxSendSizeBytes`, else the default."""
    per_mailbox = limits.get("mailboxMaxSendSizeBytes") or {}
    for address, value in per_mailbox.items():
        if address.lower() == mailbox.lower():
            return int(value)
    return int(limits.get("maxMessageSizeBytes") or DEFAULT_MAX_BYTES)


def check(size: int, maximum: int) -> None:
    """Raise Exchange's error when a message of `size` bytes is over `maximum`."""
    if size > maximum:
        raise GraphError(
            400, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size."
        )
