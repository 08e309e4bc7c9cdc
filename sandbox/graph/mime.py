"""A message's MIME content (`GET …/messages/{id}/$value`): RFC 5322 built with Python's `email`
package, with the attachments' bytes streamed into it so a 100 MB message is never in memory.

Exchange converts its items to MIME on the way out (outlook-get-mime-message.md): From, Sender
(when it differs), To, Cc, Bcc (only on the sender's own copies, which keep them), Reply-To,
Subject, Thread-Topic, Thread-Index, Date, Message-ID, In-Reply-To, References, Importance,
Keywords (the categories), the transport's Received lines and the x- headers, then the body:
`text/plain`, or `multipart/alternative` of text and HTML; inline images (with `Content-ID`)
make the HTML part `multipart/related`; file attachments make the whole `multipart/mixed`;
item attachments are `message/rfc822` parts holding the attached message's own MIME.

The skeleton (headers, boundaries, part headers) comes from `email`; each attachment's part
carries a placeholder that is replaced, while streaming, by its base64 read from the store in
chunks of whole 76-character lines.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from sandbox.graph import bodies

# Whole base64 lines (57 bytes -> 76 characters) per read: about 240 KB of file per chunk.
LINE_BYTES = 57
CHUNK_BYTES = LINE_BYTES * 4096
# Headers we build from the item itself; stored ones of these names are not copied again.
OWN_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "importance",
        "keywords",
        "thread-topic",
        "thread-index",
    }
)
# Stored headers that travel into the MIME: the transport's trace and the x- headers.
PASSED_HEADERS = ("received", "authentication-results", "return-path")

# An attachment part: its MIME headers and a way to read its bytes in chunks.
Reader = Callable[[], Iterator[bytes]]


def _clean(value: Any) -> str:
    """A header value on one line (a CR or LF would end the header early)."""
    return re.sub(r"[\r\n]+", " ", str(value or "")).strip()


def _address(rcpt: dict[str, Any] | None) -> Address | None:
    email = (rcpt or {}).get("emailAddress") or {}
    addr = _clean(email.get("address"))
    if not addr or "@" not in addr:
        return None
    name = _clean(email.get("name"))
    if name == addr:
        name = ""
    user, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=user, domain=domain)


def _addresses(rcpts: list[dict[str, Any]] | None) -> list[Address]:
    return [a for a in (_address(r) for r in rcpts or []) if a is not None]


def _date(value: Any) -> str:
    text = str(value or "")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return format_datetime(datetime.now().astimezone())
    return format_datetime(when)


def _header(headers: list[dict[str, str]], name: str) -> str | None:
    for item in headers:
        if str(item.get("name", "")).lower() == name:
            return _clean(item.get("value"))
    return None


class Rendering:
    """One message turned into MIME: `skeleton` holds placeholders for `parts`' bytes."""

    def __init__(self, skeleton: bytes, parts: dict[bytes, tuple[int, Reader]]) -> None:
        self.skeleton = skeleton
        self.parts = parts

    @property
    def size(self) -> int:
        """Length of the whole MIME in bytes (known before a byte is streamed)."""
        total = len(self.skeleton)
        for token, (length, _) in self.parts.items():
            total += _encoded_length(length) - len(token)
        return total

    def chunks(self) -> Iterator[bytes]:
        """The MIME, the skeleton's pieces and each attachment's base64 lines in turn."""
        if not self.parts:
            yield self.skeleton
            return
        pattern = re.compile(b"|".join(re.escape(t) for t in self.parts))
        at = 0
        for match in pattern.finditer(self.skeleton):
            yield self.skeleton[at : match.start()]
            yield from _base64_lines(self.parts[match.group(0)][1]())
            at = match.end()
        yield self.skeleton[at:]


def _encoded_length(size: int) -> int:
    """Characters of `size` bytes as base64 lines of 76, joined by CRLF (no trailing CRLF)."""
    lines = -(-size // LINE_BYTES)
    return -(-size // 3) * 4 + 2 * max(0, lines - 1)


def _base64_lines(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """`pieces` as base64 in 76-character lines joined by CRLF (the placeholder's CRLF ends the
    last one), in chunks of whole lines."""
    pending = b""
    first = True
    for piece in pieces:
        pending += piece
        usable = len(pending) - len(pending) % CHUNK_BYTES
        if usable:
            block, pending = pending[:usable], pending[usable:]
            yield (b"" if first else b"\r\n") + _lines(block)
            first = False
    if pending:
        yield (b"" if first else b"\r\n") + _lines(pending)


def _lines(block: bytes) -> bytes:
    encoded = base64.b64encode(block)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _drop_mime_version(part: Any) -> None:
    """Remove the MIME-Version `make_related` leaves on a body part (the message's own header
    covers its parts); an attached message keeps its own."""
    if part.get_content_type() == "message/rfc822":
        return
    del part["MIME-Version"]
    if part.is_multipart():
        for child in part.iter_parts():
            _drop_mime_version(child)


def _split_type(content_type: str) -> tuple[str, str]:
    main, _, sub = (content_type or "application/octet-stream").partition(";")[0].partition("/")
    main, sub = main.strip().lower(), sub.strip().lower()
    if not main or not sub or not re.fullmatch(r"[\w.+-]+", main + sub):
        return "application", "octet-stream"
    return main, sub


def _binary_part(
    name: str, content_type: str, token: str, *, inline: bool, content_id: str | None
) -> MIMEPart:
    """A base64 leaf whose payload is a placeholder (its bytes are streamed in later)."""
    main, sub = _split_type(content_type)
    part = MIMEPart(policy=SMTP)
    part.add_header("Content-Type", f"{main}/{sub}", name=_clean(name))
    if content_id:
        part["Content-ID"] = f"<{_clean(content_id).strip('<>')}>"
    part.add_header("Content-Disposition", "inline" if inline else "attachment", filename=name)
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(token)
    return part


class MimeBuilder:
    """Builds the MIME of stored messages; `attachments(immutable_id)` lists a message's
    attachment rows and `open_blob(row)` reads one's bytes in chunks."""

    def __init__(
        self,
        attachments: Callable[[str], list[Any]],
        open_blob: Callable[[Any], Iterator[bytes]],
        item: Callable[[Any], tuple[dict[str, Any], str] | None] | None = None,
    ) -> None:
        self._attachments = attachments
        self._open_blob = open_blob
        # An item attachment's message (its Graph fields and immutable id), when the store
        # keeps item attachments; None for file attachments.
        self._item = item or (lambda row: None)

    def render(self, data: dict[str, Any], immutable_id: str) -> Rendering:
        parts: dict[bytes, tuple[int, Reader]] = {}
        message = self._message(data, immutable_id, parts)
        # Boundaries from the item (as Exchange derives its `_000_…_` ones): the same message
        # converts to the same bytes every time.
        seed = hashlib.sha256(immutable_id.encode()).hexdigest()[:24]
        for n, part in enumerate(p for p in message.walk() if p.is_multipart()):
            if part.get_content_type().startswith("multipart/"):
                part.set_boundary(f"_{n:03d}_{seed}_")
        skeleton = message.as_bytes(policy=SMTP)
        return Rendering(skeleton, parts)

    def _message(
        self,
        data: dict[str, Any],
        immutable_id: str,
        parts: dict[bytes, tuple[int, Reader]],
    ) -> EmailMessage:
        msg = EmailMessage(policy=SMTP)
        stored = list(data.get("internetMessageHeaders") or [])
        for item in stored:  # the transport's trace first, as a received message shows it
            name = str(item.get("name", ""))
            if name.lower() in PASSED_HEADERS:
                msg[name] = _clean(item.get("value"))
        sender, author = _address(data.get("sender")), _address(data.get("from"))
        if author is not None:
            msg["From"] = author
        if sender is not None and author is not None and str(sender) != str(author):
            msg["Sender"] = sender
        for header, field in (
            ("To", "toRecipients"),
            ("Cc", "ccRecipients"),
            ("Bcc", "bccRecipients"),
            ("Reply-To", "replyTo"),
        ):
            found = _addresses(data.get(field))
            if found:
                msg[header] = found
        subject = _clean(data.get("subject"))
        msg["Subject"] = subject
        msg["Thread-Topic"] = subject
        if data.get("conversationIndex"):
            msg["Thread-Index"] = _clean(data["conversationIndex"])
        msg["Date"] = _date(data.get("sentDateTime") or data.get("createdDateTime"))
        if data.get("internetMessageId"):
            msg["Message-ID"] = _clean(data["internetMessageId"])
        for header, field in (("In-Reply-To", "inReplyTo"), ("References", "references")):
            value = data.get(field) or _header(stored, header.lower())
            if value:
                msg[header] = _clean(value)
        importance = str(data.get("importance") or "normal").lower()
        if importance != "normal":
            msg["Importance"] = importance.capitalize()
            msg["X-Priority"] = "1" if importance == "high" else "5"
        if data.get("categories"):
            msg["Keywords"] = ", ".join(_clean(c) for c in data["categories"])
        files = self._attachments(immutable_id)
        msg["X-MS-Has-Attach"] = "yes" if any(not a["is_inline"] for a in files) else ""
        msg["X-MS-TNEF-Correlator"] = ""
        for item in stored:
            name = str(item.get("name", ""))
            if name.lower().startswith("x-") and name.lower() not in {
                "x-ms-has-attach",
                "x-ms-tnef-correlator",
                "x-priority",
            }:
                msg[name] = _clean(item.get("value"))
        self._body(msg, data, files, parts)
        for part in msg.iter_parts():
            _drop_mime_version(part)
        return msg

    def _body(
        self,
        msg: EmailMessage,
        data: dict[str, Any],
        files: list[Any],
        parts: dict[bytes, tuple[int, Reader]],
    ) -> None:
        body = data.get("body") or {}
        kind = str(body.get("contentType") or "text").lower()
        content = str(body.get("content") or "")
        text = bodies.as_text(content, kind)
        # Quoted-printable, as Exchange writes bodies: no line is ever over 998 octets.
        msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        inline = [a for a in files if a["is_inline"] and a["content_id"]]
        if kind == "html":
            msg.add_alternative(
                bodies.as_html(content, "html"),
                subtype="html",
                charset="utf-8",
                cte="quoted-printable",
            )
            if inline:
                html = msg.get_body(preferencelist=("html",))
                assert html is not None
                html.make_related()
                for att in inline:
                    html.attach(self._file(att, parts, inline=True))
        rest = [a for a in files if not (kind == "html" and a in inline)]
        if not rest:
            return
        msg.make_mixed()
        for att in rest:
            nested = self._item(att)
            if nested is not None:
                msg.attach(self._item_part(att, nested, parts))
            else:
                msg.attach(self._file(att, parts, inline=bool(att["is_inline"])))

    def _file(self, att: Any, parts: dict[bytes, tuple[int, Reader]], *, inline: bool) -> MIMEPart:
        token = f"SANDBOXPART{secrets.token_hex(16)}"
        parts[token.encode()] = (int(att["size"]), lambda: self._open_blob(att))
        return _binary_part(
            att["name"],
            att["content_type"],
            token,
            inline=inline,
            content_id=att["content_id"] if inline else None,
        )

    def _item_part(
        self,
        att: Any,
        nested: tuple[dict[str, Any], str],
        parts: dict[bytes, tuple[int, Reader]],
    ) -> MIMEPart:
        """An attached Outlook item: `message/rfc822` holding its own MIME (7bit, no encoding,
        as RFC 2046 5.2.1 requires)."""
        data, immutable_id = nested
        inner = self._message(data, immutable_id, parts)
        part = MIMEPart(policy=SMTP)
        part.set_content(inner, disposition="attachment", filename=_clean(att["name"]))
        return part


__all__ = ["CHUNK_BYTES", "MimeBuilder", "Rendering"]
