"""At most N in-flight Graph requests per mailbox per instance (Graph allows 4 per app+mailbox).

Wraps the pooled requests.Session instead of changing the Graph client: `request()` finds the
mailbox in the URL (`/users/{mailbox}/...`) and holds one of its slots for the call. URLs
without a mailbox (upload sessions, token endpoints) pass straight through.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_LIMIT = 4
_MAILBOX = re.compile(r"/users/([^/?]+)")


def mailbox_of(url: str) -> str | None:
    """The mailbox a Graph URL acts on (case-folded), or None."""
    match = _MAILBOX.search(urlsplit(url).path)
    return unquote(match.group(1)).casefold() if match else None


class MailboxLimitedSession:
    """A requests.Session stand-in that bounds concurrent calls per mailbox."""

    def __init__(self, session: Any, limit: int = DEFAULT_LIMIT) -> None:
        self.session = session
        self.limit = limit
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def _slot(self, mailbox: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._slots.get(mailbox)
            if slot is None:
                slot = self._slots[mailbox] = threading.BoundedSemaphore(self.limit)
            return slot

    def request(self, method: str, url: str, **kw: Any) -> Any:
        mailbox = mailbox_of(url)
        if mailbox is None:
            return self.session.request(method, url, **kw)
        # The body is read inside the slot (stream=False), so the slot covers the whole call.
        with self._slot(mailbox):
            return self.session.request(method, url, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)
