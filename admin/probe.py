"""`connections test`: a read-only probe (token + the mailbox's Inbox), optionally a real mail."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from shared.errors import AppError, ReauthRequired, SendAsDenied

HINTS = {
    "auth_failed": "check the connection's tenant, client id and credential (expired secret?)",
    "reauth_required": "sign in again as the message says",
    "access_denied": "grant the app its Graph permissions (or the Exchange RBAC role)",
    "mailbox_not_found": "check the address; it must be a mailbox in the connection's tenant",
    "sender_not_allowed": "add the address to the connection's allowed senders",
    "secrets_unavailable": "check the Key Vault URL and that you may read its secrets",
    "graph_unavailable": "Microsoft Graph is unavailable; try again in a minute",
}


DELEGATED_ACCESS_HINT = (
    "the signed-in account needs Full Access on that mailbox "
    "(Add-MailboxPermission -AccessRights FullAccess -AutoMapping $false)"
)


def conn_mode(runtime, name: str) -> str:
    try:
        return runtime.connections.get(name).mode
    except AppError:
        return "app"


def _mailbox(conn, user: str | None, mailbox: str | None) -> str:
    if mailbox:
        return mailbox
    if conn.mode == "user" and user:
        return user
    if conn.account:
        return conn.account
    exact = [s for s in conn.allowed_senders if not s.startswith("*@")]
    if exact:
        return exact[0]
    raise AppError("Say which mailbox to probe: --mailbox <address>.")


def probe(
    vault, name: str, *, user: str | None, mailbox: str | None, send_to: str | None
) -> dict[str, Any]:
    """Run the probe; raises AppError whose message is one sentence with what to do."""
    from shared.runtime import Runtime

    runtime = Runtime(vault.settings, secret_client_factory=lambda: vault.client)
    operation_id = str(uuid.uuid4())
    try:
        conn = runtime.connections.get(name)
        address = _mailbox(conn, user, mailbox)
        ctx = runtime.context(name, operation_id, user)
        ctx.graph.get(
            f"/users/{quote(address, safe='@')}/mailFolders/inbox",
            params={"$select": "id,totalItemCount"},
        )
        result: dict[str, Any] = {
            "name": conn.name,
            "mailbox": address,
            "probe": "ok",
            "message": f"{conn.name}: signed in and can read {address}'s Inbox.",
        }
        if send_to:
            from shared.api.validation import decode
            from shared.models import SendRequest
            from shared.operations import direct as operations

            body = {
                "connection": conn.name,
                "from": address,
                "to": [send_to],
                "subject": f"exchange-processor test mail ({conn.name})",
                "body": {"contentType": "text", "content": "A test from the admin command line."},
                "user": user,
            }
            sent = operations.send(decode(SendRequest, json.dumps(body).encode()), ctx)
            result["sent"] = {"to": send_to, "messageId": sent.message_id}
            result["message"] += f" Sent a test mail from {address} to {send_to}."
        return result
    except SendAsDenied as exc:
        raise _failed(exc, exc.message) from exc
    except ReauthRequired as exc:
        # The message already names the admin command; a user's link is added here.
        link = f" Sign-in link: {exc.sign_in_url}" if exc.sign_in_url else ""
        raise _failed(exc, exc.message + link) from exc
    except AppError as exc:
        hint = HINTS.get(exc.code)
        if exc.code == "access_denied" and conn_mode(runtime, name) != "app":
            hint = DELEGATED_ACCESS_HINT
        raise _failed(exc, exc.message.rstrip(".") + (f"; {hint}." if hint else ".")) from exc


def _failed(exc: AppError, message: str) -> AppError:
    """The same error code, with a message that says what to do."""
    error = AppError(message)
    error.code = exc.code
    return error
