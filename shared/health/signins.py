"""Keep delegated sign-ins alive: redeem idle refresh tokens, record each sign-in's health, and
tell people once when one needs a person.

Entra ends a refresh token after 90 days without use (AADSTS700082); redeeming it resets that
clock. So each run redeems every sign-in idle for SIGNIN_REFRESH_AFTER_DAYS (default 7) through
the same token providers the operations use (the rotated refresh token is written back to Key
Vault: one write), oldest first, at most SIGNIN_MAX_VAULT_WRITES per run. Entra or Key Vault
throttling or an outage backs off (Retry-After, doubling, twice) and then leaves the remaining
sign-ins for the next run. A refused refresh marks the sign-in `needs_sign_in` at once, before
any work needs it. Never logs a token: tokens stay inside the providers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from shared.errors import AppError, GraphUnavailable, ReauthRequired, SecretsUnavailable
from shared.health import events
from shared.health.inventory import SignIn, sign_in_key, sign_ins
from shared.health.notify import Notifier, event
from shared.health.records import (
    NEEDS_SIGN_IN,
    SignInRecord,
    change,
    days_left,
    due,
    expiry_of,
    judge,
    reason,
    refusal_in,
)
from shared.health.store import HealthStore
from shared.identity.connections import Connection, ConnectionRegistry
from shared.identity.delegated_tokens import UserTokenProvider, admin_command
from shared.identity.secrets import SecretStore
from shared.identity.token_cache import read_state
from shared.identity.tokens import Tokens
from shared.settings import Settings
from shared.timestamps import iso, now_utc, parse_iso

log = logging.getLogger(__name__)

# Throttling or an outage: wait Retry-After (at most this long), doubling, this many times.
MAX_BACKOFF_SECONDS = 30.0
RETRIES = 2


@dataclass
class RunSummary:
    """What one run did (its last log line and the timer's result)."""

    checked: int = 0
    refreshed: int = 0
    needs_sign_in: int = 0
    expiring: int = 0
    deferred: int = 0
    vault_writes: int = 0
    throttled: bool = False
    errors: list[str] = field(default_factory=list)


class SignInHealth:
    """The sign-in pass of the signin_health timer, and the mark a parked operation leaves."""

    def __init__(
        self,
        *,
        settings: Settings,
        secrets: SecretStore,
        connections: ConnectionRegistry,
        tokens: Tokens,
        user_tokens: UserTokenProvider,
        store: HealthStore,
        notifier: Notifier,
        clock: Callable[[], datetime] = now_utc,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.connections = connections
        self.tokens = tokens
        self.user_tokens = user_tokens
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.sleep = sleep

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Check every delegated sign-in once; raises SecretsUnavailable when the vault cannot
        be listed (nothing to check) and StorageUnavailable when no record can be read."""
        summary = RunSummary()
        found = sign_ins(self.secrets, self.connections)
        stored = {r.key: r for r in self.store.records()}
        ordered = sorted(found, key=lambda s: self._last_refresh(s, stored.get(s.key)) or _EPOCH)
        for sign_in in ordered:
            try:
                record = self.check(sign_in, stored.get(sign_in.key), summary)
            except AppError as exc:
                summary.errors.append(f"{sign_in.label}: {exc.code}")
                log.warning("sign-in health of %s not checked: %s", sign_in.label, exc.code)
                continue
            summary.checked += 1
            summary.needs_sign_in += record.state == NEEDS_SIGN_IN
            summary.expiring += record.state == "expiring"
        return summary

    def check(
        self, sign_in: SignIn, previous: SignInRecord | None, summary: RunSummary
    ) -> SignInRecord:
        """Refresh `sign_in` if it is due (and the budget allows), then record and announce."""
        now = self.clock()
        last = self._last_refresh(sign_in, previous)
        refreshed = deferred = False
        error: str | None = None
        refused = last is None and sign_in.kind != "password"
        if sign_in.kind == "password" or due(last, now, self.settings.signin_refresh_after_days):
            if summary.throttled or summary.vault_writes >= self.settings.signin_max_vault_writes:
                deferred = True
                summary.deferred += 1
            else:
                outcome = self._refresh(sign_in, summary)
                if outcome is None:
                    refreshed, last, refused = True, now, False
                    summary.refreshed += 1
                elif outcome == "deferred":
                    deferred = True
                    summary.deferred += 1
                else:
                    error, refused = outcome, True
        if sign_in.kind == "password":
            state = (
                NEEDS_SIGN_IN if refused else (previous.state if deferred and previous else "ok")
            )
            last = now if refreshed else (parse_iso(previous.last_refresh) if previous else None)
        else:
            state = judge(last, now, self.settings.signin_warn_days, refused)
        return self._record(sign_in, previous, state, last, error, refreshed, deferred, now)

    def _last_refresh(self, sign_in: SignIn, previous: SignInRecord | None) -> datetime | None:
        """When the refresh token was last used: the stored cache's write time (a refresh
        rotates it, which writes it), or our own last refresh if that is later."""
        if sign_in.kind == "password":
            return parse_iso(previous.last_refresh) if previous else None
        state = read_state(self.secrets, sign_in.key)
        if not state.has_refresh_token or state.saved_at is None:
            return None
        return datetime.fromtimestamp(state.saved_at, tz=_EPOCH.tzinfo)

    def _refresh(self, sign_in: SignIn, summary: RunSummary) -> str | None:
        """Redeem the refresh token; None on success, "deferred" when throttled, else the
        refusal (`invalid_grant (AADSTS700082)`)."""
        source = self.tokens.source(sign_in.connection, sign_in.user)
        for attempt in range(RETRIES + 1):
            try:
                source(force_refresh=True)
            except ReauthRequired as exc:
                return refusal_in(exc.message)
            except (GraphUnavailable, SecretsUnavailable) as exc:
                if attempt == RETRIES:
                    summary.throttled = True
                    log.warning(
                        "sign-in health: %s after %d tries (%s); the rest waits for the next run",
                        exc.code,
                        attempt + 1,
                        sign_in.label,
                    )
                    return "deferred"
                self.sleep(min(MAX_BACKOFF_SECONDS, (exc.retry_after or 5.0) * 2**attempt))
                continue
            if sign_in.kind != "password":
                summary.vault_writes += 1  # the rotated refresh token, written back
            return None
        return "deferred"

    # --- recording and telling -------------------------------------------------------------

    def _record(
        self,
        sign_in: SignIn,
        previous: SignInRecord | None,
        state: str,
        last: datetime | None,
        error: str | None,
        refreshed: bool,
        deferred: bool,
        now: datetime,
    ) -> SignInRecord:
        record = previous or SignInRecord(
            key=sign_in.key,
            connection=sign_in.connection.name,
            kind=sign_in.kind,
            user=sign_in.user,
        )
        was = previous.state if previous else None
        record.account = sign_in.user or sign_in.connection.account or record.account
        record.last_refresh = iso(last) if last else None
        record.expected_expiry = (
            iso(expiry_of(last)) if last and sign_in.kind != "password" else None
        )
        record.checked_at = iso(now)
        if error:
            record.last_error, record.last_error_at = error, iso(now)
        if state != was:
            record.changed_at = iso(now)
        record.state = state
        if not self.store.save(record):
            # Another instance recorded this sign-in meanwhile: it announces what changed.
            return self.store.get(sign_in.key) or record
        left = days_left(last, now) if sign_in.kind != "password" else None
        mask = self.settings.mask_addresses_in_logs
        events.emit(
            events.SIGNIN_HEALTH,
            connection=record.connection,
            user=events.address(record.user, mask),
            kind=record.kind,
            state=state,
            daysLeft=left,
            lastRefresh=record.last_refresh,
            expectedExpiry=record.expected_expiry,
            lastError=record.last_error if state == NEEDS_SIGN_IN else None,
            refreshed=refreshed,
            deferred=deferred or None,
        )
        self._announce(sign_in.connection, record, was, left)
        return record

    def _announce(
        self, connection: Connection, record: SignInRecord, was: str | None, left: float | None
    ) -> None:
        """The state line (alert) and the notifyUrl event, once per state change."""
        logged, kind = change(was, record.state)
        if not logged:
            return
        mask = self.settings.mask_addresses_in_logs
        fix = self.fix(connection, record.user, record.kind)
        events.emit(
            events.SIGNIN_STATE,
            level=logging.WARNING if kind else logging.INFO,
            connection=record.connection,
            user=events.address(record.user, mask),
            state=record.state,
            previousState=was,
            daysLeft=left,
            expectedExpiry=record.expected_expiry,
            lastError=record.last_error if record.state == NEEDS_SIGN_IN else None,
            reason=reason(record.last_error) if record.state == NEEDS_SIGN_IN else None,
            **{k: v for k, v in fix.items() if k == "adminCommand"},
        )
        if kind:
            self.notifier.send(
                connection,
                event(
                    kind,
                    connection.name,
                    user=record.user,
                    account=record.account,
                    state=record.state,
                    reason=reason(record.last_error) if record.state == NEEDS_SIGN_IN else None,
                    error=record.last_error if record.state == NEEDS_SIGN_IN else None,
                    daysLeft=left,
                    expectedExpiry=record.expected_expiry,
                    **fix,
                ),
            )

    def fix(self, connection: Connection, user: str | None, kind: str) -> dict[str, str]:
        """What a person does about it: the user's sign-in link, or the admin command."""
        if connection.mode == "user" and user:
            return {"signInUrl": self.user_tokens.sign_in_url(connection, user)}
        if kind == "password":
            return {
                "adminCommand": f"python -m admin connections add {connection.name} "
                "--credential password --secret-stdin"
            }
        return {"adminCommand": admin_command(connection.name)}

    def mark_refused(self, connection: str, user: str | None, error: str) -> None:
        """A lost sign-in found by work (the operation parks): record `needs_sign_in` and
        announce it once, as the timer would have."""
        conn = self.connections.get(connection)
        key = sign_in_key(conn, user)
        if key is None:
            return
        previous = self.store.get(key)
        if previous is not None and previous.state == NEEDS_SIGN_IN:
            return
        kind = (
            "user"
            if conn.mode == "user"
            else ("password" if conn.credential.type == "password" else "service_account")
        )
        sign_in = SignIn(conn, key, kind, user)
        now = self.clock()
        last = parse_iso(previous.last_refresh) if previous else None
        self._record(sign_in, previous, NEEDS_SIGN_IN, last, error, False, False, now)


_EPOCH = datetime.fromtimestamp(0, tz=now_utc().tzinfo)
