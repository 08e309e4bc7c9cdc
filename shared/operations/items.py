"""An existing mail as an item attachment (Outlook shows it as an attached message).

Graph attaches an item by value, not by reference (itemattachment.md; attachment-post): we
read the original from its mailbox (which must be on the connection's allowedSenders, and
readable by it) and POST an `#microsoft.graph.itemAttachment` whose `item` is a message with
the original's subject, body, addresses and internetMessageId. The original's own file
attachments are not carried inside (Graph's JSON item attachments take none); forward the
mail to keep them. One POST is at most 4 MB, so a larger original is refused before anything
is created.
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from shared.errors import Detail, PayloadTooLarge
from shared.graph.client import mailbox_path
from shared.models import Attachment
from shared.operations.context import OperationContext
from shared.operations.lookup import read_message

# The original's properties the attached message keeps (all writable on a new message).
ITEM_FIELDS = (
    "subject",
    "body",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "replyTo",
    "importance",
    "internetMessageId",
)
# A request to Graph is at most 4 MB (the attachment's JSON is the whole request body).
ITEM_MAX_BYTES = 3_900_000


def item_attachment(ctx: OperationContext, spec: Attachment, field: str) -> dict:
    """The itemAttachment JSON for `spec.message` (read now); raises MessageNotFound,
    PayloadTooLarge and Graph's mapped errors (403: the connection may not read it)."""
    ref = spec.message
    assert ref is not None  # validated: an item attachment names its message
    original = read_message(
        ctx,
        ref.mailbox,
        ref.message_id,
        ref.internet_message_id,
        fields=(f"{field}.message.messageId", f"{field}.message.internetMessageId"),
        select=",".join(ITEM_FIELDS),
    )
    item = {"@odata.type": "#microsoft.graph.message"}
    item.update({k: original[k] for k in ITEM_FIELDS if original.get(k) not in (None, [], "")})
    attachment = {
        "@odata.type": "#microsoft.graph.itemAttachment",
        "name": spec.name or original.get("subject") or "Message",
        "item": item,
    }
    if len(msgspec.json.encode(attachment)) > ITEM_MAX_BYTES:
        raise PayloadTooLarge(
            "The mail to attach is too large for an item attachment (Graph takes at most 4 MB "
            "in one request); forward it instead.",
            details=[Detail(f"{field}.message", f"over {ITEM_MAX_BYTES} bytes as JSON")],
        )
    return attachment


def item_size(attachment: dict) -> int:
    """The attached message's size as the message size check counts it (its JSON)."""
    return len(msgspec.json.encode(attachment["item"]))


def add_item(ctx: OperationContext, mailbox: str, message_id: str, attachment: dict) -> None:
    """POST the item attachment to the draft `message_id` in `mailbox`."""
    path = f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}/attachments"
    ctx.graph.post(path, json=attachment)
