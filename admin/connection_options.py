"""The `connections add` options for every connection field, and how they change a stored one.

A new connection takes what the options say (with safe defaults: signed requests required).
Replacing a connection keeps every stored field, security fields included, unless an option
explicitly changes it: re-running `add` to rotate a secret must never turn protection off.
List options replace the stored list when given; `--clear FIELD` empties one. A new field is
one new row in the tables below.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from shared.identity.connections import CREDENTIAL_TYPES, MODES, Connection
from shared.identity.secret_names import credential_secret_for

# (option, wire field, help) of the list fields; `--clear` takes the option's name.
LIST_OPTIONS = (
    ("--sender", "allowedSenders", "address or *@domain that may send (repeat)"),
    ("--attachment-host", "attachmentUrlHosts", "host attachment URLs may use (repeat)"),
    ("--callback-host", "callbackUrlHosts", "host callbackUrl may use (repeat)"),
    ("--archive-host", "archiveUrlHosts", "host an archiveUrl may PUT the .eml to (repeat)"),
    ("--return-url-host", "returnUrlHosts", "user mode: host a returnUrl may use (repeat)"),
    (
        "--scopes",
        "delegatedScopes",
        "delegated modes: the Graph permissions to ask for instead of the mode's default, "
        "names or scope URIs, separated by spaces or commas (docs/permissions.md)",
    ),
)
# List options that take several values at once (`--scopes Mail.Send Mail.ReadWrite`), and
# the older spelling each still accepts.
WORDS_OPTIONS = {"--scopes": ("--delegated-scope",)}
TEXT_OPTIONS = (
    ("--tenant", "tenantId", "tenant id (GUID) or domain"),
    ("--client-id", "clientId", "the app registration's client id"),
    ("--account", "account", "service account UPN"),
    ("--authority-host", "authorityHost", "Entra ID authority (default: AUTHORITY_HOST)"),
    ("--graph-base-url", "graphBaseUrl", "Graph base URL (default: GRAPH_BASE_URL)"),
    ("--graph-scope", "graphScope", "app-only scope (default: Graph's .default)"),
    (
        "--notify-url",
        "notifyUrl",
        "https URL that gets signed sign-in and parked-work events (host on --callback-host; "
        "'' removes it)",
    ),
)
FLAG_OPTIONS = (
    ("--instance-discovery", "instanceDiscovery", "MSAL instance discovery (off: sandbox only)"),
    (
        "--allow-private-attachment-hosts",
        "allowPrivateAttachmentHosts",
        "fetch attachments and call back on private/loopback addresses (sandbox only)",
    ),
)


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Register an option for every connection field on the `add` parser (default: unchanged)."""
    parser.add_argument("--mode", choices=MODES, help="required for a new connection")
    parser.add_argument("--credential", choices=CREDENTIAL_TYPES, help="default depends on mode")
    for option, _, text in TEXT_OPTIONS:
        parser.add_argument(option, default=None, help=text)
    for option, _, text in LIST_OPTIONS:
        if option in WORDS_OPTIONS:
            parser.add_argument(
                option,
                *WORDS_OPTIONS[option],
                dest=_dest(option),
                action="extend",
                nargs="+",
                default=None,
                metavar="VALUE",
                help=text,
            )
        else:
            parser.add_argument(option, action="append", default=None, help=text)
    parser.add_argument(
        "--clear",
        action="append",
        default=[],
        choices=[_dest(o).replace("_", "-") for o, _, _ in LIST_OPTIONS],
        help="empty one stored list (repeat)",
    )
    for option, _, text in FLAG_OPTIONS:
        parser.add_argument(option, action=argparse.BooleanOptionalAction, default=None, help=text)
    signed = parser.add_mutually_exclusive_group()
    signed.add_argument(
        "--require-signed-requests",
        dest="require_signed_requests",
        action="store_const",
        const=True,
        default=None,
        help="callers must sign requests with the connection's key (the default)",
    )
    signed.add_argument(
        "--allow-unsigned",
        dest="require_signed_requests",
        action="store_const",
        const=False,
        help="accept requests with the function key alone (explicit opt-out)",
    )
    parser.add_argument(
        "--rotate-signing-key", action="store_true", help="replace the signing key with a new one"
    )
    parser.add_argument(
        "--signing-key-out",
        metavar="PATH",
        help="write the signing key to PATH (created with mode 600) for the caller's configuration",
    )


def _default_credential(mode: str) -> str:
    return {"app": "client_secret", "service_account": "token_cache", "user": "client_secret"}[mode]


def merged_document(args: argparse.Namespace, existing: Connection | None) -> dict[str, Any]:
    """The connection document to store: the stored one (if any) changed only where asked.

    Raises ValueError naming what a new connection lacks.
    """
    import msgspec

    doc: dict[str, Any] = msgspec.to_builtins(existing) if existing is not None else {}
    doc["name"] = args.name
    if existing is None:
        missing = [
            o
            for o, v in (
                ("--mode", args.mode),
                ("--tenant", args.tenant),
                ("--client-id", args.client_id),
            )
            if not v
        ]
        if missing:
            raise ValueError(f"A new connection needs {', '.join(missing)}.")
        doc["requireSignedRequests"] = True
    if args.mode:
        doc["mode"] = args.mode
    for option, wire, _ in TEXT_OPTIONS:
        value = getattr(args, _dest(option))
        if value is not None:
            doc[wire] = value
    for option, wire, _ in LIST_OPTIONS:
        if _dest(option).replace("_", "-") in args.clear:
            doc[wire] = []
        value = getattr(args, _dest(option))
        if value is not None and option in WORDS_OPTIONS:
            doc[wire] = [word for item in value for word in re.split(r"[\s,]+", item) if word]
        elif value is not None:
            doc[wire] = list(value)
    for option, wire, _ in FLAG_OPTIONS:
        value = getattr(args, _dest(option))
        if value is not None:
            doc[wire] = value
    if args.require_signed_requests is not None:
        doc["requireSignedRequests"] = args.require_signed_requests
    stored_type = existing.credential.type if existing is not None else None
    mode_changed = existing is not None and args.mode and args.mode != existing.mode
    credential = args.credential or (
        stored_type if stored_type and not mode_changed else _default_credential(doc["mode"])
    )
    doc["credential"] = {
        "type": credential,
        "secretName": credential_secret_for(args.name, credential),
    }
    return doc
