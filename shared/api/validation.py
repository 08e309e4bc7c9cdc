"""Decode request bodies into the models and check every rule beyond types, all at once.

`decode(kind, body)` returns the typed request or raises `ValidationFailed` whose `details`
name each bad field (`to[0]`, `attachments[1].url`, ...). Type errors come from msgspec (it stops
at the first); the semantic rules below collect every problem so a caller fixes them in one go.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

import msgspec

from shared import base64_content
from shared.errors import Detail, ValidationFailed
from shared.graph.folders import parse_destination
from shared.models import (
    BODY_TYPES,
    FLAG_STATUSES,
    IMPORTANCE_VALUES,
    MODES,
    Attachment,
    DateTimeTimeZone,
    DraftRequest,
    ExportRequest,
    Flag,
    ForwardRequest,
    MessageRef,
    MoveRequest,
    Recipient,
    ReplyRequest,
    SendRequest,
)

T = TypeVar(
    "T", SendRequest, DraftRequest, MoveRequest, ReplyRequest, ForwardRequest, ExportRequest
)
MessageRequest = SendRequest | DraftRequest | ReplyRequest | ForwardRequest
AnyRequest = MessageRequest | MoveRequest | ExportRequest

MAX_RECIPIENTS = 500  # Graph's limit per message (to + cc + bcc); replyTo counts too here
MAX_ATTACHMENTS = 250  # far above any real mail; bounds the work one request can ask for
MAX_DETAILS = 100  # one answer never lists more problems than this
# Never in a header or a file name: C0 and C1 controls (NUL, CR, LF, VT, ...), DEL, and the
# Unicode line and paragraph separators (NEL is C1). A tab is allowed: it cannot end a line.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
UNSAFE_TEXT = "must not contain control characters or line separators"
MAX_HEADERS = 5  # Graph's limit on internetMessageHeaders
MAX_HEADER_VALUE = 998  # RFC 5322 line length
# A practical addr-spec: dot-atom local part and a dotted DNS domain. Quoted local parts are
# legal but so rare in business mail that refusing them beats letting through garbage.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}"
)
FROM_REQUIRED = (
    "required; only a user-mode connection may leave it out, and then it defaults to `user`"
)
_HEADER_NAME = re.compile(r"[xX]-[A-Za-z0-9-]{1,120}")
# Outlook keeps a message's categories as a list of names and its own UI splits names on
# commas, so a name with a comma would show as two categories.
_CATEGORY_FORBIDDEN = ","
_AT_PATH = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>[^`]*)`$", re.S)


def _field_from_path(path: str) -> str | None:
    """msgspec's `$.to[0].address` → `to[0].address` (None for the whole body)."""
    path = path[1:] if path.startswith(".") else path
    return path or None


def decode(kind: type[T], body: bytes) -> T:
    """Decode and validate `body` as `kind`; raises ValidationFailed with field details."""
    if not body:
        raise ValidationFailed(
            "The request body is empty; send a JSON object.",
            details=[Detail(None, "expected a JSON object")],
        )
    try:
        request = msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT_PATH.match(text)
        detail = (
            Detail(_field_from_path(match["path"]), match["msg"]) if match else Detail(None, text)
        )
        raise ValidationFailed("The request does not match the schema.", details=[detail]) from exc
    except msgspec.DecodeError as exc:
        raise ValidationFailed(
            "The request body is not valid JSON.", details=[Detail(None, str(exc))]
        ) from exc
    problems = check(request)
    if problems:
        shown = problems[:MAX_DETAILS]
        if len(problems) > MAX_DETAILS:
            shown.append(Detail(None, f"and {len(problems) - MAX_DETAILS} more problems"))
        raise ValidationFailed(f"The request has {len(problems)} invalid field(s).", details=shown)
    return request


def unsafe(value: str | None) -> bool:
    """True when `value` holds a character that must never reach a header or a file name."""
    return bool(value) and _UNSAFE.search(value) is not None


def check_categories(field: str, values: list[str] | None, out: list[Detail]) -> None:
    """Outlook category names: no control characters or commas, no duplicates (Outlook
    compares them case-insensitively)."""
    seen: set[str] = set()
    for i, name in enumerate(values or []):
        if unsafe(name):
            out.append(Detail(f"{field}[{i}]", UNSAFE_TEXT))
        elif _CATEGORY_FORBIDDEN in name:
            out.append(Detail(f"{field}[{i}]", "must not contain a comma"))
        elif not name.strip():
            out.append(Detail(f"{field}[{i}]", "must not be blank"))
        elif name.casefold() in seen:
            out.append(Detail(f"{field}[{i}]", "is given twice"))
        seen.add(name.casefold())


def _check_when(field: str, value: DateTimeTimeZone | None, out: list[Detail]) -> None:
    if value is None:
        return
    if unsafe(value.date_time) or unsafe(value.time_zone) or not value.time_zone.strip():
        out.append(Detail(f"{field}.timeZone", f"{UNSAFE_TEXT}, nor be blank"))
    try:
        parsed = datetime.fromisoformat(value.date_time)
    except ValueError:
        out.append(Detail(f"{field}.dateTime", "must be an ISO 8601 date and time"))
        return
    if parsed.tzinfo is not None:
        out.append(Detail(f"{field}.dateTime", "has no offset: give the zone in timeZone"))


def check_flag(field: str, value: str | Flag | None, out: list[Detail]) -> None:
    """A follow-up flag: a status, or Graph's followupFlag with its date rules."""
    if value is None:
        return
    status = value if isinstance(value, str) else value.flag_status
    if status not in FLAG_STATUSES:
        name = field if isinstance(value, str) else f"{field}.flagStatus"
        out.append(Detail(name, f"must be one of {', '.join(FLAG_STATUSES)}"))
    if isinstance(value, str):
        return
    for key, when in (
        ("startDateTime", value.start_date_time),
        ("dueDateTime", value.due_date_time),
        ("completedDateTime", value.completed_date_time),
    ):
        _check_when(f"{field}.{key}", when, out)
    if value.due_date_time is not None and value.start_date_time is None:
        # followupFlag: "To set the due date, you must also specify the startDateTime".
        out.append(Detail(f"{field}.startDateTime", "is required with dueDateTime"))
    if value.completed_date_time is not None and status != "complete":
        out.append(Detail(f"{field}.completedDateTime", "only with flagStatus complete"))


def check_message_ref(field: str, ref: MessageRef, out: list[Detail]) -> None:
    """A mail named by its mailbox and exactly one of messageId / internetMessageId."""
    problem = address_problem(ref.mailbox)
    if problem:
        out.append(Detail(f"{field}.mailbox", problem))
    _check_message_id(field, ref.message_id, ref.internet_message_id, out)


def _check_message_id(
    field: str | None, message_id: str | None, internet_message_id: str | None, out: list[Detail]
) -> None:
    prefix = f"{field}." if field else ""
    if (message_id is None) == (internet_message_id is None):
        out.append(
            Detail(f"{prefix}messageId", "give exactly one of messageId or internetMessageId")
        )
    for key, value in (("messageId", message_id), ("internetMessageId", internet_message_id)):
        if value is not None and (unsafe(value) or not value.strip()):
            out.append(Detail(f"{prefix}{key}", f"{UNSAFE_TEXT}, nor be blank"))


def address_problem(address: str) -> str | None:
    """Why `address` is not a usable mail address, or None when it is."""
    if "\r" in address or "\n" in address:
        return "must not contain CR or LF"
    if unsafe(address):
        return UNSAFE_TEXT
    if len(address) > 254:
        return "is longer than 254 characters"
    if not _ADDRESS.fullmatch(address):
        return f"is not a valid e-mail address: {address[:80]!r}"
    return None


def _check_recipient(field: str, value: str | Recipient, out: list[Detail]) -> None:
    address = value if isinstance(value, str) else value.address
    problem = address_problem(address)
    if problem:
        out.append(Detail(field if isinstance(value, str) else f"{field}.address", problem))
    if isinstance(value, Recipient) and unsafe(value.name):
        out.append(Detail(f"{field}.name", UNSAFE_TEXT))


def _check_url(field: str, url: str, out: list[Detail]) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        out.append(Detail(field, "is not a valid URL"))
        return
    if unsafe(url) or any(c.isspace() for c in url):
        out.append(Detail(field, "must not contain spaces or control characters"))
        return
    if parts.scheme != "https":
        out.append(Detail(field, "must be an https URL"))
    elif not host:
        out.append(Detail(field, "has no host"))
    elif parts.username or parts.password:
        out.append(Detail(field, "must not carry credentials"))


def _check_message(request: MessageRequest, out: list[Detail]) -> None:
    answers = isinstance(request, ReplyRequest | ForwardRequest)
    if request.from_ is not None:
        problem = address_problem(request.from_)
        if problem:
            out.append(Detail("from", problem))
    elif request.user is None and not answers:
        # Whether `user` may stand in for `from` depends on the connection's mode, which the
        # operation checks (shared.operations.compose.default_sender); without `user` it never can.
        out.append(Detail("from", FROM_REQUIRED))
    if request.from_ is None and request.user is not None:
        problem = address_problem(request.user)
        if problem:
            out.append(Detail("user", problem))
    if request.sender is not None:
        problem = address_problem(request.sender)
        if problem:
            out.append(Detail("sender", problem))
    check_categories("categories", request.categories, out)
    check_flag("flag", request.flag, out)
    if answers:
        _check_answer(request, out)
    else:
        _check_draft_ref(request, out)
    total = 0
    for name in ("to", "cc", "bcc", "replyTo"):
        values = getattr(request, "reply_to" if name == "replyTo" else name)
        for i, value in enumerate(values):
            _check_recipient(f"{name}[{i}]", value, out)
        if name != "replyTo":
            total += len(values)
    if total > MAX_RECIPIENTS:
        out.append(
            Detail("to", f"{total} recipients in to, cc and bcc; Graph allows {MAX_RECIPIENTS}")
        )
    with_reply_to = total + len(request.reply_to)
    if total <= MAX_RECIPIENTS < with_reply_to:
        out.append(
            Detail(
                "replyTo",
                f"{with_reply_to} addresses in to, cc, bcc and replyTo; at most {MAX_RECIPIENTS}",
            )
        )
    from_draft = isinstance(request, SendRequest | DraftRequest) and (
        request.draft_id is not None or request.draft_internet_message_id is not None
    )
    if isinstance(request, SendRequest) and total == 0 and not from_draft:
        out.append(Detail("to", "a mail needs at least one recipient in to, cc or bcc"))
    if isinstance(request, ForwardRequest) and not request.to:
        # createForward: "Specifying both or specifying neither will return ... 400".
        out.append(Detail("to", "a forward needs at least one recipient in to"))
    if unsafe(request.subject):
        out.append(Detail("subject", UNSAFE_TEXT))
    if request.body is not None and request.body.content_type not in BODY_TYPES:
        out.append(Detail("body.contentType", f"must be one of {', '.join(BODY_TYPES)}"))
    if request.importance not in IMPORTANCE_VALUES:
        out.append(Detail("importance", f"must be one of {', '.join(IMPORTANCE_VALUES)}"))
    if len(request.headers) > MAX_HEADERS:
        out.append(Detail("headers", f"{len(request.headers)} headers; Graph allows {MAX_HEADERS}"))
    for key, value in request.headers.items():
        if not _HEADER_NAME.fullmatch(key):
            out.append(
                Detail(f"headers.{key[:60]}", "header names must start with x- ([A-Za-z0-9-])")
            )
        if unsafe(value):
            out.append(Detail(f"headers.{key[:60]}", UNSAFE_TEXT))
        elif len(value) > MAX_HEADER_VALUE:
            out.append(Detail(f"headers.{key[:60]}", f"longer than {MAX_HEADER_VALUE} characters"))
    if len(request.attachments) > MAX_ATTACHMENTS:
        out.append(
            Detail(
                "attachments", f"{len(request.attachments)} attachments; at most {MAX_ATTACHMENTS}"
            )
        )
        return  # the per-attachment checks would only repeat the point
    for i, att in enumerate(request.attachments):
        field = f"attachments[{i}]"
        has_content = base64_content.present(att.content_bytes)
        if att.message is not None:
            _check_item_attachment(field, att, has_content, out)
            continue
        if att.name is None:
            out.append(Detail(f"{field}.name", "required for a file attachment"))
        if has_content == (att.url is not None):
            out.append(Detail(field, "give exactly one of contentBytes or url"))
        if has_content:
            # Length and alphabet only: nothing is decoded before the request is authorised.
            problem = base64_content.problem(att.content_bytes)
            if problem:
                out.append(Detail(f"{field}.contentBytes", problem))
        if att.url is not None:
            _check_url(f"{field}.url", att.url, out)
        if att.is_inline and not att.content_id:
            out.append(Detail(f"{field}.contentId", "inline attachments need a contentId"))
        if att.name is not None and (unsafe(att.name) or any(c in att.name for c in "/\\")):
            out.append(Detail(f"{field}.name", f"{UNSAFE_TEXT}, nor slashes"))
        for key, value in (("contentType", att.content_type), ("contentId", att.content_id)):
            if unsafe(value):
                out.append(Detail(f"{field}.{key}", UNSAFE_TEXT))


def _check_item_attachment(
    field: str, att: Attachment, has_content: bool, out: list[Detail]
) -> None:
    """An existing mail attached as an item: only `message` (and optionally `name`)."""
    if has_content or att.url is not None:
        out.append(Detail(field, "give one of contentBytes, url or message"))
    if att.is_inline or att.content_id is not None or att.content_type is not None:
        out.append(Detail(field, "an attached mail has no contentType, contentId or isInline"))
    if att.name is not None and (unsafe(att.name) or any(c in att.name for c in "/\\")):
        out.append(Detail(f"{field}.name", f"{UNSAFE_TEXT}, nor slashes"))
    if att.message is not None:
        check_message_ref(f"{field}.message", att.message, out)


def _check_draft_ref(request: SendRequest | DraftRequest, out: list[Detail]) -> None:
    """`draftId` / `draftInternetMessageId`: at most one, well-formed text."""
    if request.draft_id is not None and request.draft_internet_message_id is not None:
        out.append(Detail("draftId", "give at most one of draftId or draftInternetMessageId"))
    for key, value in (
        ("draftId", request.draft_id),
        ("draftInternetMessageId", request.draft_internet_message_id),
    ):
        if value is not None and (unsafe(value) or not value.strip()):
            out.append(Detail(key, f"{UNSAFE_TEXT}, nor be blank"))
    from_draft = request.draft_id is not None or request.draft_internet_message_id is not None
    if from_draft and request.headers:
        # Graph sets internetMessageHeaders only when a message is created.
        out.append(Detail("headers", "can be set only on a new mail, not on an existing draft"))
    if from_draft and isinstance(request, SendRequest) and not request.save_to_sent_items:
        out.append(
            Detail("saveToSentItems", "a draft is sent with its copy; false needs a new mail")
        )


def _check_answer(request: ReplyRequest | ForwardRequest, out: list[Detail]) -> None:
    """Reply and forward: the original, and Graph's `comment` or `body` (not both)."""
    problem = address_problem(request.mailbox)
    if problem:
        out.append(Detail("mailbox", problem))
    _check_message_id(None, request.message_id, request.internet_message_id, out)
    if request.comment is not None and request.body is not None:
        # createReply / createForward: "Specifying both will return an HTTP 400".
        out.append(Detail("comment", "give comment or body, not both"))
    if request.comment is not None and "\x00" in request.comment:
        out.append(Detail("comment", "must not contain NUL characters"))


def _check_destination(field: str, destination: str, out: list[Detail]) -> None:
    try:
        parse_destination(destination)
    except ValueError as exc:
        out.append(Detail(field, str(exc)))
    if unsafe(destination):
        out.append(Detail(field, UNSAFE_TEXT))


def _check_mailbox_and_id(request: MoveRequest | ExportRequest, out: list[Detail]) -> None:
    problem = address_problem(request.mailbox)
    if problem:
        out.append(Detail("mailbox", problem))
    _check_message_id(None, request.message_id, request.internet_message_id, out)


def _check_filing(request: SendRequest | ReplyRequest | ForwardRequest, out: list[Detail]) -> None:
    """fileTo and archive on a send, reply or forward."""
    if request.file_to is not None:
        _check_destination("fileTo.destination", request.file_to.destination, out)
        check_categories("fileTo.categories", request.file_to.categories, out)
    if request.archive is not None:
        _check_url("archive.url", request.archive.url, out)
    wants_copy = request.file_to is not None or request.archive is not None
    if isinstance(request, SendRequest) and not request.save_to_sent_items and wants_copy:
        field = "fileTo" if request.file_to else "archive"
        out.append(Detail(field, "needs saveToSentItems (it files or archives the sent copy)"))


def _check_common(request: AnyRequest, out: list[Detail]) -> None:
    if request.mode not in MODES:
        out.append(Detail("mode", f"must be one of {', '.join(MODES)}"))
    if request.callback_url is not None:
        _check_url("callbackUrl", request.callback_url, out)
        if request.mode == "sync":
            # A sync caller gets the outcome in the answer; callbacks are for queued work.
            out.append(Detail("callbackUrl", "needs mode 'async' or 'auto'"))


def check(request: AnyRequest) -> list[Detail]:
    """Every semantic problem of a decoded request (empty list: valid)."""
    out: list[Detail] = []
    if isinstance(request, MoveRequest):
        _check_mailbox_and_id(request, out)
        _check_destination("destination", request.destination, out)
        check_categories("categories", request.categories, out)
        check_flag("flag", request.flag, out)
        if request.archive is not None:
            _check_url("archive.url", request.archive.url, out)
    elif isinstance(request, ExportRequest):
        _check_mailbox_and_id(request, out)
        if request.archive_url is not None:
            _check_url("archiveUrl", request.archive_url, out)
        elif request.mode in ("async", "auto"):
            # Nobody waits for a queued export's answer: it must go somewhere.
            out.append(Detail("archiveUrl", f"required with mode {request.mode!r}"))
    else:
        _check_message(request, out)
        if not isinstance(request, DraftRequest):
            _check_filing(request, out)
    _check_common(request, out)
    return out
