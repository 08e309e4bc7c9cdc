"""Store the sandbox's ready-made connection "contoso.test" in the sandbox's Key Vault."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devhost.local_settings import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_CONNECTION,
    SANDBOX_TENANT_ID,
    read_local_settings,
)

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient

# The sandbox's default seed (sandbox/default_seed.json): tenant contoso.test and its app.


def sandbox_connection(sandbox_url: str, name: str = SANDBOX_CONNECTION) -> dict[str, Any]:
    """The connection document for the sandbox tenant (app mode, senders *@contoso.test).

    It accepts unsigned requests (`requireSignedRequests: false`) so that the curl `make run`
    prints works with the function key alone; connections made with `python -m admin
    connections add` require signed requests unless created with --allow-unsigned.
    """
    from shared.identity.secret_names import credential_secret

    return {
        "name": name,
        "mode": "app",
        "tenantId": SANDBOX_TENANT_ID,
        "clientId": SANDBOX_CLIENT_ID,
        "authorityHost": sandbox_url,
        "graphBaseUrl": f"{sandbox_url}/v1.0",
        "instanceDiscovery": False,
        "allowedSenders": ["*@contoso.test"],
        # The sandbox serves attachment files itself, on loopback: allowed for this one only.
        "attachmentUrlHosts": ["127.0.0.1"],
        "allowPrivateAttachmentHosts": True,
        "callbackUrlHosts": [],
        # A local archive (an .eml receiver on loopback) for export and the `archive` step.
        "archiveUrlHosts": ["127.0.0.1"],
        # Local convenience only: see the docstring and docs/security.md.
        "requireSignedRequests": False,
        "credential": {"type": "client_secret", "secretName": credential_secret(name)},
    }


def sandbox_secret_client(
    sandbox_url: str,
    *,
    tenant_id: str = SANDBOX_TENANT_ID,
    client_id: str = SANDBOX_CLIENT_ID,
    client_secret: str = SANDBOX_CLIENT_SECRET,
    ca_file: str | Path | None = None,
) -> SecretClient:
    """A Key Vault SecretClient for the sandbox's vault, signed in as one of its seed's apps.

    The relaxations (the sandbox as authority, no instance discovery, no check that the vault's
    challenge names an Azure resource) are for the sandbox only. With `ca_file` both the client
    and its credential trust that CA; without, REQUESTS_CA_BUNDLE / SSL_CERT_FILE decide.
    """
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    verify = {"connection_verify": str(ca_file)} if ca_file else {}
    credential = ClientSecretCredential(
        tenant_id,
        client_id,
        client_secret,
        authority=sandbox_url,
        disable_instance_discovery=True,
        **verify,
    )
    return SecretClient(sandbox_url, credential, verify_challenge_resource=False, **verify)


def store_sandbox_connection(sandbox_url: str, ca_file: str | Path) -> str:
    """Write the connection and its client secret to the sandbox Key Vault; returns its name.

    Talks to the sandbox over TLS, so REQUESTS_CA_BUNDLE is pointed at the sandbox CA for this
    process (this machine sets it globally, and azure-core's transport honours it).
    Raises whatever the Key Vault client raises when the sandbox refuses.
    """
    from shared.identity.connections import save_connection

    os.environ["REQUESTS_CA_BUNDLE"] = str(ca_file)
    os.environ["SSL_CERT_FILE"] = str(ca_file)
    client = sandbox_secret_client(sandbox_url)
    try:
        save_connection(client, sandbox_connection(sandbox_url), SANDBOX_CLIENT_SECRET)
    finally:
        client.close()
    return SANDBOX_CONNECTION


def main(argv: list[str] | None = None) -> int:
    """`python -m devhost.bootstrap --settings local.settings.json` (or `--url URL --ca CA`):
    (re)store the connection; one line and status 1 if the sandbox refuses."""
    parser = argparse.ArgumentParser(prog="python -m devhost.bootstrap", description=__doc__)
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    parser.add_argument("--url", help="the sandbox's URL (instead of reading --settings)")
    parser.add_argument("--ca", help="the sandbox's CA bundle (with --url)")
    args = parser.parse_args(argv)
    if (args.url is None) != (args.ca is None):
        parser.error("--url and --ca go together")
    if args.url is None:
        values = read_local_settings(args.settings)["Values"]
        args.url, args.ca = values["KEY_VAULT_URL"], values["REQUESTS_CA_BUNDLE"]
    try:
        name = store_sandbox_connection(args.url, args.ca)
    except Exception as exc:
        # The Key Vault client's errors say what was refused; a traceback would add nothing.
        print(f"could not store the connection: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"stored connection {name!r} in {args.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
