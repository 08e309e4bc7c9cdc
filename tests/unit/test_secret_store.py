"""SecretStore and the token cache without a vault: per-name fetches that serve the last good
value, a failed token-cache write-back that keeps the token and retries, and which Key Vault
conflicts mean "soft-deleted". The Key Vault client is a stand-in for Azure's SecretClient;
tests/functional/test_secret_store_and_app_tokens.py has the ones against the sandbox."""

from __future__ import annotations

import json
import threading

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.identity.secrets import SecretStore
from shared.identity.token_cache import KeyVaultTokenCache, decode_envelope

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


def _conflict(status: int, code: str | None) -> HttpResponseError:
    error = HttpResponseError("Conflict")
    error.status_code = status
    if code:
        error.error = type("Error", (), {"code": code, "innererror": {}})()
    return error


@pytest.mark.parametrize(
    ("error", "recoverable"),
    [
        (_conflict(409, "ObjectIsDeletedButRecoverable"), True),
        (_conflict(409, "Conflict"), False),  # another kind of conflict: no recovery
        (_conflict(409, None), False),
        (_conflict(404, "ObjectIsDeletedButRecoverable"), False),  # only a 409 means it
        (ValueError("x"), False),
    ],
    ids=["deleted-but-recoverable", "other-409", "bare-409", "404", "not-http"],
)
def test_only_a_deleted_but_recoverable_conflict_triggers_a_recovery(error, recoverable):
    from shared.identity.secrets import is_deleted_but_recoverable

    assert is_deleted_but_recoverable(error) is recoverable
