"""Release-review fixes in secrets and tokens: bounded Key Vault calls, per-name fetches that
serve the last good value, a failed token-cache write-back that keeps the token and retries,
one token lock per connection. The Key Vault client is a stand-in for Azure's SecretClient."""

from __future__ import annotations

import json
import threading

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.identity.connections import parse_connection
from shared.identity.secrets import SecretStore, make_secret_client
from shared.identity.token_cache import KeyVaultTokenCache, decode_envelope
from shared.identity.tokens import AppTokenProvider
from shared.settings import AZURE_CLIENT_SECRET, Settings

WAIT = 10.0  # every wait in these tests is bounded


class SlowVault:
    """A stand-in SecretClient: `slow` names block until released; writes can be made to fail."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {"slow": "s1", "fast": "f1"}
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail_writes = 0
        self.writes: list[str] = []

    def get_secret(self, name):
        if name == "slow":
            self.entered.set()
            assert self.release.wait(WAIT)
        if name not in self.values:
            raise ResourceNotFoundError("not found")
        return type("Secret", (), {"value": self.values[name]})()

    def set_secret(self, name, value, content_type=None):
        if self.fail_writes:
            self.fail_writes -= 1
            raise HttpResponseError("429 Too Many Requests")
        self.writes.append(name)
        self.values[name] = value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _in_thread(fn):
    result: dict = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_the_key_vault_client_has_short_timeouts_and_two_retries(monkeypatch):
    monkeypatch.setenv(AZURE_CLIENT_SECRET, "not-a-real-secret")
    settings = Settings(
        key_vault_url="https://127.0.0.1:1",
        key_vault_credential="client_secret",
        azure_tenant_id="t",
        azure_client_id="c",
    )
    client = make_secret_client(settings)
    pipeline = client._client._client._pipeline
    retries = [
        getattr(p, "_policy", p).total_retries
        for p in pipeline._impl_policies
        if hasattr(getattr(p, "_policy", p), "total_retries")
    ]

    assert pipeline._transport.connection_config.timeout == 5.0
    assert pipeline._transport.connection_config.read_timeout == 10.0
    assert retries == [2]


def test_a_slow_secret_does_not_hold_up_reading_another():
    vault = SlowVault()
    store = SecretStore(lambda: vault, ttl=300)
    slow, slow_result = _in_thread(lambda: store.get("slow"))
    assert vault.entered.wait(WAIT)

    fast, fast_result = _in_thread(lambda: store.get("fast"))
    fast.join(WAIT)
    finished_while_slow_blocked = not fast.is_alive()
    vault.release.set()
    slow.join(WAIT)

    assert finished_while_slow_blocked
    assert fast_result == {"value": "f1"}
    assert slow_result == {"value": "s1"}


def test_while_one_thread_refreshes_a_secret_others_get_the_last_good_value():
    vault = SlowVault()
    vault.release.set()
    clock = Clock()
    store = SecretStore(lambda: vault, ttl=60, clock=clock)
    assert store.get("slow") == "s1"
    vault.release.clear()
    vault.entered.clear()
    vault.values["slow"] = "s2"
    clock.now = 120  # past the TTL

    refresher, refreshed = _in_thread(lambda: store.get("slow"))
    assert vault.entered.wait(WAIT)
    reader, read = _in_thread(lambda: store.get("slow"))
    reader.join(WAIT)
    reader_done = not reader.is_alive()
    vault.release.set()
    refresher.join(WAIT)

    assert reader_done and read == {"value": "s1"}
    assert refreshed == {"value": "s2"}


MSAL_CACHE = {
    "RefreshToken": {"k2": {"secret": "rt-1", "credential_type": "RefreshToken"}},
    "Account": {"k3": {"username": "svc@contoso.test"}},
}


def _changed_cache(vault: SlowVault) -> KeyVaultTokenCache:
    store = SecretStore(lambda: vault, ttl=300)
    cache = KeyVaultTokenCache(store, "connection-x-token-cache")
    cache.load()
    rotated = dict(MSAL_CACHE, RefreshToken={"k2": {"secret": "rt-2"}})
    cache.cache.deserialize(json.dumps(rotated))
    cache.cache.has_state_changed = True  # what MSAL sets when a refresh rotates the token
    return cache


def test_a_failed_write_back_keeps_the_change_and_writes_it_on_the_next_call(caplog):
    vault = SlowVault()
    vault.fail_writes = 1
    cache = _changed_cache(vault)

    first = cache.save_if_changed(account="svc@contoso.test")
    second = cache.save_if_changed(account="svc@contoso.test")

    assert first is False  # no exception: the caller keeps its token
    assert second is True
    assert vault.writes == ["connection-x-token-cache"]
    stored, _ = decode_envelope(vault.values["connection-x-token-cache"])
    assert json.loads(stored)["RefreshToken"]["k2"]["secret"] == "rt-2"
    assert not cache.cache.has_state_changed
    assert "rt-2" not in caplog.text and "not written back" in caplog.text


def test_app_tokens_are_serialised_per_connection_not_per_process():
    provider = AppTokenProvider(registry=None)  # the locks need no registry
    base = {
        "mode": "app",
        "tenantId": "t",
        "clientId": "c",
        "credential": {"type": "client_secret"},
    }
    a = parse_connection({**base, "name": "a.test"})
    b = parse_connection({**base, "name": "b.test"})

    lock_a = provider._acquire_lock(a)
    with lock_a:
        other_free = provider._acquire_lock(b).acquire(timeout=WAIT)
    provider._acquire_lock(b).release()

    assert other_free
    assert provider._acquire_lock(a) is lock_a


@pytest.mark.parametrize("status", [409])
def test_only_a_deleted_but_recoverable_conflict_triggers_a_recovery(status):
    from shared.identity.secrets import is_deleted_but_recoverable

    plain = HttpResponseError("Conflict")
    plain.status_code = status

    assert not is_deleted_but_recoverable(plain)
    assert not is_deleted_but_recoverable(ValueError("x"))
