"""Per-user sign-in states an admin or a policy can put a user in: password expired, MFA needed.

Set through the control API (`POST /_sandbox/users/{upn}/state`) and read by the token
endpoint, the sign-in page and the device-code approval. Kept in the state database, forgotten
by a reset (the seed's `mfaRequired` stays what it is: it is the user's standing policy).

- `passwordExpired`: every grant of the user answers `invalid_grant` AADSTS50055, refresh tokens
  included, and an interactive sign-in is refused until the state is cleared (an admin reset the
  password). Entra's refresh-token table says an expired password leaves refresh tokens alive,
  while AADSTS50055 says the session "was ended"; the sandbox takes the stricter reading.
- `mfa: "required"` (AADSTS50076) or `"registration_required"` (AADSTS50079): a Conditional
  Access policy now demands MFA (or its registration). Refresh tokens issued before the state
  was set fail with `interaction_required`; an interactive sign-in (browser or device code)
  satisfies it, so tokens issued afterwards work. The password grant can never satisfy it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.clock import SandboxClock, user_key
from sandbox.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS user_states (
    principal TEXT PRIMARY KEY,
    password_expired INTEGER NOT NULL,
    mfa TEXT,
    mfa_since REAL
);
"""
MFA_STATES = ("required", "registration_required")
_KEEP = object()


@dataclass(frozen=True)
class UserState:
    password_expired: bool = False
    mfa: str | None = None
    # Sandbox time (the user's clock) the MFA demand started: older refresh tokens lack MFA.
    mfa_since: float | None = None

    def public(self) -> dict:
        return {"passwordExpired": self.password_expired, "mfa": self.mfa}


class UserStates:
    """The states of the users that have one (everyone else: no state)."""

    def __init__(self, db: Database, clock: SandboxClock) -> None:
        self.db = db
        self.clock = clock
        self.db.script(SCHEMA)

    def get(self, tenant_id: str, user_id: str) -> UserState:
        row = self.db.one(
            "SELECT * FROM user_states WHERE principal = ?", (user_key(tenant_id, user_id),)
        )
        if row is None:
            return UserState()
        return UserState(bool(row["password_expired"]), row["mfa"], row["mfa_since"])

    def change(
        self,
        tenant_id: str,
        user_id: str,
        *,
        password_expired: bool | None = None,
        mfa: object = _KEEP,
    ) -> UserState:
        """Change what is given (`mfa=None` clears the MFA demand); returns the new state."""
        current = self.get(tenant_id, user_id)
        expired = current.password_expired if password_expired is None else password_expired
        since = current.mfa_since
        new_mfa = current.mfa
        if mfa is not _KEEP:
            if mfa is not None and mfa not in MFA_STATES:
                raise ValueError(f"mfa is one of {', '.join(MFA_STATES)} or null")
            new_mfa = mfa if isinstance(mfa, str) else None
            since = self.clock.now(tenant_id, user_id) if new_mfa else None
        self.db.execute(
            "INSERT OR REPLACE INTO user_states VALUES (?, ?, ?, ?)",
            (user_key(tenant_id, user_id), int(expired), new_mfa, since),
        )
        return UserState(expired, new_mfa, since)

    def reset(self) -> None:
        self.db.execute("DELETE FROM user_states")
