"""A message's size as Exchange's limit counts it, and the check that refuses it early.

Exchange Online limits the whole message (the sender mailbox's MaxSendSize: 35 MB unless the
tenant raised it, at most 150 MB) as MIME carries it, where attachments travel in base64:
4 bytes per 3, in lines of 76 characters plus CRLF. A 27 MB file is thus over 35 MB. We count
the same way, with allowances for headers, and refuse before anything is uploaded; when our
limit is higher than the tenant's, Graph's ErrorMessageSizeExceeded says so instead (mapped to
the same error in shared.errors).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from shared.errors import Detail, PayloadTooLarge
from shared.models import DraftRequest, ForwardRequest, Recipient, ReplyRequest, SendRequest

MessageRequest = SendRequest | DraftRequest | ReplyRequest | ForwardRequest

HEADER_ALLOWANCE = 1024
PART_ALLOWANCE = 256
_MB = 1024 * 1024


def base64_bytes(size: int) -> int:
    """Bytes of `size` octets in MIME base64: 4 per 3, CRLF after every 76 characters."""
    encoded = 4 * math.ceil(size / 3)
    return encoded + 2 * math.ceil(encoded / 76)


def _address_bytes(value: str | Recipient) -> int:
    if isinstance(value, str):
        return len(value.encode()) * 2 + 4
    return len(value.address.encode()) + len((value.name or value.address).encode()) + 4


def estimate(request: MessageRequest, attachment_sizes: Iterable[int]) -> int:
    """The MIME size of `request` with attachments of these (decoded) sizes, in bytes."""
    total = HEADER_ALLOWANCE + len((request.subject or "").encode())
    for field in (request.to, request.cc, request.bcc, request.reply_to):
        total += sum(_address_bytes(r) for r in field)
    if request.body is not None:
        total += len(request.body.content.encode())
    if isinstance(request, ReplyRequest | ForwardRequest) and request.comment:
        total += len(request.comment.encode())
    return total + sum(PART_ALLOWANCE + base64_bytes(s) for s in attachment_sizes)


def check(request: MessageRequest, attachment_sizes: Iterable[int], limit: int) -> None:
    """Raise PayloadTooLarge (413) when the message would be over `limit` bytes."""
    size = estimate(request, attachment_sizes)
    if size > limit:
        raise PayloadTooLarge(
            f"The message would be about {size / _MB:.1f} MB as Exchange counts it "
            "(attachments base64-encoded), over the limit of "
            f"{limit / _MB:.1f} MB (MESSAGE_MAX_BYTES, the tenant's maximum message size). "
            "Send fewer or smaller attachments, or links to them.",
            details=[
                Detail(
                    "attachments",
                    f"about {size} bytes with base64 encoding; the limit is {limit} bytes",
                )
            ],
        )
