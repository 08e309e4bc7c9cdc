"""Request and response shapes of the API as msgspec Structs (camelCase on the wire).

These Structs decode requests (see shared/validation.py for the rules beyond types) and generate
the OpenAPI document (shared/openapi.py), so what validates is what is documented. Enumerations
like `importance` are plain strings here with the allowed values added to the schema only: the
validator then reports every bad field at once instead of stopping at the first.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

IMPORTANCE_VALUES = ("low", "normal", "high")
BODY_TYPES = ("text", "html")
MODES = ("sync", "async", "auto")

Importance = Annotated[str, Meta(extra_json_schema={"enum": list(IMPORTANCE_VALUES)})]
BodyType = Annotated[str, Meta(extra_json_schema={"enum": list(BODY_TYPES)})]
Mode = Annotated[
    str,
    Meta(
        extra_json_schema={
            "enum": list(MODES),
            "description": (
                "`sync` runs now and answers with the result; `async` queues the work and "
                "answers 202 with `operationId` and a status URL; `auto` runs now and falls "
                "back to the queue (202) when Graph throttles or is unavailable."
            ),
        }
    ),
]
Base64 = Annotated[str, Meta(extra_json_schema={"contentEncoding": "base64"})]
Email = Annotated[str, Meta(extra_json_schema={"format": "email"}, max_length=320)]
HttpsUrl = Annotated[str, Meta(extra_json_schema={"format": "uri", "pattern": "^https://"})]


class _Model(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """Base: camelCase wire names; unknown fields are an error (they are usually typos)."""


class Recipient(_Model):
    address: Email
    name: str | None = None


RecipientIn = Annotated[
    str | Recipient, Meta(description='"a@b.nl" or {"address": "a@b.nl", "name": "A"}')
]


class Body(_Model):
    content: str
    content_type: BodyType = "text"


class Attachment(_Model):
    """A file attachment: exactly one of `contentBytes` (base64) or `url` (https)."""

    name: Annotated[str, Meta(min_length=1, max_length=255)]
    content_type: str | None = None
    content_bytes: Base64 | None = None
    url: HttpsUrl | None = None
    is_inline: bool = False
    content_id: str | None = None


class _MessageFields(_Model):
    connection: Annotated[str, Meta(min_length=1, max_length=96)]  # secret names ≤ 127
    from_: Annotated[Email, Meta(description="The mailbox that sends.")] = msgspec.field(
        name="from"
    )
    to: list[RecipientIn] = []
    cc: list[RecipientIn] = []
    bcc: list[RecipientIn] = []
    reply_to: list[RecipientIn] = []
    subject: str = ""
    body: Body | None = None
    attachments: list[Attachment] = []
    importance: Importance = "normal"
    headers: Annotated[
        dict[str, str], Meta(description="At most 5 internet message headers, names `x-…`.")
    ] = {}
    user: str | None = None
    idempotency_key: Annotated[str, Meta(max_length=200)] | None = None
    mode: Mode = "sync"
    callback_url: HttpsUrl | None = None


class SendRequest(_MessageFields):
    """POST /api/mail/send."""

    save_to_sent_items: bool = True


class DraftRequest(_MessageFields):
    """POST /api/mail/draft."""


class MoveRequest(_Model):
    """POST /api/mail/move: `messageId` or `internetMessageId`, and a destination."""

    connection: Annotated[str, Meta(min_length=1, max_length=96)]  # secret names ≤ 127
    mailbox: Email
    destination: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=1000,
            description="Well-known name (`archive`) or a path like `Inbox/Verwerkt/2026`.",
        ),
    ]
    message_id: str | None = None
    internet_message_id: str | None = None
    create_missing_folders: bool = False
    user: str | None = None
    idempotency_key: Annotated[str, Meta(max_length=200)] | None = None
    mode: Mode = "sync"
    callback_url: HttpsUrl | None = None


class SendResult(msgspec.Struct, rename="camel", omit_defaults=True):
    operation_id: str
    status: str
    message_id: str | None = None
    internet_message_id: str | None = None


class DraftResult(msgspec.Struct, rename="camel", omit_defaults=True):
    operation_id: str
    status: str
    message_id: str
    web_link: str | None = None
    conversation_id: str | None = None


class MoveResult(msgspec.Struct, rename="camel", omit_defaults=True):
    operation_id: str
    status: str
    message_id: str
    destination_folder_id: str


class ErrorDetail(msgspec.Struct):
    field: str | None
    message: str


class GraphErrorInfo(msgspec.Struct, omit_defaults=True):
    status: int | None = None
    code: str | None = None
    requestId: str | None = None


class ErrorInner(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    details: list[ErrorDetail] = []
    operationId: str | None = None
    signInUrl: str | None = None
    adminCommand: str | None = None
    graph: GraphErrorInfo | None = None


class ErrorResponse(msgspec.Struct):
    """The one error shape (DESIGN §3)."""

    error: ErrorInner


class Health(msgspec.Struct):
    status: str
    version: str


def to_builtins(value: Any) -> Any:
    """A Struct as plain JSON-ready data."""
    return msgspec.to_builtins(value)
