"""What the command line shows: a connection as JSON-ready data, and its short human form."""

from __future__ import annotations

import datetime
import time
from typing import Any

from shared.health.records import NEEDS_SIGN_IN, current_state
from shared.identity.connections import Connection
from shared.identity.token_cache import CacheState
from shared.timestamps import now_utc

# Days before the inactivity limit that `list` calls a sign-in expiring (the timer's default).
WARN_DAYS = 14.0


def state_json(secret: str, state: CacheState, record: Any = None) -> dict[str, Any]:
    """One stored sign-in: who, its state, when its refresh token was last used, days left."""
    last = (
        datetime.datetime.fromtimestamp(state.saved_at, datetime.UTC)
        if state.saved_at and state.has_refresh_token
        else None
    )
    health = current_state(record, last, now_utc(), WARN_DAYS)
    return {
        "secretName": secret,
        "signedInAs": state.account,
        "state": health,
        "lastError": record.last_error if record is not None and health == NEEDS_SIGN_IN else None,
        "lastChecked": record.checked_at if record is not None else None,
        "refreshTokenLastUsed": (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.saved_at))
            if state.saved_at
            else None
        ),
        "daysUntilInactivityLimit": state.days_left(),
        "hasRefreshToken": state.has_refresh_token,
    }


def describe(vault: Any, conn: Connection, detail: bool) -> dict[str, Any]:
    """A connection for `list` (detail False) or `show` (detail True); never a secret."""
    data: dict[str, Any] = {
        "name": conn.name,
        "mode": conn.mode,
        "tenantId": conn.tenant_id,
        "clientId": conn.client_id,
        "credential": conn.credential.type,
        "allowedSenders": list(conn.allowed_senders),
        "requireSignedRequests": conn.require_signed_requests,
    }
    if conn.account:
        data["account"] = conn.account
    states = vault.token_states(conn)
    records = vault.health_records() if states else {}
    data["signIns"] = [state_json(name, state, records.get(name)) for name, state in states]
    if detail:
        data.update(
            {
                "credentialSecretName": conn.credential.secret_name,
                "authorityHost": conn.authority_host,
                "graphBaseUrl": conn.graph_base_url,
                "scopes": conn.scopes() if conn.mode != "app" else [conn.graph_scope],
                "attachmentUrlHosts": list(conn.attachment_url_hosts),
                "callbackUrlHosts": list(conn.callback_url_hosts),
                "returnUrlHosts": list(conn.return_url_hosts),
            }
        )
    return data


def token_line(conn: dict[str, Any]) -> str:
    """The sign-in state in one line."""
    if conn["mode"] == "app":
        return "app-only, no sign-in needed"
    if conn["credential"] == "password":
        return "password option (discouraged), no stored sign-in"
    if not conn["signIns"] or not any(s["signedInAs"] for s in conn["signIns"]):
        return "NOT SIGNED IN" if conn["mode"] == "service_account" else "no user signed in yet"
    parts = []
    for s in conn["signIns"]:
        days = s["daysUntilInactivityLimit"]
        left = f"{days:.0f} days left of 90" if days is not None else "inactivity unknown"
        state = {"ok": "OK", "expiring": "EXPIRING", "needs_sign_in": "NEEDS SIGN-IN"}.get(
            s.get("state") or "", "state unknown"
        )
        if s.get("lastError"):
            state += f": {s['lastError']}"
        parts.append(
            f"{s['signedInAs']} {state} (refresh token used {s['refreshTokenLastUsed']}, {left})"
        )
    return "; ".join(parts)


def signed_line(conn: dict[str, Any]) -> str:
    """Whether callers must sign their requests, in one line."""
    if conn["requireSignedRequests"]:
        return "signed (RFC 9421, the connection's signing key)"
    return "UNSIGNED allowed (--allow-unsigned): the function key alone acts on this connection"


def print_message(result: dict[str, Any]) -> None:
    """Commands that do something: their one-sentence message."""
    print(result["message"])


def print_list(result: dict[str, Any]) -> None:
    """`list`: three lines per connection."""
    if not result["connections"]:
        print("No connections. Add one with: python -m admin connections add ...")
    for c in result["connections"]:
        print(f"{c['name']}  [{c['mode']}]  tenant {c['tenantId']}")
        print(f"    senders: {', '.join(c['allowedSenders']) or '(none)'}")
        print(f"    requests: {signed_line(c)}")
        print(f"    sign-in: {token_line(c)}")


def print_show(c: dict[str, Any]) -> None:
    """`show`: aligned key: value lines."""
    rows = [
        ("name", c["name"]),
        ("mode", c["mode"]),
        ("tenant", c["tenantId"]),
        ("client id", c["clientId"]),
        ("credential", f"{c['credential']} (secret {c['credentialSecretName']})"),
        ("account", c.get("account", "-")),
        ("senders", ", ".join(c["allowedSenders"]) or "(none)"),
        ("requests", signed_line(c)),
        ("authority", c["authorityHost"]),
        ("graph", c["graphBaseUrl"]),
        ("scopes", " ".join(c["scopes"])),
        ("sign-in", token_line(c)),
    ]
    for key, value in rows:
        print(f"{key:>11}: {value}")


def print_audit(report: dict[str, Any]) -> None:
    """`audit`: one line per mailbox, then one per failing check with the grant that fixes it."""
    who = f", {report['account']}" if report.get("account") else ""
    print(
        f"audit of {report['name']} ({report['mode']}{who}): {'OK' if report['ok'] else 'FAILED'}"
    )
    sign_in = report.get("signIn")
    if sign_in:
        print(f"  sign-in: {'OK' if sign_in['status'] == 'ok' else 'FAILED'}: {sign_in['message']}")
        if sign_in["status"] != "ok" and sign_in.get("grant"):
            print(f"    fix: {sign_in['grant']}")
    for box in report["mailboxes"]:
        notes = [
            f"{c['check']}: {c['message']}" for c in box["checks"] if c["status"] == "not_checkable"
        ]
        print(f"  {box['mailbox']}: {'OK' if box['ok'] else 'FAILED'}")
        for check in box["checks"]:
            if check["status"] in ("missing", "failed"):
                line = f"    {check['check']} {check['status'].upper()}: {check['message']}"
                if check.get("grant"):
                    line += f" -- grant: {check['grant']}"
                print(line)
        for note in notes:
            print(f"    {note}")
    for pattern in report.get("uncovered") or []:
        print(f"  {pattern}: not audited; name its mailboxes with --mailbox")
