"""Graph's limits and timing: realistic defaults (seeds may override) and the instant preset.

The defaults are Exchange Online's: a message takes a moment to go out before its Sent Items
copy appears, 30 messages a minute per mailbox, 35 MB per message, and the Outlook throttles of
throttling-limits.md. `INSTANT` is the explicit choice for a test or benchmark that sends many
mails and does not test timing: no transit delay, no sending rate.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULTS: dict[str, Any] = {
    "maxRequestBytes": 4 * 1024 * 1024,
    "concurrentRequestsPerMailbox": 4,
    "requestsPer10Minutes": 10_000,
    "uploadBytesPer5Minutes": 150 * 1024 * 1024,
    "sendRatePerMinute": 30,
    "sendRateMode": "reject",
    "sentCopyDelayMs": 1000,
    "maxRecipients": 500,
    "maxInternetMessageHeaders": 5,
    "maxAttachmentPostBytes": 3 * 1024 * 1024,
    "maxUploadSessionBytes": 150 * 1024 * 1024,
    "maxUploadChunkBytes": 4 * 1024 * 1024,
    "maxMessageSizeBytes": 35 * 1024 * 1024,
    "mailboxMaxSendSizeBytes": {},
    # Graph's documented known issue: a delegated token gets 403 on createUploadSession for a
    # message in another (shared or delegated) mailbox. true lifts it, should Microsoft fix it.
    "delegatedUploadSessionsInOtherMailboxes": False,
}
# Sent copies filed at once and no sending rate: for tests and benchmarks that send many mails.
INSTANT: dict[str, Any] = {"sentCopyDelayMs": 0, "sendRatePerMinute": None}
SEND_RATE_MODES = ("reject", "hold")


def with_defaults(limits: dict[str, Any]) -> dict[str, Any]:
    """`limits` (a seed's) completed with the defaults for everything it leaves out."""
    for key, value in DEFAULTS.items():
        limits.setdefault(key, copy.deepcopy(value))
    return limits


def check_change(changes: dict[str, Any], known: set[str]) -> str | None:
    """What is wrong with a PATCH of the limits, or None."""
    unknown = sorted(set(changes) - known)
    if unknown:
        return f"unknown limits {unknown}; known: {sorted(known)}"
    mode = changes.get("sendRateMode")
    if mode is not None and str(mode).lower() not in SEND_RATE_MODES:
        return f"sendRateMode is one of {list(SEND_RATE_MODES)}"
    per_mailbox = changes.get("mailboxMaxSendSizeBytes")
    if per_mailbox is not None and not isinstance(per_mailbox, dict):
        return "mailboxMaxSendSizeBytes maps mailbox addresses to sizes in bytes"
    return None
