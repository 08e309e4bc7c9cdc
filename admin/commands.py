"""What each `connections` command does: handlers that take the parsed options and the vault and
return a JSON-ready result (with a `message` for people), or raise CliError / AppError."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from admin.output import describe
from shared.errors import AppError
from shared.identity.connections import OPERATION_PERMISSIONS, parse_connection

# What Microsoft says about ROPC: not recommended, and no MFA, federation or passwordless.
ROPC_WARNING = (
    "WARNING: the password option (ROPC) is discouraged. Microsoft does not recommend it: it "
    "cannot answer MFA, does not work for federated or passwordless accounts, and stops when "
    "the password changes. Use it only if the account is excluded from MFA by network location; "
    "prefer the device-code sign-in (credential token_cache)."
)


class CliError(Exception):
    """A failure to report as one sentence."""


def read_secret(args: argparse.Namespace) -> str | None:
    """The credential from --secret-file or --secret-stdin (never from the command line)."""
    if args.secret_file:
        return args.secret_file.read_text(encoding="utf-8").strip()
    if args.secret_stdin:
        return sys.stdin.read().strip()
    return None


def scope_warning(doc: dict[str, Any]) -> str | None:
    """A warning when a delegated connection's scopes cannot cover an operation, else None.

    A service account acts in other mailboxes, so it needs each permission's .Shared form;
    a user's own mailbox is covered by either form.
    """
    conn = parse_connection(doc)
    if conn.mode == "app":
        return None
    granted = set(conn.permissions())
    # Mail.ReadWrite includes reading: it covers what needs Mail.Read (export).
    covered = granted | {p.replace("ReadWrite", "Read") for p in granted if "ReadWrite" in p}
    missing = []
    for operation, needed in OPERATION_PERMISSIONS.items():
        for permission in needed:
            shared = f"{permission}.Shared"
            if shared in covered or (conn.mode == "user" and permission in covered):
                continue
            wanted = shared if conn.mode == "service_account" else permission
            missing.append(f"{operation} (needs {wanted})")
            break
    if not missing:
        return None
    return (
        f"WARNING: with the scopes {' '.join(sorted(granted))} connection {conn.name} cannot "
        f"{', '.join(missing)}; see docs/permissions.md."
    )


def list_connections(args: argparse.Namespace, vault: Any) -> dict[str, Any]:
    return {"connections": [describe(vault, c, False) for c in vault.connections()]}


def show_connection(args: argparse.Namespace, vault: Any) -> dict[str, Any]:
    return describe(vault, vault.connection(args.name), True)


def add_connection(args: argparse.Namespace, vault: Any) -> dict[str, Any]:
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
    secret = read_secret(args)
    kept = existing is not None and existing.credential.type == credential
    if credential in ("client_secret", "certificate", "password") and secret is None and not kept:
        raise CliError(
            f"Credential {credential} needs its value: pass --secret-file PATH or --secret-stdin."
        )
    warning = scope_warning(doc)
    if warning:
        print(warning, file=sys.stderr)
    if doc.get("notifyUrl"):
        check_notify_url(doc)
    current_key = vault.signing_key(args.name)
    signing_key = new_signing_key() if args.rotate_signing_key or not current_key else None
    conn = save_connection(vault.client, doc, secret, signing_key=signing_key)
    key = signing_key or current_key or ""
    if args.signing_key_out:
        write_private(Path(args.signing_key_out), key)
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


def check_notify_url(doc: dict[str, Any]) -> None:
    """notifyUrl must pass the callback URL rules (https, a callbackUrlHosts host, port 443, no
    private address unless allowed); raises CliError saying which."""
    from shared.errors import ValidationFailed
    from shared.work.callbacks import check_callback_url

    try:
        check_callback_url(doc["notifyUrl"], parse_connection(doc))
    except ValidationFailed as exc:
        reasons = "; ".join(d.message for d in exc.details) or exc.message
        raise CliError(f"--notify-url is not allowed: {reasons}") from None


def write_private(path: Path, value: str) -> None:
    """Write `value` to `path` readable by its owner only (a key never goes to the terminal)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")


def authenticate_connection(args: argparse.Namespace, vault: Any) -> dict[str, Any]:
    from admin.authenticate import device_code_sign_in
    from shared.identity.secret_names import tags
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
    cache = KeyVaultTokenCache(
        vault.store, conn.credential.secret_name, tags("token-cache", conn.name)
    )
    user = device_code_sign_in(conn, cache, timeout=args.timeout)
    resumed, problem = resume_parked(vault.settings, conn.name)
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


def resume_parked(settings: Any, connection: str) -> tuple[list[str], str | None]:
    """Re-queue the work parked for the service account (shared.work.parking), as the function
    app's own sign-in hook does for users; returns (operation ids, a problem sentence or None).

    Called directly rather than as a sign-in hook so the admin sees the outcome: the sign-in is
    stored either way, but parked work only resumes if this process reaches the app's storage.
    """
    from shared.runtime import Runtime

    try:
        return Runtime(settings).resume_parked(connection, None), None
    except Exception as exc:
        reason = exc.message if isinstance(exc, AppError) else type(exc).__name__
        return [], (
            f"Parked operations were NOT re-queued ({reason}); give this command the app's "
            "storage settings (AzureWebJobsStorage or its __tableServiceUri/__queueServiceUri, "
            "with Storage Queue Data Contributor and Storage Table Data Contributor on the app's "
            "storage account) and run it again, or the parked work expires as reauth_expired."
        )


def probe_connection(args: argparse.Namespace, vault: Any) -> dict[str, Any]:
    from admin.probe import probe

    return probe(vault, args.name, user=args.user, mailbox=args.mailbox, send_to=args.send_to)


def audit_connection(args: argparse.Namespace, vault: Any) -> dict[str, Any]:
    """The permission audit (shared.health.audit); `ok` false makes the exit status 1."""
    from shared.health.audit import Auditor
    from shared.runtime import Runtime

    runtime = Runtime(vault.settings, secret_client_factory=lambda: vault.client)
    report = Auditor(runtime).audit(args.name, mailboxes=args.mailbox, send_test=args.send_test)
    return report.to_json()


def remove_connection(args: argparse.Namespace, vault: Any) -> dict[str, Any]:
    conn = vault.connection(args.name)
    removed = vault.remove(conn)
    return {
        "name": conn.name,
        "removedSecrets": removed,
        "message": f"Removed {conn.name} and {len(removed) - 1} secret(s) it owned.",
    }
