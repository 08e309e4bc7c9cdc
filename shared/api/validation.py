"""Decode request bodies into the models and check every rule beyond types, all at once.

`decode(kind, body)` returns the typed request or raises `ValidationFailed` whose `details`
name each bad field (`to[0]`, `attachments[1].url`, ...). Type errors come from msgspec (it stops
at the first); the semantic rules below collect every problem so a caller fixes them in one go.
"""

from __future__ import annotations

import re
from typing import TypeVar
from urllib.parse import urlsplit

import msgspec

from shared import base64_content
from shared.errors import Detail, ValidationFailed
from shared.graph.folders import parse_destination
from shared.models import (
    BODY_TYPES,
    IMPORTANCE_VALUES,
    MODES,
    DraftRequest,
    MoveRequest,
    Recipient,
    SendRequest,
)

T = TypeVar("T", SendRequest, DraftRequest, MoveRequest)

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


def _check_message(request: SendRequest | DraftRequest, out: list[Detail]) -> None:
    if request.from_ is not None:
        problem = address_problem(request.from_)
        if problem:
            out.append(Detail("from", problem))
    elif request.user is None:
        # Whether `user` may stand in for `from` depends on the connection's mode, which the
        # operation checks (shared.operations.compose.default_sender); without `user` it never can.
        out.append(Detail("from", FROM_REQUIRED))
    if request.from_ is None and request.user is not None:
        problem = address_problem(request.user)
        if problem:
            out.append(Detail("user", problem))
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
    if isinstance(request, SendRequest) and total == 0:
        out.append(Detail("to", "a mail needs at least one recipient in to, cc or bcc"))
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
        if unsafe(att.name) or any(c in att.name for c in "/\\"):
            out.append(Detail(f"{field}.name", f"{UNSAFE_TEXT}, nor slashes"))
        for key, value in (("contentType", att.content_type), ("contentId", att.content_id)):
            if unsafe(value):
                out.append(Detail(f"{field}.{key}", UNSAFE_TEXT))


def _check_common(request: SendRequest | DraftRequest | MoveRequest, out: list[Detail]) -> None:
    if request.mode not in MODES:
        out.append(Detail("mode", f"must be one of {', '.join(MODES)}"))
    if request.callback_url is not None:
        _check_url("callbackUrl", request.callback_url, out)
        if request.mode == "sync":
            # A sync caller gets the outcome in the answer; callbacks are for queued work.
            out.append(Detail("callbackUrl", "needs mode 'async' or 'auto'"))


def check(request: SendRequest | DraftRequest | MoveRequest) -> list[Detail]:
    """Every semantic problem of a decoded request (empty list: valid)."""
    out: list[Detail] = []
    if isinstance(request, MoveRequest):
        problem = address_problem(request.mailbox)
        if problem:
            out.append(Detail("mailbox", problem))
        if (request.message_id is None) == (request.internet_message_id is None):
            out.append(Detail("messageId", "give exactly one of messageId or internetMessageId"))
        try:
            parse_destination(request.destination)
        except ValueError as exc:
            out.append(Detail("destination", str(exc)))
        if unsafe(request.destination):
            out.append(Detail("destination", UNSAFE_TEXT))
    else:
        _check_message(request, out)
    _check_common(request, out)
    return out
