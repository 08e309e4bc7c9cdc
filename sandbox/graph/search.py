"""$search on messages: the part of KQL a mail client uses (query-parameters.md).

`$search="term"` looks in from, subject and body; `"subject:term"`, `from:`, `to:`, `cc:`,
`bcc:`, `participants:`, `body:`, `attachment:` (names), `hasAttachments:true|false`
narrow it; terms combine with AND (also by juxtaposition), OR and NOT. Matching is
case-insensitive on words' prefixes. The expression must be in double quotes, cannot be combined
with $filter or $orderby (400 SearchWithOrderBy, as Graph), results come newest sent first and
at most 250 of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.graph.bodies import as_text
from sandbox.graph.odata import ODataError

MAX_RESULTS = 250
_TOKEN = re.compile(r'\s*(\(|\)|[A-Za-z]+:(?:"[^"]*"|\'[^\']*\'|[^\s()]+)|"[^"]*"|[^\s()]+)')
_ADDRESS_FIELDS = {
    "from": ("from",),
    "sender": ("sender",),
    "to": ("toRecipients",),
    "torecipients": ("toRecipients",),
    "cc": ("ccRecipients",),
    "ccrecipients": ("ccRecipients",),
    "bcc": ("bccRecipients",),
    "bccrecipients": ("bccRecipients",),
    "participants": ("from", "sender", "toRecipients", "ccRecipients", "bccRecipients"),
}
_TEXT_FIELDS = {"subject", "body", "content", "attachment", "attachments", "category"}
Predicate = Callable[[dict[str, Any]], bool]


def _words(text: str) -> list[str]:
    return re.findall(r"[\w.@+-]+", text.lower())


def _matches(haystack: str, needle: str) -> bool:
    """KQL matches a term against the start of words; a phrase against the text."""
    needle = needle.lower().strip()
    if not needle:
        return True
    if " " in needle:
        return needle in haystack.lower()
    return any(w.startswith(needle) for w in _words(haystack))


def _body(message: dict[str, Any]) -> str:
    body = message.get("body") or {}
    return as_text(str(body.get("content") or ""), str(body.get("contentType") or "text"))


def _addresses(message: dict[str, Any], fields: tuple[str, ...]) -> str:
    parts = []
    for name in fields:
        value = message.get(name)
        for rcpt in value if isinstance(value, list) else [value]:
            email = (rcpt or {}).get("emailAddress") or {}
            parts += [str(email.get("name") or ""), str(email.get("address") or "")]
    return " ".join(parts)


def _term(prop: str | None, value: str, attachment_names: Callable[[dict], str]) -> Predicate:
    value = value.strip("\"'")
    if prop is None:

        def default(m: dict[str, Any]) -> bool:
            text = " ".join([_addresses(m, ("from",)), str(m.get("subject") or ""), _body(m)])
            return _matches(text, value)

        return default
    key = prop.lower()
    if key in _ADDRESS_FIELDS:
        fields = _ADDRESS_FIELDS[key]
        return lambda m: _matches(_addresses(m, fields), value)
    if key == "hasattachments":
        if value.lower() not in ("true", "false"):
            raise ODataError(f"Invalid value '{value}' for hasAttachments in $search.")
        wanted = value.lower() == "true"
        return lambda m: bool(m.get("hasAttachments")) == wanted
    if key in _TEXT_FIELDS:
        if key == "subject":
            return lambda m: _matches(str(m.get("subject") or ""), value)
        if key in ("attachment", "attachments"):
            return lambda m: _matches(attachment_names(m), value)
        if key == "category":
            return lambda m: _matches(" ".join(m.get("categories") or []), value)
        return lambda m: _matches(_body(m), value)
    raise ODataError(f"The property '{prop}' cannot be searched on messages.")


def compile_search(text: str, attachment_names: Callable[[dict], str]) -> Predicate:
    """A predicate for a $search value; raises ODataError when it is not a quoted KQL query."""
    text = text.strip()
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise ODataError('Syntax error: the $search value must be in double quotes ("...").')
    tokens = [t.strip() for t in _TOKEN.findall(text[1:-1]) if t.strip()]
    if not tokens:
        raise ODataError("The $search query is empty.")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def or_expr() -> Predicate:
        left = and_expr()
        while peek() == "OR":
            take()
            right = and_expr()
            left = (lambda a, b: lambda m: a(m) or b(m))(left, right)
        return left

    def and_expr() -> Predicate:
        left = not_expr()
        while peek() not in (None, "OR", ")"):
            if peek() == "AND":
                take()
            right = not_expr()
            left = (lambda a, b: lambda m: a(m) and b(m))(left, right)
        return left

    def not_expr() -> Predicate:
        if peek() == "NOT":
            take()
            inner = not_expr()
            return lambda m: not inner(m)
        tok = take()
        if tok == "(":
            inner = or_expr()
            if peek() != ")":
                raise ODataError("Syntax error in $search: a parenthesis is not closed.")
            take()
            return inner
        if tok in (")", "AND", "OR"):
            raise ODataError(f"Syntax error in $search near '{tok}'.")
        prop, sep, value = tok.partition(":")
        if sep and re.fullmatch(r"[A-Za-z]+", prop):
            return _term(prop, value, attachment_names)
        return _term(None, tok, attachment_names)

    predicate = or_expr()
    if peek() is not None:
        raise ODataError(f"Syntax error in $search near '{peek()}'.")
    return predicate
