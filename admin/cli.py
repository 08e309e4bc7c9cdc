"""`python -m admin connections add|list|show|authenticate|test|remove [--json]`.

Human output is short and readable; `--json` prints one JSON document for scripts. Every failure
is one sentence saying what to do, exit status 1 (2 for usage errors). Secrets are read from
stdin or a file, never from the command line (it shows up in `ps` and shell history), and are
never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from admin.connection_options import add_connection_options
from shared.errors import AppError
from shared.identity.connections import Connection
from shared.identity.token_cache import CacheState

# Modules whose import registers further sign-in hooks (shared.identity.signin_hooks) that
# should also run when an admin signs a service account in from here. Resuming parked work is
# not a hook here: `_authenticate` does it itself so it can report the outcome.
HOOK_MODULES: tuple[str, ...] = ()

ROPC_WARNING = (
    "WARNING: the password option (ROPC) is discouraged. It cannot do MFA, breaks when the "
    "password changes, and Microsoft is retiring it. Use it only if the account is excluded "
    "from MFA by network location; prefer the device-code sign-in (credential token_cache)."
)


class CliError(Exception):
    """A failure to report as one sentence."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("--settings", type=Path, help="read app settings from local.settings.json")
    common.add_argument("--vault-url", help="Key Vault URL (default: KEY_VAULT_URL)")

    parser = argparse.ArgumentParser(prog="python -m admin", description=__doc__.splitlines()[0])
    top = parser.add_subparsers(dest="area", required=True)
    conns = top.add_parser("connections", help="manage connections")
    sub = conns.add_subparsers(dest="command", required=True)

    add = sub.add_parser("add", parents=[common], help="create or replace a connection")
    add.add_argument("name")
    add.add_argument("--secret-file", type=Path, help="read the secret/certificate/password here")
    add.add_argument("--secret-stdin", action="store_true", help="read it from standard input")
    add_connection_options(add)

    sub.add_parser("list", parents=[common], help="all connections and their sign-in state")
    show = sub.add_parser("show", parents=[common], help="one connection in detail")
    show.add_argument("name")
    auth = sub.add_parser("authenticate", parents=[common], help="sign the service account in")
    auth.add_argument("name")
    auth.add_argument("--timeout", type=float, help="give up after this many seconds")
    test = sub.add_parser("test", parents=[common], help="read-only probe, or a real test mail")
    test.add_argument("name")
    test.add_argument("--user", help="user mode: whose sign-in to test")
    test.add_argument("--mailbox", help="mailbox to probe (default: account or first sender)")
    test.add_argument("--send-to", help="also send a real test mail to this address")
    remove = sub.add_parser("remove", parents=[common], help="delete a connection and its secrets")
    remove.add_argument("name")
    return parser


def _read_secret(args: argparse.Namespace) -> str | None:
    if args.secret_file:
        return args.secret_file.read_text(encoding="utf-8").strip()
    if args.secret_stdin:
        return sys.stdin.read().strip()
    return None


def _state_json(secret: str, state: CacheState) -> dict[str, Any]:
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


def _describe(vault, conn: Connection, detail: bool) -> dict[str, Any]:
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
    data["signIns"] = [_state_json(name, state) for name, state in states]
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


def _token_line(conn: dict[str, Any]) -> str:
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


def _signed_line(conn: dict[str, Any]) -> str:
    if conn["requireSignedRequests"]:
        return "signed (RFC 9421, the connection's signing key)"
    return "UNSIGNED allowed (--allow-unsigned): the function key alone acts on this connection"


def _print_human(command: str, result: Any) -> None:
    if command == "list":
        if not result["connections"]:
            print("No connections. Add one with: python -m admin connections add ...")
        for c in result["connections"]:
            print(f"{c['name']}  [{c['mode']}]  tenant {c['tenantId']}")
            print(f"    senders: {', '.join(c['allowedSenders']) or '(none)'}")
            print(f"    requests: {_signed_line(c)}")
            print(f"    sign-in: {_token_line(c)}")
        return
    if command == "show":
        c = result
        rows = [
            ("name", c["name"]),
            ("mode", c["mode"]),
            ("tenant", c["tenantId"]),
            ("client id", c["clientId"]),
            ("credential", f"{c['credential']} (secret {c['credentialSecretName']})"),
            ("account", c.get("account", "-")),
            ("senders", ", ".join(c["allowedSenders"]) or "(none)"),
            ("requests", _signed_line(c)),
            ("authority", c["authorityHost"]),
            ("graph", c["graphBaseUrl"]),
            ("scopes", " ".join(c["scopes"])),
            ("sign-in", _token_line(c)),
        ]
        for key, value in rows:
            print(f"{key:>11}: {value}")
        return
    print(result["message"])


def _run(args: argparse.Namespace) -> Any:
    from admin.vault import Vault, load_settings

    vault = Vault(load_settings(args.settings, args.vault_url))
    try:
        return _dispatch(args, vault)
    finally:
        vault.close()


def _dispatch(args: argparse.Namespace, vault) -> Any:
    cmd = args.command
    if cmd == "list":
        return {"connections": [_describe(vault, c, False) for c in vault.connections()]}
    if cmd == "show":
        return _describe(vault, vault.connection(args.name), True)
    if cmd == "add":
        return _add(args, vault)
    if cmd == "authenticate":
        return _authenticate(args, vault)
    if cmd == "test":
        from admin.probe import probe

        return probe(vault, args.name, user=args.user, mailbox=args.mailbox, send_to=args.send_to)
    if cmd == "remove":
        conn = vault.connection(args.name)
        removed = vault.remove(conn)
        return {
            "name": conn.name,
            "removedSecrets": removed,
            "message": f"Removed {conn.name} and {len(removed) - 1} secret(s) it owned.",
        }
    raise CliError(f"Unknown command {cmd}.")


def _add(args: argparse.Namespace, vault) -> dict[str, Any]:
    """Create or replace a connection; its signing key is created when it has none."""
    from admin.connection_options import merged_document
    from shared.identity.connections import new_signing_key, save_connection

    existing = vault.stored_connection(args.name)
    try:
        doc = merged_document(args, existing)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    credential = doc["credential"]["type"]
    if credential == "password":
        print(ROPC_WARNING, file=sys.stderr)
    secret = _read_secret(args)
    kept = existing is not None and existing.credential.type == credential
    if credential in ("client_secret", "certificate", "password") and secret is None and not kept:
        raise CliError(
            f"Credential {credential} needs its value: pass --secret-file PATH or --secret-stdin."
        )
    current_key = vault.signing_key(args.name)
    signing_key = new_signing_key() if args.rotate_signing_key or not current_key else None
    conn = save_connection(vault.client, doc, secret, signing_key=signing_key)
    key = signing_key or current_key or ""
    if args.signing_key_out:
        _write_private(Path(args.signing_key_out), key)
    next_step = {
        "token_cache": f"Next: python -m admin connections authenticate {args.name}",
    }.get(credential, f"Next: python -m admin connections test {args.name}")
    if conn.mode == "user":
        next_step = (
            "Next: each user opens /api/auth/"
            f"{args.name}/login?user=<their address> on the function app"
        )
    if conn.require_signed_requests:
        where = (
            f"written to {args.signing_key_out}"
            if args.signing_key_out
            else ("pass --signing-key-out PATH to hand it to the caller")
        )
        signed = f"Requests must be signed with its key ({where})."
    else:
        signed = "Requests need NO signature (--allow-unsigned)."
    return {
        "name": args.name,
        "saved": True,
        "requireSignedRequests": conn.require_signed_requests,
        "signingKeyCreated": signing_key is not None,
        "message": f"Saved {args.name}. {signed} {next_step}",
    }


def _write_private(path: Path, value: str) -> None:
    """Write `value` to `path` readable by its owner only (a key never goes to the terminal)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")


def _authenticate(args: argparse.Namespace, vault) -> dict[str, Any]:
    import importlib

    from admin.authenticate import device_code_sign_in
    from shared.identity.token_cache import KeyVaultTokenCache

    conn = vault.connection(args.name)
    if conn.mode == "app":
        raise CliError(f"{conn.name} is app-only: it has no sign-in; `test` checks it.")
    if conn.mode == "user":
        raise CliError(
            f"In {conn.name} each user signs in: send them /api/auth/{conn.name}/login?user=..."
        )
    if conn.credential.type == "password":
        print(ROPC_WARNING, file=sys.stderr)
        raise CliError(f"{conn.name} uses the password option; `test` checks it.")
    for module in HOOK_MODULES:
        importlib.import_module(module)
    from shared.identity.secret_names import tags

    cache = KeyVaultTokenCache(
        vault.store, conn.credential.secret_name, tags("token-cache", conn.name)
    )
    user = device_code_sign_in(conn, cache, timeout=args.timeout)
    resumed, problem = _resume_parked(vault.settings, conn.name)
    message = f"Signed in as {user}; the sign-in is stored in Key Vault for {conn.name}."
    if resumed:
        message += f" Re-queued {len(resumed)} parked operation(s)."
    if problem:
        message += f" {problem}"
    return {
        "name": conn.name,
        "signedInAs": user,
        "secretName": conn.credential.secret_name,
        "resumedOperations": resumed,
        "resumeError": problem,
        "message": message,
    }


def _resume_parked(settings, connection: str) -> tuple[list[str], str | None]:
    """Re-queue the work parked for the service account (shared.work.parking), as the function
    app's own sign-in hook does for users; returns (operation ids, a problem sentence or None).

    Called directly rather than as a sign-in hook so the admin sees the outcome: the sign-in is
    stored either way, but parked work only resumes if this process reaches the app's storage.
    """
    from shared.work.parking import requeue_parked
    from shared.work.queueing import Queues
    from shared.work.store import OperationStore, make_table_client

    try:
        return requeue_parked(
            OperationStore(make_table_client(settings)), Queues(settings), connection, None
        ), None
    except Exception as exc:
        reason = exc.message if isinstance(exc, AppError) else type(exc).__name__
        return [], (
            f"Parked operations were NOT re-queued ({reason}); give this command the app's "
            "storage settings (AzureWebJobsStorage or its __tableServiceUri/__queueServiceUri) "
            "and run it again, or the parked work expires as reauth_expired."
        )


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        result = _run(args)
    except (AppError, CliError, OSError) as exc:
        message = exc.message if isinstance(exc, AppError) else str(exc)
        if isinstance(exc, AppError) and exc.details:
            message += " " + "; ".join(f"{d.field}: {d.message}" for d in exc.details)
        if args.json:
            code = exc.code if isinstance(exc, AppError) else "failed"
            print(json.dumps({"error": {"code": code, "message": message}}))
        else:
            print(f"error: {message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_human(args.command, result)
    return 0
