"""`python -m admin connections add|list|show|authenticate|test|audit|remove [--json]`.

Human output is short and readable; `--json` prints one JSON document for scripts. Every failure
is one sentence saying what to do, exit status 1 (2 for usage errors). Secrets are read from
stdin or a file, never from the command line (it shows up in `ps` and shell history), and are
never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from admin import commands
from admin.commands import CliError
from admin.connection_options import add_connection_options
from admin.output import print_audit, print_list, print_message, print_show
from shared.errors import AppError
from shared.settings import LocalSettingsError


def _name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the connection's name, e.g. documizers.com")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("--secret-file", type=Path, help="read the secret/certificate/password")
    parser.add_argument("--secret-stdin", action="store_true", help="read it from standard input")
    add_connection_options(parser)


def _authenticate_arguments(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("--timeout", type=float, help="give up after this many seconds")


def _test_arguments(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument("--user", help="user mode: whose sign-in to test")
    parser.add_argument("--mailbox", help="mailbox to probe (default: account or first sender)")
    parser.add_argument("--send-to", help="also send a real test mail to this address")


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    _name(parser)
    parser.add_argument(
        "--mailbox",
        action="append",
        default=[],
        help="also audit this mailbox (repeat; needed for *@domain senders)",
    )
    parser.add_argument(
        "--send-test",
        action="store_true",
        help="check Send As by sending a test mail from each mailbox to itself",
    )


# (command, help, its own arguments, handler, how people see the result)
COMMANDS = (
    ("add", "create or replace a connection", _add_arguments, commands.add_connection, None),
    (
        "list",
        "all connections and their sign-in state",
        None,
        commands.list_connections,
        print_list,
    ),
    ("show", "one connection in detail", _name, commands.show_connection, print_show),
    (
        "authenticate",
        "sign the service account in",
        _authenticate_arguments,
        commands.authenticate_connection,
        None,
    ),
    (
        "test",
        "read-only probe, or a real test mail",
        _test_arguments,
        commands.probe_connection,
        None,
    ),
    (
        "audit",
        "check the grants of each sender mailbox (exit status 1 when one is missing)",
        _audit_arguments,
        commands.audit_connection,
        print_audit,
    ),
    ("remove", "delete a connection and its secrets", _name, commands.remove_connection, None),
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each command sets its `handler` and `printer` as defaults."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("--settings", type=Path, help="read app settings from local.settings.json")
    common.add_argument("--vault-url", help="Key Vault URL (default: KEY_VAULT_URL)")

    parser = argparse.ArgumentParser(
        prog="python -m admin", description=(__doc__ or "").splitlines()[0]
    )
    top = parser.add_subparsers(dest="area", required=True)
    conns = top.add_parser("connections", help="manage connections")
    sub = conns.add_subparsers(dest="command", required=True)
    for name, help_text, arguments, handler, printer in COMMANDS:
        command = sub.add_parser(name, parents=[common], help=help_text)
        if arguments:
            arguments(command)
        command.set_defaults(handler=handler, printer=printer or print_message)
    return parser


def _run(args: argparse.Namespace) -> Any:
    from admin.vault import Vault, load_settings

    vault = Vault(load_settings(args.settings, args.vault_url))
    try:
        return args.handler(args, vault)
    finally:
        vault.close()


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        result = _run(args)
    except (AppError, CliError, LocalSettingsError, OSError) as exc:
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
        args.printer(result)
    # A report that found problems (the audit) is a failure for scripts too.
    return 1 if result.get("ok") is False else 0
