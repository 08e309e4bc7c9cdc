"""A sign-in's health record and the pure rules that judge it (no I/O).

States: `ok` (the refresh token works and has more than the warning period left), `expiring`
(fewer than SIGNIN_WARN_DAYS days before Entra's 90-day inactivity limit ends it),
`needs_sign_in` (its last refresh was refused, or nothing is stored: a person must sign in).
A state change is what the log line, the alert and the notifyUrl event are about; the same state
on the next run says nothing new.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import msgspec

from shared.identity.token_cache import REFRESH_TOKEN_INACTIVITY_DAYS
from shared.timestamps import parse_iso

OK, EXPIRING, NEEDS_SIGN_IN = "ok", "expiring", "needs_sign_in"
STATES = (OK, EXPIRING, NEEDS_SIGN_IN)
# The notifyUrl event each state change into a bad state sends (ok sends none).
EVENTS = {NEEDS_SIGN_IN: "signin.needs_sign_in", EXPIRING: "signin.expiring"}

# What the AADSTS codes of a refused refresh mean, for the record and the people told.
REASONS = {
    700082: "inactivity (90 days without use)",
    50173: "revoked (password changed or sessions revoked)",
    50055: "password expired",
    50076: "MFA required",
    50079: "MFA registration required",
    50078: "MFA required",
    70043: "sign-in frequency policy",
    65001: "consent missing",
    700084: "refresh token expired",
    50158: "external security challenge",
}


_REFUSAL = re.compile(r"\(([a-z_]+ \(AADSTS\d+(?:, AADSTS\d+)*\))\)")


def refusal_in(message: str) -> str:
    """`invalid_grant (AADSTS700082)` from a reauth_required message (never a token)."""
    found = _REFUSAL.search(message or "")
    if found:
        return found.group(1)
    return "no sign-in is stored" if "no sign-in is stored" in (message or "") else "refused"


class SignInRecord(msgspec.Struct, rename="camel", omit_defaults=True):
    """What the app knows about one delegated sign-in (one Table entity)."""

    # The secret holding the sign-in (its token cache or, for `password`, the credential).
    key: str
    connection: str
    kind: str  # service_account, password or user
    user: str | None = None  # user mode: whose sign-in
    account: str | None = None  # who is signed in (the UPN stored with the cache)
    state: str = OK
    last_refresh: str | None = None  # ISO 8601: the refresh token's last use we know of
    expected_expiry: str | None = None  # last_refresh + 90 days
    last_error: str | None = None  # e.g. "invalid_grant (AADSTS700082)"
    last_error_at: str | None = None
    checked_at: str | None = None
    changed_at: str | None = None  # when `state` last changed
    etag: str | None = None  # the store's concurrency token (never stored)


def expiry_of(last_refresh: datetime) -> datetime:
    return last_refresh + timedelta(days=REFRESH_TOKEN_INACTIVITY_DAYS)


def days_left(last_refresh: datetime | None, now: datetime) -> float | None:
    """Days until the inactivity limit (None: unknown), one decimal."""
    if last_refresh is None:
        return None
    return round((expiry_of(last_refresh) - now).total_seconds() / 86400, 1)


def judge(last_refresh: datetime | None, now: datetime, warn_days: float, refused: bool) -> str:
    """The state of a sign-in: refused or unknown → needs_sign_in; close to the limit →
    expiring; else ok."""
    left = days_left(last_refresh, now)
    if refused or left is None or left <= 0:
        return NEEDS_SIGN_IN
    return EXPIRING if left < warn_days else OK


def due(last_refresh: datetime | None, now: datetime, refresh_after_days: float) -> bool:
    """Whether the refresh token has been idle long enough to redeem it now."""
    if last_refresh is None:
        return True
    return (now - last_refresh).total_seconds() >= refresh_after_days * 86400


def reason(error: str | None) -> str | None:
    """`invalid_grant (AADSTS700082)` → "inactivity (90 days without use)" (None: unknown)."""
    if not error:
        return None
    for code, text in REASONS.items():
        if f"AADSTS{code}" in error:
            return text
    return None


def change(previous: str | None, current: str) -> tuple[bool, str | None]:
    """(log a state line?, the notifyUrl event to send or None) for a move previous → current.

    A first record that is ok says nothing; moving into a bad state notifies once; moving
    between expiring and needs_sign_in notifies the new one; back to ok is logged only.
    """
    if previous == current or (previous is None and current == OK):
        return False, None
    return True, EVENTS.get(current)


def current_state(
    record: SignInRecord | None, last_refresh: datetime | None, now: datetime, warn_days: float
) -> str:
    """The state to show now: the recorded one, unless the sign-in was stored again after the
    record was checked (a new sign-in), in which case the days left decide."""
    checked = parse_iso(record.checked_at) if record else None
    stored_since = last_refresh is not None and (checked is None or last_refresh > checked)
    if record is not None and not stored_since:
        return record.state
    return judge(last_refresh, now, warn_days, refused=False)
