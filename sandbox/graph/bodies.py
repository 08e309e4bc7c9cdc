"""Message bodies in the format the client prefers: HTML unless it asks for text.

Graph "returns message bodies in only HTML format" unless the request carries
`Prefer: outlook.body-content-type="text"` (user-list-messages.md, message-get.md), and an
HTML body comes back wrapped in a full document (user-post-messages.md, example 1:
`<html>\\r\\n<head>\\r\\n<meta http-equiv="Content-Type" ...>`). Plain text becomes HTML with its
line breaks kept; HTML becomes text without its tags.
"""

from __future__ import annotations

import html
import re
from typing import Any

_PREFER = re.compile(r'outlook\.body-content-type\s*=\s*"?(text|html)"?', re.I)
_HEAD = (
    '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
    '<meta content="text/html; charset=us-ascii">\r\n</head>\r\n<body>\r\n'
)
_TAIL = "\r\n</body>\r\n</html>\r\n"


def preferred(prefer_header: str | None) -> str | None:
    """ "text" or "html" when the Prefer header asks for a body format, else None."""
    m = _PREFER.search(prefer_header or "")
    return m.group(1).lower() if m else None


def as_html(content: str, kind: str) -> str:
    """The body as Graph returns HTML: a full document (text: escaped, line breaks as <br>)."""
    if kind == "html":
        if re.search(r"<html[\s>]", content, re.I):
            return content
        return _HEAD + content + _TAIL
    lines = html.escape(content).replace("\r\n", "\n").split("\n")
    return _HEAD + '<div class="PlainText">' + "<br>\r\n".join(lines) + "</div>" + _TAIL


def as_text(content: str, kind: str) -> str:
    """The body as plain text: tags removed, entities decoded, block ends as line breaks."""
    if kind == "text":
        return content
    text = re.sub(r"<(script|style|head)\b.*?</\1\s*>", "", content, flags=re.S | re.I)
    text = re.sub(r"<br\s*/?>", "\r\n", text, flags=re.I)
    text = re.sub(r"</(p|div|li|tr|h[1-6])\s*>", "\r\n", text, flags=re.I)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\r\n".join(lines).strip()


def render(body: dict[str, Any] | None, wanted: str | None) -> dict[str, Any] | None:
    """The stored body in the format asked for (default HTML), as an itemBody."""
    if body is None:
        return None
    kind = str(body.get("contentType") or "text").lower()
    content = str(body.get("content") or "")
    if not content:
        return {"contentType": wanted or "html", "content": ""}
    if (wanted or "html") == "text":
        return {"contentType": "text", "content": as_text(content, kind)}
    return {"contentType": "html", "content": as_html(content, kind)}
