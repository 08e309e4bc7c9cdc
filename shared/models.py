"""Request and response shapes of the API as msgspec Structs (camelCase on the wire).

These Structs decode requests (see shared/api/validation.py for the rules beyond types) and generate
the OpenAPI document (shared/api/openapi.py), so what validates is what is documented. Enumerations
like `importance` are plain strings here with the allowed values added to the schema only: the
validator then reports every bad field at once instead of stopping at the first.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Protocol

import msgspec
from msgspec import Meta

IMPORTANCE_VALUES = ("low", "normal", "high")
BODY_TYPES = ("text", "html")
MODES = ("sync", "async", "auto")
# Graph's followupFlag.flagStatus values.
FLAG_STATUSES = ("notFlagged", "flagged", "complete")

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
# Kept as a zero-copy view of the request body (shared.base64_content): a big attachment costs
# no second copy before it is checked, and is decoded chunk by chunk only when uploaded.
Base64 = Annotated[
    msgspec.Raw, Meta(extra_json_schema={"type": "string", "contentEncoding": "base64"})
]
NO_CONTENT = msgspec.Raw(b"null")
Email = Annotated[str, Meta(extra_json_schema={"format": "email"}, max_length=320)]
FROM_DESCRIPTION = (
    "The mailbox that sends. Required, except on a `user`-mode connection, where it defaults "
    "to `user` and may be any mailbox that user has Send As and Full Access on."
)
User = Annotated[
    str,
    Meta(
        max_length=320,
        description=(
            "`user`-mode connections: the UPN whose sign-in acts (and the default `from`). "
            "Ignored by the other modes."
        ),
    ),
]
HttpsUrl = Annotated[str, Meta(extra_json_schema={"format": "uri", "pattern": "^https://"})]
CallbackUrl = Annotated[
    HttpsUrl,
    Meta(
        description=(
            "async/auto: the final status (and `parked`) is POSTed here as OperationStatus JSON, "
            "signed with X-Signature-Timestamp and X-Signature (HMAC-SHA256 over "
            "`timestamp.body`). Its host must be on the connection's callbackUrlHosts."
        )
    ),
]
IdempotencyKey = Annotated[
    str,
    Meta(
        max_length=200,
        description=(
            "Or the Idempotency-Key header. async/auto: the same key and payload return the "
            "first operation; another payload under it is 409 idempotency_conflict."
        ),
    ),
]


# Checked against its pattern by the connection registry, not here: a malformed name must get
# the same 404 as an unknown one (no answer may depend on which Key Vault secrets exist).
ConnectionName = Annotated[
    str,
    Meta(
        description=(
            "A connection name: 1-63 lower-case letters, digits, dots and hyphens "
            "(`^[a-z0-9][a-z0-9.-]{0,62}$`). Unknown or malformed: 404 unknown_connection."
        )
    ),
]


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


class MessageRef(_Model):
    """An existing message: `mailbox` and exactly one of `messageId` or `internetMessageId`."""

    mailbox: Email
    message_id: Annotated[str, Meta(max_length=512)] | None = None
    internet_message_id: Annotated[str, Meta(max_length=998)] | None = None


class Attachment(_Model):
    """A file attachment (exactly one of `contentBytes` or `url`, with a `name`), or an
    existing mail attached as an item (`message`)."""

    name: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    content_type: Annotated[str, Meta(max_length=255)] | None = None
    content_bytes: Base64 = msgspec.field(default_factory=lambda: NO_CONTENT)
    url: HttpsUrl | None = None
    is_inline: bool = False
    content_id: Annotated[str, Meta(max_length=255)] | None = None
    message: (
        Annotated[
            MessageRef,
            Meta(
                description="Attach this mail as an item attachment (Outlook shows it as an "
                "attached message; `name` defaults to its subject). Its mailbox must be on the "
                "connection's allowedSenders and readable by the connection."
            ),
        ]
        | None
    ) = None


class DateTimeTimeZone(_Model):
    """Graph's dateTimeTimeZone: a local date and time (ISO 8601, no offset) and its zone."""

    date_time: Annotated[str, Meta(max_length=40, examples=["2026-03-09T09:00:00"])]
    time_zone: Annotated[
        str, Meta(max_length=100, description="A Windows or IANA time zone name.")
    ] = "UTC"


FlagStatus = Annotated[str, Meta(extra_json_schema={"enum": list(FLAG_STATUSES)})]


class Flag(_Model):
    """Graph's followupFlag. `dueDateTime` needs `startDateTime` (as Graph requires);
    `completedDateTime` only with `flagStatus: complete`."""

    flag_status: FlagStatus
    start_date_time: DateTimeTimeZone | None = None
    due_date_time: DateTimeTimeZone | None = None
    completed_date_time: DateTimeTimeZone | None = None


FlagIn = Annotated[
    FlagStatus | Flag,
    Meta(description='A follow-up flag: "flagged", "complete", "notFlagged", or a followupFlag.'),
]
Categories = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=255)]],
    Meta(
        max_length=25,
        description="Outlook category names (the mailbox's master list shows them with a "
        "colour when the name is on it); no commas, control characters or duplicates.",
    ),
]
SENDER_DESCRIPTION = (
    "Send on behalf: the delegate (Graph's `sender`) who sends for `from` (the principal); the "
    'recipient sees "sender on behalf of from". The delegate needs Send on Behalf on `from` '
    "(`Set-Mailbox -GrantSendOnBehalfTo`); both must be on the connection's allowedSenders."
)


class _MessageFields(_Model):
    connection: ConnectionName
    from_: Annotated[Email, Meta(description=FROM_DESCRIPTION)] | None = msgspec.field(
        name="from", default=None
    )
    sender: Annotated[Email, Meta(description=SENDER_DESCRIPTION)] | None = None
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
    user: User | None = None
    idempotency_key: IdempotencyKey | None = None
    mode: Mode = "sync"
    callback_url: CallbackUrl | None = None
    # Receipts, categories and the follow-up flag, set on the message (None: Graph's default,
    # or on a draft: unchanged).
    is_read_receipt_requested: bool | None = None
    is_delivery_receipt_requested: bool | None = None
    categories: Categories | None = None
    flag: FlagIn | None = None


class OperationRequest(Protocol):
    """What every operation's request has (SendRequest, MoveRequest, DraftRequest, ...)."""

    connection: str
    user: str | None
    idempotency_key: str | None
    mode: str
    callback_url: str | None


DraftId = Annotated[
    str,
    Meta(
        max_length=512,
        description="An existing draft in the sending mailbox's Drafts (its Graph message id); "
        "the fields given (non-empty) replace the draft's before it is used.",
    ),
]
DraftInternetMessageId = Annotated[
    str, Meta(max_length=998, description="Or the draft's internetMessageId.")
]


FolderPath = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=1000,
        description="Well-known name (`archive`) or a path like `Inbox/Verwerkt/2026`; "
        "`.` and `..` are not folder names.",
    ),
]
ArchiveUrl = Annotated[
    HttpsUrl,
    Meta(
        description="Where the message's .eml is PUT (streamed; `Content-Type: message/rfc822`, "
        "`x-ms-blob-type: BlockBlob`, `Repr-Digest: sha-256`), e.g. a blob SAS URL or "
        "DocuFlow's upload endpoint. Its host must be on the connection's archiveUrlHosts; "
        "internal addresses and redirects are refused."
    ),
]


class Archive(_Model):
    """A further step: PUT the resulting message's .eml to `url` (RFC 5322 MIME)."""

    url: ArchiveUrl


class FileTo(_Model):
    """Send-and-file: once Exchange filed the Sent Items copy, move it here and mark it (the
    categories are added to the copy's own)."""

    destination: FolderPath
    create_missing_folders: bool = False
    categories: Categories = []
    mark_as_read: bool | None = None


class SendRequest(_MessageFields):
    """POST /api/mail/send: a new mail, or an existing draft (`draftId`) a person reviewed."""

    save_to_sent_items: bool = True
    draft_id: DraftId | None = None
    draft_internet_message_id: DraftInternetMessageId | None = None
    file_to: FileTo | None = None
    archive: Archive | None = None


class DraftRequest(_MessageFields):
    """POST /api/mail/draft: a new draft, or an update of one (`draftId`)."""

    draft_id: DraftId | None = None
    draft_internet_message_id: DraftInternetMessageId | None = None


ReplyMailbox = Annotated[
    Email,
    Meta(
        description="The mailbox holding the original; the reply is written and sent there "
        "(its copy lands in that mailbox's Sent Items) and `from` defaults to it."
    ),
]
Comment = Annotated[
    str,
    Meta(
        max_length=1_000_000,
        description="Text Graph puts above the quoted original (HTML-escaped). Give `comment` "
        "or `body`, not both: `body` replaces the whole body, without the quoted original.",
    ),
]


class ReplyRequest(_MessageFields, kw_only=True):
    """POST /api/mail/reply: answer a mail in the same conversation (`replyAll`: everyone)."""

    mailbox: ReplyMailbox
    message_id: Annotated[str, Meta(max_length=512)] | None = None
    internet_message_id: Annotated[str, Meta(max_length=998)] | None = None
    reply_all: bool = False
    comment: Comment | None = None
    file_to: FileTo | None = None
    archive: Archive | None = None


class ForwardRequest(_MessageFields, kw_only=True):
    """POST /api/mail/forward: forward a mail (with its attachments) to `to`."""

    mailbox: ReplyMailbox
    message_id: Annotated[str, Meta(max_length=512)] | None = None
    internet_message_id: Annotated[str, Meta(max_length=998)] | None = None
    comment: Comment | None = None
    file_to: FileTo | None = None
    archive: Archive | None = None


class MoveRequest(_Model):
    """POST /api/mail/move: `messageId` or `internetMessageId`, and a destination; optionally
    marked (read, categories, flag) in the same operation, or copied instead of moved."""

    connection: ConnectionName
    mailbox: Email
    destination: FolderPath
    message_id: str | None = None
    internet_message_id: str | None = None
    create_missing_folders: bool = False
    copy: Annotated[
        bool, Meta(description="Copy instead of move: the original stays; the answer is the copy.")
    ] = False
    mark_as_read: Annotated[bool, Meta(description="Set isRead on the moved message.")] | None = (
        None
    )
    categories: Annotated[
        Categories, Meta(description="Added to the message's categories (or replacing them).")
    ] = []
    replace_categories: Annotated[
        bool, Meta(description="true: `categories` replaces the message's categories.")
    ] = False
    flag: FlagIn | None = None
    archive: Archive | None = None
    user: str | None = None
    idempotency_key: IdempotencyKey | None = None
    mode: Mode = "sync"
    callback_url: CallbackUrl | None = None


class ExportRequest(_Model):
    """POST /api/mail/export: the message's MIME (.eml), answered or PUT to `archiveUrl`."""

    connection: ConnectionName
    mailbox: Email
    message_id: str | None = None
    internet_message_id: str | None = None
    archive_url: (
        Annotated[
            ArchiveUrl,
            Meta(
                description="Instead of answering the .eml, PUT it here (required for async/auto)."
            ),
        ]
        | None
    ) = None
    user: User | None = None
    idempotency_key: IdempotencyKey | None = None
    mode: Mode = "sync"
    callback_url: CallbackUrl | None = None


class ArchiveResult(msgspec.Struct, rename="camel", omit_defaults=True):
    """What was PUT to the archive URL."""

    url: Annotated[str, Meta(description="The archive URL without its query (SAS) string.")]
    size: Annotated[int, Meta(description="Bytes of the .eml.")]
    sha256: Annotated[str, Meta(description="SHA-256 of the .eml, lower-case hex.")]
    status: int | None = None


class FiledResult(msgspec.Struct, rename="camel", omit_defaults=True):
    """Where send-and-file put the Sent Items copy."""

    message_id: str
    destination_folder_id: str


class SendResult(msgspec.Struct, rename="camel", omit_defaults=True):
    operation_id: str
    status: str
    message_id: str | None = None
    internet_message_id: str | None = None
    filed: FiledResult | None = None
    archive: ArchiveResult | None = None


class ExportResult(msgspec.Struct, rename="camel", omit_defaults=True):
    """POST /api/mail/export with archiveUrl."""

    operation_id: str
    status: str
    message_id: str
    archive: ArchiveResult


class ReplyResult(msgspec.Struct, rename="camel", omit_defaults=True):
    """The answer of reply and forward: the sent message, in the original's conversation."""

    operation_id: str
    status: str
    message_id: str | None = None
    internet_message_id: str | None = None
    conversation_id: str | None = None
    filed: FiledResult | None = None
    archive: ArchiveResult | None = None


class DraftResult(msgspec.Struct, rename="camel", omit_defaults=True):
    operation_id: str
    status: str
    message_id: str
    web_link: str | None = None
    conversation_id: str | None = None


class MoveResult(msgspec.Struct, rename="camel", omit_defaults=True):
    operation_id: str
    status: Annotated[str, Meta(description="`moved`, or `copied` (messageId is the copy).")]
    message_id: str
    destination_folder_id: str
    archive: ArchiveResult | None = None


class Accepted(msgspec.Struct, rename="camel", omit_defaults=True):
    """202 for `mode: async` (and `auto` when it fell back to the queue): where to look."""

    operation_id: str
    status: Annotated[
        str,
        Meta(
            description="`accepted` for new work; for a duplicate key, "
            "the first operation's current status."
        ),
    ]
    status_url: Annotated[str, Meta(description="GET it (function key) for the status.")]
    duplicate: Annotated[
        bool, Meta(description="true: the idempotency key was seen before with this payload.")
    ] = False
    result: dict[str, Any] | None = None
    error: OperationError | None = None


class OperationError(msgspec.Struct, omit_defaults=True):
    """Why the last attempt failed: one of the error codes (see ErrorResponse), plus
    `reauth_expired` for parked work nobody signed in for in time."""

    code: str
    message: str
    details: list[ErrorDetail] = []
    signInUrl: str | None = None
    adminCommand: str | None = None
    graph: GraphErrorInfo | None = None


class CallbackReceipt(msgspec.Struct, omit_defaults=True):
    """How delivering the signed callback went."""

    status: Annotated[str, Meta(extra_json_schema={"enum": ["delivered", "failed"]})]
    attempts: int
    httpStatus: int | None = None
    reason: str | None = None


NextAttemptAt = Annotated[str, Meta(description="When a re-scheduled attempt runs.")]
OperationResult = Annotated[
    dict[str, Any],
    Meta(
        description="The operation's answer: SendResult, MoveResult, DraftResult, ReplyResult "
        "or ExportResult."
    ),
]
ParkedSignInUrl = Annotated[str, Meta(description="parked, user mode: the link for that user.")]
ParkedAdminCommand = Annotated[
    str, Meta(description="parked, service-account mode: the command an admin runs.")
]
ParkedUntil = Annotated[str, Meta(description="parked: when it ends `failed` (reauth_expired).")]
PoisonQueue = Annotated[str, Meta(description="poisoned: the queue that holds the message.")]


class Status(StrEnum):
    """Where an operation stands (docs/architecture.md has the diagram)."""

    ACCEPTED = "accepted"  # recorded; a queue message will run (or re-run) it
    RUNNING = "running"  # an attempt holds the claim until claimedUntil
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARKED = "parked"  # waits for a sign-in (signInUrl / adminCommand) until parkedUntil
    # The message exhausted maxDequeueCount and sits in `<queue>-poison`; an operator may move
    # it back, which runs the operation again (in resume mode).
    POISONED = "poisoned"


StatusText = Annotated[str, Meta(extra_json_schema={"enum": [s.value for s in Status]})]


class OperationStatus(msgspec.Struct, rename="camel", omit_defaults=True):
    """GET /api/operations/{operationId}; a callback's body is a subset of it. Times are UTC
    ISO 8601. The stored record (shared.work.record.Operation) extends it with what only the
    app sees, so each field is declared once."""

    operation_id: str
    kind: Annotated[
        str, Meta(description="The operation: send, move, draft, reply, forward or export.")
    ] = msgspec.field(name="operation")
    connection: str
    status: StatusText
    attempts: int
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    next_attempt_at: NextAttemptAt | None = None
    result: OperationResult | None = None
    error: OperationError | None = None
    sign_in_url: ParkedSignInUrl | None = None
    admin_command: ParkedAdminCommand | None = None
    parked_until: ParkedUntil | None = None
    poison_queue: PoisonQueue | None = None
    callback: CallbackReceipt | None = None


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


def _raw_to_builtins(value: Any) -> Any:
    if isinstance(value, msgspec.Raw):
        return msgspec.json.decode(value)
    raise TypeError(f"cannot convert {type(value).__name__}")


def to_builtins(value: Any) -> Any:
    """A Struct as plain JSON-ready data (base64 content as its text)."""
    return msgspec.to_builtins(value, enc_hook=_raw_to_builtins)
