"""Tenant isolation: a token, app or user of one tenant never works in the other."""

from __future__ import annotations

import msal
import pytest

from sandbox.context import GRAPH_RESOURCE, VAULT_RESOURCE
from sandbox.db import Database
from sandbox.directory import Directory
from sandbox.seed import load
from sandbox.tokens import TokenError, Tokens
from tests.conftest import (
    FABRIKAM_CLIENT_ID,
    FABRIKAM_CLIENT_SECRET,
    FABRIKAM_TENANT_ID,
    SEED_CLIENT_ID,
    SEED_CLIENT_SECRET,
    SEED_PASSWORD,
    SEED_TENANT_ID,
)


@pytest.fixture(autouse=True)
def _no_user_realm_discovery():
    known = msal.authority.Authority._domains_without_user_realm_discovery
    added = {"127.0.0.1"} - known
    known.update(added)
    yield
    known.difference_update(added)


def test_app_of_one_tenant_gets_no_token_from_the_other(fresh_sandbox):
    app = msal.ConfidentialClientApplication(
        SEED_CLIENT_ID,
        client_credential=SEED_CLIENT_SECRET,
        authority=f"{fresh_sandbox.url}/fabrikam.test",
        instance_discovery=False,
    )

    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])

    assert result["error"] == "unauthorized_client"
    assert 700016 in result["error_codes"]


def test_user_of_another_tenant_cannot_sign_in(fresh_sandbox):
    app = msal.PublicClientApplication(
        SEED_CLIENT_ID, authority=f"{fresh_sandbox.url}/contoso.test", instance_discovery=False
    )

    result = app.acquire_token_by_username_password(
        "ceo@fabrikam.test", SEED_PASSWORD, scopes=["User.Read"]
    )

    assert result["error"] == "invalid_grant"
    assert 50034 in result["error_codes"]


def test_device_code_cannot_be_approved_by_a_user_of_another_tenant(fresh_sandbox):
    app = msal.PublicClientApplication(
        SEED_CLIENT_ID, authority=f"{fresh_sandbox.url}/contoso.test", instance_discovery=False
    )
    flow = app.initiate_device_flow(scopes=["User.Read"])

    resp = fresh_sandbox.http.post(
        f"{fresh_sandbox.url}/_sandbox/devicecode/approve",
        json={"userCode": flow["user_code"], "user": "ceo@fabrikam.test"},
    )

    assert resp.status_code == 400


def test_fabrikam_graph_token_verifies_as_fabrikam_only(fresh_sandbox):
    app = msal.ConfidentialClientApplication(
        FABRIKAM_CLIENT_ID,
        client_credential=FABRIKAM_CLIENT_SECRET,
        authority=f"{fresh_sandbox.url}/{FABRIKAM_TENANT_ID}",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])

    assert "access_token" in result, result
    # The refresh token of a contoso user is useless at fabrikam's token endpoint, too.
    contoso = msal.PublicClientApplication(
        SEED_CLIENT_ID, authority=f"{fresh_sandbox.url}/contoso.test", instance_discovery=False
    )
    rt = contoso.acquire_token_by_username_password(
        "anna@contoso.test", SEED_PASSWORD, scopes=["User.Read"]
    )["refresh_token"]
    at_fabrikam = fresh_sandbox.http.post(
        f"{fresh_sandbox.url}/{FABRIKAM_TENANT_ID}/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "client_id": SEED_CLIENT_ID, "refresh_token": rt},
    ).json()
    assert at_fabrikam["error"] == "unauthorized_client"


# --- the directory (pure logic over the default seed) -------------------------------------
@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory(load())


def test_lookups_are_case_insensitive(directory):
    assert directory.user("CONTOSO.TEST", "Anna@Contoso.Test").upn == "anna@contoso.test"
    assert directory.mailbox(SEED_TENANT_ID, "Administratie@contoso.test").kind == "shared"
    assert directory.app(SEED_CLIENT_ID.upper()).tenant_id == SEED_TENANT_ID


def test_cross_tenant_lookups_find_nothing(directory):
    assert directory.user(FABRIKAM_TENANT_ID, "anna@contoso.test") is None
    assert directory.mailbox("fabrikam.test", "administratie@contoso.test") is None
    assert directory.rights("fabrikam.test", "svc-docuflow@contoso.test", "anna@contoso.test") == (
        frozenset()
    )


def test_every_user_is_a_mailbox_and_grants_match_the_seed(directory):
    addresses = {m.address for m in directory.mailboxes("contoso.test")}
    assert addresses == {
        "svc-docuflow@contoso.test",
        "anna@contoso.test",
        "bram@contoso.test",
        "carla@contoso.test",
        "administratie@contoso.test",
        "svc-sendas@contoso.test",
    }
    svc = "svc-docuflow@contoso.test"
    assert directory.rights("contoso.test", svc, "administratie@contoso.test") == {
        "FullAccess",
        "SendAs",
    }
    assert directory.rights("contoso.test", svc, "bram@contoso.test") == frozenset()
    assert directory.rights("contoso.test", "anna@contoso.test", "administratie@contoso.test") == {
        "SendOnBehalf"
    }
    assert directory.user("contoso.test", "carla@contoso.test").mfa_required
    # Send As without Full Access: the account that shows what sending through a mailbox's URL
    # needs besides Send As.
    assert directory.rights(
        "contoso.test", "svc-sendas@contoso.test", "administratie@contoso.test"
    ) == {"SendAs"}


def test_verify_refuses_a_token_of_another_tenant_and_resource(directory, tmp_path):
    tokens = Tokens(directory, Database(), tmp_path, "https://127.0.0.1:1", {})
    token, _ = tokens.access_token(
        tenant_id=FABRIKAM_TENANT_ID,
        client_id=FABRIKAM_CLIENT_ID,
        resource=GRAPH_RESOURCE,
        roles=["Mail.Send"],
    )
    header = f"Bearer {token}"

    principal = tokens.verify(header, GRAPH_RESOURCE, tenant="fabrikam.test")
    assert (principal.tenant_id, principal.kind) == (FABRIKAM_TENANT_ID, "app")
    assert principal.roles == {"Mail.Send"}
    with pytest.raises(TokenError) as wrong_tenant:
        tokens.verify(header, GRAPH_RESOURCE, tenant="contoso.test")
    assert wrong_tenant.value.code == "wrong_tenant"
    with pytest.raises(TokenError) as wrong_audience:
        tokens.verify(header, VAULT_RESOURCE)
    assert wrong_audience.value.code == "wrong_audience"
    with pytest.raises(TokenError) as missing:
        tokens.verify(None, GRAPH_RESOURCE)
    assert missing.value.code == "missing"
    with pytest.raises(TokenError) as invalid:
        tokens.verify(header[:-4] + "AAAA", GRAPH_RESOURCE)
    assert invalid.value.code == "invalid"
    tokens.expire_all()
    with pytest.raises(TokenError) as expired:
        tokens.verify(header, GRAPH_RESOURCE)
    assert expired.value.code == "expired"
