"""What the command line shows: a connection as JSON-ready data, and its short human form."""

from __future__ import annotations

import time
from typing import Any

from shared.identity.connections import Connection
from shared.identity.token_cache import CacheState


def state_json(secret: str, state: CacheState) -> dict[str, Any]:
    """One stored sign-in: who, when its refresh token was last used, days left."""
    return {
        "secretName": secret,
        "signedInAs": state.account,
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
    data["signIns"] = [state_json(name, state) for name, state in states]
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
        parts.append(f"{s['signedInAs']} (refresh token used {s['refreshTokenLastUsed']}, {left})")
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
