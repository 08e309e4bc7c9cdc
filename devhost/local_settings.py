"""local.settings.json: read it, write it, and the values that point the app at the sandbox."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

# Reading the file lives with the product's settings so the admin command line can use it too
# without importing the devhost; the names stay available here for the devhost's modules.
from shared.settings import LocalSettingsError, read_local_settings
from shared.settings import apply_local_values as apply_values

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_CONNECTION",
    "SANDBOX_TENANT_ID",
    "LocalSettingsError",
    "apply_values",
    "read_local_settings",
    "sandbox_values",
    "write_local_settings",
]

# The sandbox seed's app registration (published in docs/sandbox.md; not a real secret).
SANDBOX_CONNECTION = "contoso.test"
SANDBOX_TENANT_ID = "8f3c1a52-0000-4000-8000-00000000c0de"
SANDBOX_CLIENT_ID = "5d1e7c9a-0000-4000-8000-00000000a11c"
SANDBOX_CLIENT_SECRET = "sandbox-app-secret"  # noqa: S105 - the sandbox seed's published secret


def write_local_settings(path: Path, values: Mapping[str, str], *, http_port: int) -> None:
    """Write a local.settings.json (mode 600: it holds the sandbox's client secret)."""
    data = {
        "IsEncrypted": False,
        "Values": dict(values),
        "Host": {"LocalHttpPort": http_port},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2) + "\n")


def sandbox_values(
    *, sandbox_url: str, ca_file: str | Path, storage: str, devhost_port: int | None
) -> dict[str, str]:
    """The app settings for running against the local sandbox and Azurite (DESIGN contract).

    Without a fixed devhost port (tests use any free one) PUBLIC_BASE_URL is left out and the
    app derives its base URL from the request's Host header.
    """
    from shared import settings as names

    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        # HTTP streams need it on Python 3.11 (devhost.streams_mode; infra sets it in Azure).
        "PYTHON_ENABLE_INIT_INDEXING": "1",
        names.STORAGE_CONNECTION: storage,
        names.KEY_VAULT_URL: sandbox_url,
        names.KEY_VAULT_CREDENTIAL: "client_secret",
        names.AZURE_TENANT_ID: SANDBOX_TENANT_ID,
        names.AZURE_CLIENT_ID: SANDBOX_CLIENT_ID,
        names.AZURE_CLIENT_SECRET: SANDBOX_CLIENT_SECRET,
        names.AZURE_AUTHORITY_HOST: sandbox_url,
        names.KEY_VAULT_VERIFY_CHALLENGE_RESOURCE: "false",
        names.AUTHORITY_INSTANCE_DISCOVERY: "false",
        names.GRAPH_BASE_URL: f"{sandbox_url}/v1.0",
        names.AUTHORITY_HOST: sandbox_url,
        # The signin_health timer's schedule (the host resolves %SIGNIN_HEALTH_SCHEDULE%).
        names.SIGNIN_HEALTH_SCHEDULE: "0 0 4 * * *",
        # The sandbox's TLS is signed by its own CA; requests/azure-core read this.
        "REQUESTS_CA_BUNDLE": str(ca_file),
        "SSL_CERT_FILE": str(ca_file),
    }
    if devhost_port:
        values[names.PUBLIC_BASE_URL] = f"http://127.0.0.1:{devhost_port}"
    return values
