"""Store the sandbox's ready-made connection "contoso.test" in the sandbox's Key Vault."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from devhost.local_settings import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_CONNECTION,
    SANDBOX_TENANT_ID,
    read_local_settings,
)

# The sandbox's default seed (sandbox/default_seed.json): tenant contoso.test and its app.


def sandbox_connection(sandbox_url: str, name: str = SANDBOX_CONNECTION) -> dict[str, Any]:
    """The connection document for the sandbox tenant (app mode, senders *@contoso.test)."""
    from shared.connections import connection_secret_name

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
        "credential": {
            "type": "client_secret",
            "secretName": f"{connection_secret_name(name)}-client-secret",
        },
    }


def store_sandbox_connection(sandbox_url: str, ca_file: str | Path) -> str:
    """Write the connection and its client secret to the sandbox Key Vault; returns its name.

    Talks to the sandbox over TLS, so REQUESTS_CA_BUNDLE is pointed at the sandbox CA for this
    process (this machine sets it globally, and azure-core's transport honours it).
    Raises whatever the Key Vault client raises when the sandbox refuses.
    """
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    from shared.connections import save_connection

    os.environ["REQUESTS_CA_BUNDLE"] = str(ca_file)
    os.environ["SSL_CERT_FILE"] = str(ca_file)
    credential = ClientSecretCredential(
        SANDBOX_TENANT_ID,
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        authority=sandbox_url,
        disable_instance_discovery=True,
    )
    client = SecretClient(sandbox_url, credential, verify_challenge_resource=False)
    try:
        save_connection(client, sandbox_connection(sandbox_url), SANDBOX_CLIENT_SECRET)
    finally:
        client.close()
        credential.close()
    return SANDBOX_CONNECTION


def main(argv: list[str] | None = None) -> int:
    """`python -m devhost.bootstrap --settings local.settings.json`: (re)store the connection."""
    parser = argparse.ArgumentParser(prog="python -m devhost.bootstrap", description=__doc__)
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    args = parser.parse_args(argv)
    values = read_local_settings(args.settings)["Values"]
    name = store_sandbox_connection(values["KEY_VAULT_URL"], values["REQUESTS_CA_BUNDLE"])
    print(f"stored connection {name!r} in {values['KEY_VAULT_URL']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
