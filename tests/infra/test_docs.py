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


# --- What is consented equals what the code asks for ---------------------------------------------

PERMISSION = re.compile(r"^(Mail\.\w+(\.Shared)?|offline_access|openid|profile|User\.\w+|email)$")


def names(text: str) -> set[str]:
    """The permission names written in `backticks` (or space-separated in a shell string)."""
    found = set(re.findall(r"`([^`]+)`", text)) | set(text.replace('"', " ").split())
    return {n for n in found if PERMISSION.match(n)}


def asked_for(mode: str) -> set[str]:
    """Every scope a sign-in of this mode sends to Entra, as the code and MSAL build it."""
    from types import SimpleNamespace
    from urllib.parse import parse_qs, urlsplit

    import msal

    from shared.identity.code_redemption import authorization_url
    from shared.identity.connections import parse_connection
    from shared.identity.signin import new_state

    credential = "token_cache" if mode == "service_account" else "client_secret"
    conn = parse_connection(
        {
            "name": "documizers.com",
            "mode": mode,
            "tenantId": "t",
            "clientId": "c",
            "authorityHost": "https://login.microsoftonline.com",
            "credential": {"type": credential},
        }
    )
    if mode == "service_account":
        # admin/authenticate.py: PublicClientApplication.initiate_device_flow(conn.scopes()),
        # whose request carries MSAL's decoration of them.
        msal_app = SimpleNamespace(_exclude_scopes=frozenset())
        scopes = msal.ClientApplication._decorate_scope(msal_app, conn.scopes())
    else:
        # The user's browser goes to the authorization URL the code builds.
        url = authorization_url(
            conn, new_state(conn.name, "anna@documizers.com", None), "sealed", "https://app/cb"
        )
        scopes = parse_qs(urlsplit(url).query)["scope"][0].split()
    return {s.rsplit("/", 1)[-1] for s in scopes}


def section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n#", 1)[0]


def test_the_code_asks_each_mode_for_its_mail_permissions_and_the_oidc_scopes() -> None:
    assert asked_for("service_account") == {
        "Mail.Send.Shared",
        "Mail.ReadWrite.Shared",
        "offline_access",
        "openid",
        "profile",
    }
    assert asked_for("user") == {
        "Mail.Send",
        "Mail.ReadWrite",
        "offline_access",
        "openid",
        "profile",
    }


def test_deploy_guide_consents_to_exactly_what_each_mode_asks_for() -> None:
    text = (DOCS / "deploy.md").read_text()
    for mode, heading in (
        ("service_account", "### Mode `service_account`"),
        ("user", "### Mode `user`"),
    ):
        block = section(text, heading)
        registered = re.search(r"for scope in ([^;]+); do", block)
        granted = re.search(r'--scope "([^"]+)"', block)
        assert registered and granted, mode
        assert names(registered.group(1)) == asked_for(mode), mode
        assert names(granted.group(1)) == asked_for(mode), mode
    powershell = re.search(r"\$scopes = (.+)", text)
    assert powershell and names(powershell.group(1)) == asked_for("service_account")
    user_powershell = re.search(r"For mode `user` use `\$scopes = ([^`]+)`", text)
    assert user_powershell and names(user_powershell.group(1)) == asked_for("user")


def test_permissions_guide_lists_exactly_what_each_mode_asks_for() -> None:
    text = (DOCS / "permissions.md").read_text()
    rows = {
        row.split("|")[1].strip(): row.split("|")[2:5]
        for row in text.splitlines()
        if row.startswith("| Entra permissions")
    }
    _app, service_cell, user_cell = rows["Entra permissions"]
    assert names(service_cell) == asked_for("service_account")
    assert names(user_cell) == asked_for("user")
    for mode, heading in (
        ("service_account", "### Mode `service_account`"),
        ("user", "### Mode `user`"),
    ):
        bullet = section(text, heading).split("- **API permissions**", 1)[1]
        listed = bullet.split("exactly", 1)[0]
        assert names(listed) == asked_for(mode), mode


def test_connections_guide_states_each_mode_s_default_scopes() -> None:
    from shared.identity.connections import DEFAULT_DELEGATED_PERMISSIONS

    text = (DOCS / "connections.md").read_text()
    row = next(r for r in text.splitlines() if r.startswith("| `delegatedScopes`"))
    for mode, permissions in DEFAULT_DELEGATED_PERMISSIONS.items():
        said = re.search(rf"`{mode}`: ([^;|]+)", row)
        assert said and names(said.group(1)) == set(permissions), mode


def test_least_privilege_table_matches_what_each_operation_needs() -> None:
    from shared.identity.connections import OPERATION_PERMISSIONS

    text = (DOCS / "permissions.md").read_text()
    table = section(text, "## Least privilege per operation")
    seen = set()
    for row in table.splitlines():
        cells = [c.strip() for c in row.split("|")[1:-1]]
        key = re.search(r"\(`(\w+)`\)", cells[0]) if cells else None
        if not key:
            continue
        needed = set(OPERATION_PERMISSIONS[key.group(1)])
        own, other, application = cells[2], cells[3], cells[4]
        assert names(own) == needed, row
        assert names(other) == {f"{p}.Shared" for p in needed}, row
        assert set(re.findall(r"`Application (\S+)`", application)) == needed, row
        seen.add(key.group(1))
    assert seen == set(OPERATION_PERMISSIONS)
