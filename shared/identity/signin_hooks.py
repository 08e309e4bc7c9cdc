"""Callbacks run after a successful sign-in (a user's callback, or a service-account login).

The queue issue registers "re-queue the work parked for this connection/user" here. A failing
callback is logged and skipped: it must never undo or break the sign-in that triggered it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Callback = Callable[[str, "str | None"], None]

_callbacks: list[Callback] = []
_lock = threading.Lock()


def register(callback: Callable[[str, str | None], None]) -> None:
    """Call `callback(connection, user)` after every successful sign-in (user None: service
    account). Registering the same callback twice keeps one registration."""
    with _lock:
        if callback not in _callbacks:
            _callbacks.append(callback)


def unregister(callback: Callable[[str, str | None], None]) -> None:
    """Remove a callback (tests); unknown callbacks are ignored."""
    with _lock:
        if callback in _callbacks:
            _callbacks.remove(callback)


def notify(connection: str, user: str | None) -> None:
    """Run every callback for a sign-in of `user` (None: the service account) on `connection`."""
    with _lock:
        callbacks = list(_callbacks)
    for callback in callbacks:
        try:
            callback(connection, user)
        except Exception:
            # The sign-in already succeeded and is stored; a hook's failure is the hook's problem.
            log.exception(
                "sign-in hook %s failed for connection %s",
                getattr(callback, "__qualname__", repr(callback)),
                connection,
            )
