"""Key Vault soft delete in the sandbox: deleted secrets, recover, purge, and the 409 on reuse,
driven by azure-keyvault-secrets 4.12 over real HTTPS; and our writers recovering on that 409."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from admin.vault import RecoveringSecretClient
from shared.identity.secrets import SecretStore, is_deleted_but_recoverable
from tests.sandbox.test_keyvault import secret_client


@pytest.fixture
def vault(fresh_sandbox):
    return secret_client(fresh_sandbox)


def _delete(vault, name: str):
    poller = vault.begin_delete_secret(name, _polling_interval=0.05)
    poller.wait(timeout=10)
    assert poller.done()
    return poller.result()


def test_deleting_keeps_the_secret_recoverable_for_90_days(vault, fresh_sandbox):
    vault.set_secret("connection-x", "v1")

    deleted = _delete(vault, "connection-x")

    assert deleted.recovery_id == f"{fresh_sandbox.url}/deletedsecrets/connection-x"
    assert deleted.scheduled_purge_date is not None and deleted.deleted_date is not None
    assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 90
    assert deleted.properties.recovery_level == "Recoverable+Purgeable"
    assert deleted.properties.recoverable_days == 90
    with pytest.raises(ResourceNotFoundError):
        vault.get_secret("connection-x")
    assert vault.get_deleted_secret("connection-x").name == "connection-x"
    assert [d.name for d in vault.list_deleted_secrets()] == ["connection-x"]
    assert [p.name for p in vault.list_properties_of_secrets()] == []


def test_setting_a_deleted_name_is_409_object_is_deleted_but_recoverable(vault):
    vault.set_secret("connection-x", "v1")
    _delete(vault, "connection-x")

    with pytest.raises(HttpResponseError) as caught:
        vault.set_secret("connection-x", "v2")

    assert caught.value.status_code == 409
    assert "deleted but recoverable state" in str(caught.value)
    assert is_deleted_but_recoverable(caught.value)


def test_recover_brings_back_every_version_and_purge_frees_the_name(vault):
    vault.set_secret("a", "v1")
    vault.set_secret("a", "v2")
    vault.set_secret("b", "v1")
    _delete(vault, "a")
    _delete(vault, "b")

    vault.begin_recover_deleted_secret("a", _polling_interval=0.05).wait(timeout=10)
    vault.purge_deleted_secret("b")

    assert vault.get_secret("a").value == "v2"
    assert len(list(vault.list_properties_of_secret_versions("a"))) == 2
    assert list(vault.list_deleted_secrets()) == []
    assert vault.set_secret("b", "fresh").value == "fresh"
    with pytest.raises(ResourceNotFoundError):
        vault.get_deleted_secret("a")


def test_the_secret_store_recovers_a_deleted_name_and_writes_the_new_value(vault):
    vault.set_secret("connection-x-token-cache", "old")
    _delete(vault, "connection-x-token-cache")
    store = SecretStore(lambda: vault, ttl=0)

    store.set("connection-x-token-cache", "new")

    assert vault.get_secret("connection-x-token-cache").value == "new"
    assert list(vault.list_deleted_secrets()) == []


def test_the_admin_clients_set_secret_recovers_a_removed_connection(vault):
    vault.set_secret("connection-y", "old")
    _delete(vault, "connection-y")

    RecoveringSecretClient(vault).set_secret("connection-y", "again")

    assert vault.get_secret("connection-y").value == "again"


def test_saving_a_removed_connection_again_recovers_its_secrets(vault, fresh_sandbox):
    from shared.identity.connections import save_connection
    from shared.identity.secret_names import connection_secret, credential_secret
    from tests.functional.conftest import sandbox_connection

    doc = sandbox_connection(fresh_sandbox.url)
    save_connection(vault, doc, "first-secret")
    _delete(vault, connection_secret("contoso.test"))
    _delete(vault, credential_secret("contoso.test"))

    save_connection(vault, doc, "second-secret")

    assert vault.get_secret(credential_secret("contoso.test")).value == "second-secret"
    assert list(vault.list_deleted_secrets()) == []
