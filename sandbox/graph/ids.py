"""Item ids as Exchange makes them, and the check that refuses malformed ones.

Graph's ids are base64 of a binary entry id. REST ids (messages, folders, attachments) are
made here in the standard alphabet and always carry '+', '/' and a trailing '=' (real ones do:
microsoft-graph-docs issue 10167 shows "...B7PeJIR+T0QrZBmAeE5ZneBwDa/z/LP4...AAA="), so a
client that does not percent-encode an id in a URL fails here as it would against Exchange.
Immutable ids are URL-safe base64 with '=' padding, like the examples in
concepts/outlook-immutable-id.md ("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AAAFEaOoAAA=").
"""

from __future__ import annotations

import base64
import binascii
import secrets

from sandbox.graph.errors import GraphError

_STORE = b"\x00\x03\x24\x00"  # "AAMkA...": a mailbox store entry id
_IMMUTABLE = b"\x00\x09\x00\x2e\x00\x00\x00\x00"  # "AAkALgAAAAAA..."
KIND_BYTE = {"message": 0x46, "folder": 0x2E, "attachment": 0x12}
_MAILBOX_KEY_BYTES = 36  # a GUID in text form, as in real ids
_REST_BYTES = 113  # 113 = 2 (mod 3): exactly one '=' of padding, 152 characters
_IMMUTABLE_BYTES = 65  # 65 = 2 (mod 3): one '='


def _mailbox_key(mailbox: str) -> bytes:
    return mailbox.lower().encode()[:_MAILBOX_KEY_BYTES].ljust(_MAILBOX_KEY_BYTES, b"0")


def new_rest_id(kind: str, mailbox: str) -> str:
    """A REST id of `kind` (message, folder, attachment) in `mailbox`, with '+', '/', '='."""
    head = _STORE + _mailbox_key(mailbox) + bytes([KIND_BYTE[kind]])
    while True:
        raw = head + secrets.token_bytes(_REST_BYTES - len(head))
        text = base64.b64encode(raw).decode()
        if "+" in text and "/" in text:
            return text


def new_immutable_id() -> str:
    """An immutable id: URL-safe base64 with its '=' padding."""
    raw = _IMMUTABLE + secrets.token_bytes(_IMMUTABLE_BYTES - len(_IMMUTABLE))
    return base64.urlsafe_b64encode(raw).decode()


def change_key() -> str:
    """A changeKey ("CQAAABYAAAB...", 40 characters, may hold '/' and '+')."""
    return base64.b64encode(b"\x09\x00\x00\x00\x16\x00" + secrets.token_bytes(24)).decode()


def conversation_id(mailbox: str) -> str:
    """A conversationId ("AAQkA...=")."""
    raw = b"\x00\x04\x24\x00" + _mailbox_key(mailbox) + secrets.token_bytes(17)
    return base64.b64encode(raw).decode()


def _decode(text: str) -> bytes | None:
    for alphabet in (b"+/", b"-_"):
        try:
            return base64.b64decode(text, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def well_formed(text: str, kind: str) -> bool:
    """Whether `text` could be an id of `kind` (messages also accept immutable ids)."""
    raw = _decode(text)
    if raw is None:
        return False
    if kind == "message" and raw.startswith(_IMMUTABLE) and len(raw) == _IMMUTABLE_BYTES:
        return True
    head = len(_STORE) + _MAILBOX_KEY_BYTES
    return len(raw) == _REST_BYTES and raw.startswith(_STORE) and raw[head] == KIND_BYTE[kind]


def malformed() -> GraphError:
    return GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")


def check(text: str, kind: str) -> str:
    """`text` if it is a well-formed id of `kind`; raises GraphError 400
    ErrorInvalidIdMalformed otherwise (Exchange's answer to a garbage id, where a
    well-formed id of nothing is 404 ErrorItemNotFound)."""
    if not well_formed(text, kind):
        raise malformed()
    return text
