"""A file an operation answers instead of JSON (the export's .eml), read in chunks as it is sent.

The HTTP edge turns it into a streamed response; `close` releases the source (Graph's answer)
whether or not every chunk was read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

# Characters that have no place in a file name on common systems, nor in a header.
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f-\x9f"\\/:*?<>|]+')
MAX_NAME = 120


@dataclass
class Download:
    """A streamed file answer: its chunks, media type, suggested file name and length."""

    chunks: Iterator[bytes]
    media_type: str
    filename: str
    length: int | None = None
    close: Callable[[], None] = lambda: None

    def headers(self) -> dict[str, str]:
        """Content-Type, Content-Disposition (RFC 6266, with an ASCII fallback) and, when
        known, Content-Length."""
        out = {
            "Content-Type": self.media_type,
            "Content-Disposition": content_disposition(self.filename),
            "X-Content-Type-Options": "nosniff",
        }
        if self.length is not None:
            out["Content-Length"] = str(self.length)
        return out


def safe_filename(text: str, extension: str, default: str = "message") -> str:
    """`text` as a file name: unsafe characters become spaces, at most MAX_NAME characters,
    then `extension` (e.g. `.eml`)."""
    name = " ".join(_UNSAFE_NAME.sub(" ", text or "").split()).strip(" .")
    return (name[:MAX_NAME].rstrip(" .") or default) + extension


def content_disposition(filename: str) -> str:
    """`attachment` with `filename` (ASCII, `?` for the rest) and `filename*` (UTF-8)."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
