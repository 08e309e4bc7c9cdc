"""docs/deploy.md and docs/permissions.md cover what an admin needs, in the names the code uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_deploy_guide_goes_from_empty_subscription_to_first_mail() -> None:
    text = (DOCS / "deploy.md").read_text()
    for needed in (
        "azd up",
        "az ad app create",
        "permissions.md",
        "python -m admin connections add",
        "az keyvault secret set",
        "curl",
        "AppTraces",
        "Roll back",
    ):
        assert needed in text, f"docs/deploy.md does not mention {needed!r}"


def test_deploy_guide_connection_example_is_valid_json_with_every_field() -> None:
    text = (DOCS / "deploy.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    connections = [json.loads(b) for b in blocks if '"credential"' in b]
    assert connections
    for connection in connections:
        assert {"name", "mode", "tenantId", "clientId", "allowedSenders", "credential"} <= set(
            connection
        )
        assert connection["credential"]["type"] in {
            "client_secret",
            "certificate",
            "token_cache",
            "password",
        }


def test_deploy_guide_names_secrets_like_the_code() -> None:
    text = (DOCS / "deploy.md").read_text()
    from shared.identity import secret_names

    assert f"{secret_names.CONNECTION_PREFIX}<id>" in text
    for name in re.findall(r"--name ((?:conn|cred|sign)-[\w-]+)", text):
        assert re.fullmatch(r"[0-9a-z-]+", name), name


def test_permissions_guide_covers_exchange_and_entra_admin_tasks() -> None:
    text = (DOCS / "permissions.md").read_text()
    for needed in (
        "Add-RecipientPermission",
        "Add-MailboxPermission",
        "-AutoMapping $false",
        "New-ManagementScope",
        "New-ServicePrincipal",
        "New-ManagementRoleAssignment",
        "Application Mail.Send",
        "Application Mail.ReadWrite",
        "Application Access Polic",
        "90 days",
        "Conditional Access",
        "Mail.Send.Shared",
        "offline_access",
    ):
        assert needed in text, f"docs/permissions.md does not mention {needed!r}"
