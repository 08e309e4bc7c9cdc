"""Key Vault secrets API, driven by azure-identity + azure-keyvault-secrets over real HTTPS."""

from __future__ import annotations

import msal
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.keyvault.secrets import SecretClient

from devhost.bootstrap import sandbox_secret_client
from tests.conftest import (
    FABRIKAM_CLIENT_ID,
    FABRIKAM_CLIENT_SECRET,
    FABRIKAM_TENANT_ID,
    SEED_CLIENT_ID,
    SEED_CLIENT_SECRET,
    SEED_TENANT_ID,
)


def secret_client(sandbox, tenant=SEED_TENANT_ID, client=SEED_CLIENT_ID, secret=SEED_CLIENT_SECRET):
    return sandbox_secret_client(
        sandbox.url, tenant_id=tenant, client_id=client, client_secret=secret, ca_file=sandbox.ca
    )


@pytest.fixture
def vault(fresh_sandbox) -> SecretClient:
    return secret_client(fresh_sandbox)


def test_set_get_version_list_and_delete(vault, fresh_sandbox):
    first = vault.set_secret("connection-documizers", "v1", content_type="application/json")
    second = vault.set_secret("connection-documizers", "v2", tags={"kind": "connection"})
    vault.set_secret("other-secret", "x")

    assert first.properties.version != second.properties.version
    assert (
        first.id == f"{fresh_sandbox.url}/secrets/connection-documizers/{first.properties.version}"
    )
    assert vault.get_secret("connection-documizers").value == "v2"
    assert vault.get_secret("connection-documizers", first.properties.version).value == "v1"
    assert vault.get_secret("connection-documizers").properties.tags == {"kind": "connection"}
    assert sorted(p.name for p in vault.list_properties_of_secrets()) == [
        "connection-documizers",
        "other-secret",
    ]
    versions = list(vault.list_properties_of_secret_versions("connection-documizers"))
    assert {v.version for v in versions} == {first.properties.version, second.properties.version}

    vault.begin_delete_secret("connection-documizers").wait()

    with pytest.raises(ResourceNotFoundError) as err:
        vault.get_secret("connection-documizers")
    assert err.value.error.code == "SecretNotFound"


def test_listing_pages_through_more_than_one_page(vault):
    for i in range(30):
        vault.set_secret(f"s-{i:02d}", str(i))

    names = [p.name for p in vault.list_properties_of_secrets()]

    assert names == [f"s-{i:02d}" for i in range(30)]


def test_26_kb_value_is_refused_with_key_vaults_error(vault):
    with pytest.raises(HttpResponseError) as err:
        vault.set_secret("too-big", "x" * 26 * 1024)

    assert err.value.status_code == 400
    assert err.value.error.code == "BadParameter"
    assert "maximum permitted length" in err.value.error.message


def test_25_kb_value_is_accepted(vault):
    vault.set_secret("just-fits", "x" * 25600)

    assert len(vault.get_secret("just-fits").value) == 25600


def test_bad_secret_name_is_refused(vault):
    with pytest.raises(HttpResponseError) as err:
        vault.set_secret("not_allowed", "x")

    assert err.value.status_code == 400


def test_first_request_gets_the_bearer_challenge(fresh_sandbox):
    resp = fresh_sandbox.http.get(f"{fresh_sandbox.url}/secrets/anything?api-version=7.6")

    assert resp.status_code == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert f'authorization="{fresh_sandbox.url}/{SEED_TENANT_ID}"' in challenge
    assert 'resource="https://vault.azure.net"' in challenge


def test_graph_token_is_refused_by_the_vault(fresh_sandbox):
    app = msal.ConfidentialClientApplication(
        SEED_CLIENT_ID,
        client_credential=SEED_CLIENT_SECRET,
        authority=f"{fresh_sandbox.url}/{SEED_TENANT_ID}",
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])["access_token"]

    resp = fresh_sandbox.http.get(
        f"{fresh_sandbox.url}/secrets?api-version=7.6", headers={"Authorization": f"Bearer {token}"}
    )

    assert resp.status_code == 401
    assert "audience" in resp.json()["error"]["message"]


def test_fabrikam_credential_is_refused_the_contoso_vault(fresh_sandbox):
    vault = secret_client(
        fresh_sandbox, FABRIKAM_TENANT_ID, FABRIKAM_CLIENT_ID, FABRIKAM_CLIENT_SECRET
    )

    # The challenge names contoso's tenant; azure-identity will not fetch a token there.
    with pytest.raises(ClientAuthenticationError):
        vault.set_secret("stolen", "x")


def test_fabrikam_vault_token_is_forbidden(fresh_sandbox):
    app = msal.ConfidentialClientApplication(
        FABRIKAM_CLIENT_ID,
        client_credential=FABRIKAM_CLIENT_SECRET,
        authority=f"{fresh_sandbox.url}/{FABRIKAM_TENANT_ID}",
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(["https://vault.azure.net/.default"])["access_token"]

    resp = fresh_sandbox.http.put(
        f"{fresh_sandbox.url}/secrets/stolen?api-version=7.6",
        json={"value": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "Forbidden"


def test_reset_wipes_the_secrets(vault, fresh_sandbox):
    vault.set_secret("gone-after-reset", "x")

    fresh_sandbox.reset()

    with pytest.raises(ResourceNotFoundError):
        vault.get_secret("gone-after-reset")


def test_requests_are_logged_with_tenant_and_app(vault, fresh_sandbox):
    seq = fresh_sandbox.control("GET", "requests?limit=1").json()["lastSeq"]

    vault.set_secret("logged", "x")

    log = fresh_sandbox.control("GET", f"requests?since={seq}").json()["value"]
    puts = [e for e in log if e["method"] == "PUT" and e["path"] == "/secrets/logged"]
    # azure-keyvault caches the challenge per vault URL, so the 401 shows only on first contact.
    assert puts and puts[-1]["status"] == 200
    assert puts[-1]["tenant"] == "contoso.test"
    assert puts[-1]["app"] == SEED_CLIENT_ID
