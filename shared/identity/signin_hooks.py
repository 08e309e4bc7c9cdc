"""What runs after a successful sign-in (a user's callback, or a service-account login).

shared.runtime registers "re-queue the work parked for this connection/user". A failing hook
is logged and skipped: it must never undo or break the sign-in that triggered it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

Hook = Callable[[str, "str | None"], Any]


class SignInHooks:
    """Hooks called as `hook(connection, user)` after every successful sign-in (user None: the
    service account)."""

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._hooks: list[Hook] = list(hooks)
        self._lock = threading.Lock()

    def register(self, hook: Hook) -> None:
        """Add a hook; registering the same one twice keeps one registration."""
        with self._lock:
            if hook not in self._hooks:
                self._hooks.append(hook)

    def unregister(self, hook: Hook) -> None:
        """Remove a hook; unknown hooks are ignored."""
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def notify(self, connection: str, user: str | None) -> None:
        """Run every hook for a sign-in of `user` (None: the service account) on `connection`."""
        with self._lock:
            hooks = list(self._hooks)
        for hook in hooks:
            try:
                hook(connection, user)
            except Exception:
                # The sign-in already succeeded and is stored; a hook's failure is its own.
                log.exception(
                    "sign-in hook %s failed for connection %s",
                    getattr(hook, "__qualname__", repr(hook)),
                    connection,
                )
