"""SecretStore and AppTokenProvider against the sandbox's Key Vault and Entra ID, counted in the
sandbox's request log: bounded Key Vault retries, one token request for N parallel callers,
and app tokens served from MSAL's cache."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.errors import SecretsUnavailable
from shared.identity.app_tokens import AppTokenProvider
from shared.identity.connections import ConnectionRegistry
from shared.identity.secrets import KEY_VAULT_RETRY_TOTAL, SecretStore, make_secret_client
from shared.settings import Settings
from tests.conftest import SEED_CLIENT_ID, SEED_CLIENT_SECRET, SEED_TENANT_ID
from tests.functional.conftest import CONNECTION, Ops

pytestmark = pytest.mark.timeout(120)


def last_seq(ops: Ops) -> int:
    return ops.sandbox.control("GET", "requests", params={"limit": "1"}).json()["lastSeq"]


def logged_since(ops: Ops, seq: int) -> list[dict]:
    """The sandbox's request log after `seq` (the log keeps the newest entries only)."""
    params = {"since": str(seq), "limit": "10000"}
    return ops.sandbox.control("GET", "requests", params=params).json()["value"]


def token_requests(ops: Ops, since: int) -> int:
    return sum(1 for e in logged_since(ops, since) if e["path"].endswith("/oauth2/v2.0/token"))


def test_a_failing_key_vault_is_asked_once_plus_two_retries_then_secrets_unavailable(ops):
    settings = Settings(
        key_vault_url=ops.sandbox.url,
        key_vault_credential="client_secret",
        azure_tenant_id=SEED_TENANT_ID,
        azure_client_id=SEED_CLIENT_ID,
        azure_client_secret=SEED_CLIENT_SECRET,
        azure_authority_host=ops.sandbox.url,
        authority_instance_discovery=False,
        key_vault_verify_challenge_resource=False,
    )
    name = f"down-{uuid.uuid4().hex[:8]}"
    ops.sandbox.add_fault(method="GET", path=f"/secrets/{name}/?$", action="status", status=503)
    store = SecretStore(lambda: make_secret_client(settings), ttl=300)
    before = last_seq(ops)

    with pytest.raises(SecretsUnavailable):
        store.get(name)

    asked = [e for e in logged_since(ops, before) if f"/secrets/{name}" in e["path"]]
    assert all(e["fault"] == "status" for e in asked), asked
    assert len(asked) == 1 + KEY_VAULT_RETRY_TOTAL


def test_parallel_callers_on_a_cold_connection_make_one_token_request(ops):
    provider = AppTokenProvider(ConnectionRegistry(ops.runtime.secrets, ops.settings))
    connection = ops.runtime.connections.get(CONNECTION)
    before = last_seq(ops)

    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda _: provider.token(connection), range(8)))

    assert len(set(tokens)) == 1 and tokens[0]
    assert token_requests(ops, before) == 1


def test_an_app_token_is_served_from_the_cache_until_a_forced_refresh(ops):
    provider = AppTokenProvider(ConnectionRegistry(ops.runtime.secrets, ops.settings))
    connection = ops.runtime.connections.get(CONNECTION)
    before = last_seq(ops)

    first = provider.token(connection)
    again = provider.token(connection)
    assert again == first
    assert token_requests(ops, before) == 1

    provider.token(connection, force_refresh=True)
    assert token_requests(ops, before) == 2
