"""The sandbox clock: the time Entra ID sees for sign-ins, movable globally or per user.

Tests of what happens after weeks (a refresh token idle for 90 days, a sign-in about to lapse)
advance it through the control API instead of waiting. Offsets only ever grow, are kept in the
state database (a restart keeps them) and are forgotten by a reset. What reads it: refresh
tokens (issue and last-use times, the inactivity limit), revocations and the per-user sign-in
states; access tokens keep the real clock for their one-hour lifetime, but the ones a user held
before their clock moved count as expired (sandbox.tokens).
"""

from __future__ import annotations

import threading
import time

from sandbox.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS clock_offsets (
    principal TEXT PRIMARY KEY,
    seconds REAL NOT NULL,
    advanced_at REAL NOT NULL
);
"""
GLOBAL = "*"


def user_key(tenant_id: str, user_id: str) -> str:
    """The clock key of one user (tenant and object id: a renamed UPN keeps its clock)."""
    return f"{tenant_id.lower()}/{user_id.lower()}"


class SandboxClock:
    """Real time plus a global offset plus each user's own offset (seconds)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self.db.script(SCHEMA)

    def _offset(self, key: str) -> float:
        row = self.db.one("SELECT seconds FROM clock_offsets WHERE principal = ?", (key,))
        return float(row["seconds"]) if row else 0.0

    def offset(self, tenant_id: str | None = None, user_id: str | None = None) -> float:
        """Seconds the clock of this user (or the global clock, without one) is ahead."""
        total = self._offset(GLOBAL)
        if tenant_id and user_id:
            total += self._offset(user_key(tenant_id, user_id))
        return total

    def now(self, tenant_id: str | None = None, user_id: str | None = None) -> float:
        """The sandbox time (Unix seconds) of this user, or the global one."""
        return time.time() + self.offset(tenant_id, user_id)

    def advanced_at(self, tenant_id: str, user_id: str) -> float:
        """The real time the user's clock (or the global one) last moved; 0 if never."""
        rows = self.db.query(
            "SELECT advanced_at FROM clock_offsets WHERE principal IN (?, ?)",
            (GLOBAL, user_key(tenant_id, user_id)),
        )
        return max((float(r["advanced_at"]) for r in rows), default=0.0)

    def advance(self, seconds: float, key: str = GLOBAL) -> float:
        """Move a clock forward; returns its new offset. Raises ValueError for a negative step."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            current = self._offset(key) + seconds
            self.db.execute(
                "INSERT OR REPLACE INTO clock_offsets VALUES (?, ?, ?)", (key, current, time.time())
            )
            return current

    def offsets(self) -> dict[str, float]:
        """Every key with its offset (`*` is the global clock)."""
        rows = self.db.query("SELECT principal, seconds FROM clock_offsets", ())
        return {r["principal"]: float(r["seconds"]) for r in rows}

    def reset(self) -> None:
        self.db.execute("DELETE FROM clock_offsets")
