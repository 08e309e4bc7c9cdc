"""Entra ID stand-in, driven by MSAL for Python over real HTTPS: every grant and its errors."""

from __future__ import annotations

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.certificates import self_signed_certificate
from tests.conftest import (
    SEED_CLIENT_ID,
    SEED_CLIENT_SECRET,
    SEED_PASSWORD,
    SEED_TENANT,
    SEED_TENANT_ID,
)

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
DELEGATED = ["https://graph.microsoft.com/Mail.Send", "https://graph.microsoft.com/Mail.ReadWrite"]


@pytest.fixture(autouse=True)
def _no_user_realm_discovery():
    """MSAL's ROPC asks https://<host without port>/common/userrealm first; for a sandbox on
    another port that is a refused connection, so mark the host as having no realm discovery."""
    known = msal.authority.Authority._domains_without_user_realm_discovery
    added = {"127.0.0.1", "localhost"} - known
    known.update(added)
    yield
    known.difference_update(added)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def confidential(
    sandbox, secret: str = SEED_CLIENT_SECRET, **kw
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        SEED_CLIENT_ID,
        client_credential=secret,
        authority=f"{sandbox.url}/{SEED_TENANT}",
        instance_discovery=False,
        **kw,
    )


def public(sandbox, tenant: str = SEED_TENANT) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        SEED_CLIENT_ID, authority=f"{sandbox.url}/{tenant}", instance_discovery=False
    )


def test_app_token_carries_roles_and_verifies_against_jwks(fresh_sandbox):
    result = confidential(fresh_sandbox).acquire_token_for_client(scopes=GRAPH_DEFAULT)

    assert "access_token" in result, result
    jwks = fresh_sandbox.http.get(f"{fresh_sandbox.url}/{SEED_TENANT}/discovery/v2.0/keys").json()
    kid = jwt.get_unverified_header(result["access_token"])["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid))
    claims = jwt.decode(
        result["access_token"], key, algorithms=["RS256"], audience="https://graph.microsoft.com"
    )
    assert claims["tid"] == SEED_TENANT_ID
    # A v1.0 token, as Entra issues for Graph whichever endpoint asked (access-tokens.md).
    assert claims["iss"] == f"https://sts.windows.net/{SEED_TENANT_ID}/"
    assert claims["ver"] == "1.0"
    assert sorted(claims["roles"]) == ["Mail.ReadWrite", "Mail.Send"]
    assert claims["appid"] == SEED_CLIENT_ID
    assert "scp" not in claims


def test_wrong_secret_is_invalid_client(fresh_sandbox):
    result = confidential(fresh_sandbox, "not-the-secret").acquire_token_for_client(GRAPH_DEFAULT)

    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]
    assert 7000215 in result["error_codes"]
    assert "not-the-secret" not in result["error_description"]


def test_client_credentials_without_default_scope_is_invalid_scope(fresh_sandbox):
    result = confidential(fresh_sandbox).acquire_token_for_client(
        ["https://graph.microsoft.com/Mail.Send"]
    )

    assert result["error"] == "invalid_scope"


def test_service_account_gets_delegated_token_by_password(fresh_sandbox):
    app = public(fresh_sandbox)
    result = app.acquire_token_by_username_password(
        "svc-docuflow@contoso.test", SEED_PASSWORD, scopes=DELEGATED
    )

    assert "access_token" in result, result
    claims = claims_of(result["access_token"])
    assert claims["upn"] == "svc-docuflow@contoso.test"
    assert claims["preferred_username"] == "svc-docuflow@contoso.test"
    assert set(claims["scp"].split()) == {"Mail.Send", "Mail.ReadWrite"}
    assert "roles" not in claims
    assert result.get("refresh_token")
    assert [a["username"] for a in app.get_accounts()] == ["svc-docuflow@contoso.test"]


def test_wrong_password_is_invalid_grant(fresh_sandbox):
    result = public(fresh_sandbox).acquire_token_by_username_password(
        "anna@contoso.test", "wrong", scopes=DELEGATED
    )

    assert result["error"] == "invalid_grant"
    assert "AADSTS50126" in result["error_description"]


def test_mfa_user_gets_interaction_required(fresh_sandbox):
    result = public(fresh_sandbox).acquire_token_by_username_password(
        "carla@contoso.test", SEED_PASSWORD, scopes=DELEGATED
    )

    assert result["error"] == "interaction_required"
    assert 50076 in result["error_codes"]


def test_silent_refresh_after_the_access_token_expires_rotates_the_refresh_token(fresh_sandbox):
    # MSAL treats a token with under 5 minutes left as expired, so 60 s makes it refresh.
    fresh_sandbox.control("POST", "tokens/settings", json={"accessTokenLifetimeSeconds": 60})
    app = public(fresh_sandbox)
    first = app.acquire_token_by_username_password(
        "svc-docuflow@contoso.test", SEED_PASSWORD, scopes=DELEGATED
    )
    fresh_sandbox.control("POST", "tokens/expire")
    seq = fresh_sandbox.control("GET", "requests?limit=1").json()["lastSeq"]

    account = app.get_accounts()[0]
    second = app.acquire_token_silent(DELEGATED, account=account)

    assert second and "access_token" in second, second
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    log = fresh_sandbox.control("GET", f"requests?since={seq}").json()["value"]
    token_calls = [e for e in log if e["path"].endswith("/oauth2/v2.0/token")]
    assert [e["status"] for e in token_calls] == [200]
    assert token_calls[0]["user"] == "svc-docuflow@contoso.test"


def test_revoked_user_refresh_fails_with_invalid_grant_700082(fresh_sandbox):
    app = public(fresh_sandbox)
    first = app.acquire_token_by_username_password(
        "svc-docuflow@contoso.test", SEED_PASSWORD, scopes=DELEGATED
    )
    fresh_sandbox.control(
        "POST", "users/svc-docuflow@contoso.test/revoke", json={"error": "invalid_grant"}
    )

    result = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=DELEGATED)

    assert result["error"] == "invalid_grant"
    assert "AADSTS700082" in result["error_description"]
    assert result["error_codes"] == [700082]


def test_revoke_with_code_50173_reports_a_revoked_grant(fresh_sandbox):
    app = public(fresh_sandbox)
    first = app.acquire_token_by_username_password(
        "anna@contoso.test", SEED_PASSWORD, scopes=DELEGATED
    )
    fresh_sandbox.control(
        "POST", "users/anna@contoso.test/revoke", json={"error": "invalid_grant", "code": 50173}
    )

    result = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=DELEGATED)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [50173]


def test_revoke_with_interaction_required_makes_refresh_ask_for_mfa(fresh_sandbox):
    app = public(fresh_sandbox)
    first = app.acquire_token_by_username_password(
        "anna@contoso.test", SEED_PASSWORD, scopes=DELEGATED
    )
    fresh_sandbox.control(
        "POST", "users/anna@contoso.test/revoke", json={"error": "interaction_required"}
    )

    result = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=DELEGATED)

    assert result["error"] == "interaction_required"
    assert "AADSTS50076" in result["error_description"]


def test_refresh_token_issued_after_a_revoke_works(fresh_sandbox):
    fresh_sandbox.control("POST", "users/anna@contoso.test/revoke", json={})
    app = public(fresh_sandbox)
    first = app.acquire_token_by_username_password(
        "anna@contoso.test", SEED_PASSWORD, scopes=DELEGATED
    )

    result = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=DELEGATED)

    assert "access_token" in result, result


def test_device_code_token_after_approval_through_the_control_api(fresh_sandbox):
    app = public(fresh_sandbox)
    flow = app.initiate_device_flow(scopes=DELEGATED)
    assert flow["user_code"] and flow["verification_uri"].startswith(fresh_sandbox.url)

    pending = requests.post(
        f"{fresh_sandbox.url}/{SEED_TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": SEED_CLIENT_ID,
            "device_code": flow["device_code"],
        },
        verify=fresh_sandbox.ca,
        timeout=10,
    ).json()
    assert pending["error"] == "authorization_pending"

    fresh_sandbox.control(
        "POST",
        "devicecode/approve",
        json={"userCode": flow["user_code"], "user": "svc-docuflow@contoso.test"},
    )
    result = app.acquire_token_by_device_flow(flow)

    assert "access_token" in result, result
    assert claims_of(result["access_token"])["upn"] == "svc-docuflow@contoso.test"
    assert app.get_accounts()[0]["username"] == "svc-docuflow@contoso.test"
    silent = app.acquire_token_silent(DELEGATED, account=app.get_accounts()[0])
    assert silent and silent["access_token"] == result["access_token"]


def test_expired_device_code_answers_expired_token(fresh_sandbox):
    fresh_sandbox.control("POST", "tokens/settings", json={"deviceCodeLifetimeSeconds": -1})
    flow = public(fresh_sandbox).initiate_device_flow(scopes=DELEGATED)

    result = requests.post(
        f"{fresh_sandbox.url}/{SEED_TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": SEED_CLIENT_ID,
            "device_code": flow["device_code"],
        },
        verify=fresh_sandbox.ca,
        timeout=10,
    ).json()

    assert result["error"] == "expired_token"


@pytest.mark.parametrize("style", ["thumbprint-RS256", "public-certificate-PS256"])
def test_certificate_assertion_gets_an_app_token(fresh_sandbox, style):
    key_pem, cert_pem = self_signed_certificate()
    registered = fresh_sandbox.control(
        "POST", f"apps/{SEED_CLIENT_ID}/certificates", json={"certificate": cert_pem}
    ).json()
    if style == "thumbprint-RS256":
        credential = {"private_key": key_pem, "thumbprint": registered["thumbprint"]}
    else:  # MSAL then signs with PS256 and sends x5t#S256 + x5c
        credential = {"private_key": key_pem, "public_certificate": cert_pem}
    app = confidential(fresh_sandbox, credential)

    result = app.acquire_token_for_client(GRAPH_DEFAULT)

    assert "access_token" in result, result
    assert claims_of(result["access_token"])["appidacr"] == "2"


def test_certificate_not_registered_is_invalid_client(fresh_sandbox):
    key_pem, cert_pem = self_signed_certificate()
    thumbprint = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA1()).hex()  # noqa: S303
    app = confidential(fresh_sandbox, {"private_key": key_pem, "thumbprint": thumbprint})

    result = app.acquire_token_for_client(GRAPH_DEFAULT)

    assert result["error"] == "invalid_client"
    assert 700027 in result["error_codes"]


def test_vault_scope_gives_a_vault_audience(fresh_sandbox):
    result = confidential(fresh_sandbox).acquire_token_for_client(
        ["https://vault.azure.net/.default"]
    )

    assert claims_of(result["access_token"])["aud"] == "https://vault.azure.net"


def test_unknown_tenant_is_refused_by_discovery(fresh_sandbox):
    resp = fresh_sandbox.http.get(
        f"{fresh_sandbox.url}/nowhere.test/v2.0/.well-known/openid-configuration"
    )

    assert resp.status_code == 400
    assert "AADSTS90002" in resp.json()["error_description"]


@pytest.mark.parametrize("grant", ["password", "authorization_code"])
def test_token_errors_echo_the_client_request_id(fresh_sandbox, grant):
    resp = fresh_sandbox.http.post(
        f"{fresh_sandbox.url}/{SEED_TENANT}/oauth2/v2.0/token",
        data={"grant_type": grant, "client_id": SEED_CLIENT_ID, "code": "nope"},
        headers={"client-request-id": "abc-123"},
    )

    body = resp.json()
    assert resp.status_code == 400
    assert body["correlation_id"] == "abc-123"
    assert resp.headers["client-request-id"] == "abc-123"
    assert resp.headers["request-id"]
