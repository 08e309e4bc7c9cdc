"""Token caches in Key Vault: names, the stored envelope, pruning, size, write-back rules."""

from __future__ import annotations

import json
import re

import pytest

from shared.errors import ValidationFailed
from shared.identity.connections import parse_connection
from shared.identity.secret_names import token_cache_secret as service_account_cache_name
from shared.identity.secret_names import user_cache_secret as user_cache_name
from shared.identity.secrets import SecretStore
from shared.identity.token_cache import (
    MAX_SECRET_BYTES,
    KeyVaultTokenCache,
    TokenCacheTooLarge,
    decode_envelope,
    encode_envelope,
    prune_access_tokens,
)

MSAL_CACHE = {
    "AccessToken": {"k1": {"secret": "at-secret", "credential_type": "AccessToken"}},
    "RefreshToken": {"k2": {"secret": "rt-secret", "credential_type": "RefreshToken"}},
    "Account": {"k3": {"username": "svc@contoso.test"}},
    "IdToken": {},
}
NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class MemoryVault:
    """A stand-in SecretClient (not ours: Azure's) that counts reads and writes."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reads = 0
        self.writes = 0

    def get_secret(self, name):
        from azure.core.exceptions import ResourceNotFoundError

        self.reads += 1
        if name not in self.values:
            raise ResourceNotFoundError("not found")
        return type("Secret", (), {"value": self.values[name]})()

    def set_secret(self, name, value, content_type=None, tags=None):
        self.writes += 1
        self.values[name] = value


def test_secret_names_use_only_the_key_vault_alphabet():
    names = [
        service_account_cache_name("documizers.com"),
        user_cache_name("documizers.com", "a.b+c@documizers.com"),
        user_cache_name("x" * 63, "y" * 200 + "@z.test"),
    ]

    assert all(NAME.match(n) for n in names)
    assert names[0].startswith("tokc-documizers-com-")


def test_users_whose_slugs_collide_get_different_secrets():
    assert user_cache_name("c", "a.b@x.test") != user_cache_name("c", "a-b@x.test")
    assert user_cache_name("c", "Anna@X.test") == user_cache_name("c", "anna@x.test")


def test_access_tokens_are_pruned_and_refresh_tokens_kept():
    pruned = json.loads(prune_access_tokens(json.dumps(MSAL_CACHE)))

    assert "AccessToken" not in pruned
    assert pruned["RefreshToken"] == MSAL_CACHE["RefreshToken"]


def test_the_envelope_records_the_account_and_when_it_was_saved():
    value = encode_envelope(json.dumps(MSAL_CACHE), account="svc@contoso.test", now=1000)
    serialized, state = decode_envelope(value)

    assert "at-secret" not in value
    assert state.account == "svc@contoso.test" and state.saved_at == 1000
    assert state.has_refresh_token
    assert state.days_left(now=1000 + 10 * 86400) == 80.0
    assert json.loads(serialized)["RefreshToken"]


def test_a_bare_msal_cache_is_read_too():
    _, state = decode_envelope(json.dumps(MSAL_CACHE))

    assert state.account == "svc@contoso.test" and state.saved_at is None
    assert state.days_left() is None


def test_a_cache_over_25_kb_is_refused_before_it_reaches_key_vault():
    big = dict(MSAL_CACHE, Account={f"k{i}": {"username": "u" * 100} for i in range(300)})

    with pytest.raises(TokenCacheTooLarge, match=str(MAX_SECRET_BYTES)):
        encode_envelope(json.dumps(big), account=None)


def test_the_cache_is_read_once_per_process_and_written_only_when_changed():
    vault = MemoryVault()
    vault.values["tc"] = encode_envelope(json.dumps(MSAL_CACHE), account="svc@contoso.test")
    cache = KeyVaultTokenCache(SecretStore(lambda: vault, ttl=300), "tc")

    cache.load()
    cache.load()
    unchanged = cache.save_if_changed(account="svc@contoso.test")
    cache.cache.has_state_changed = True  # what MSAL sets after it added a token
    same_content = cache.save_if_changed(account="svc@contoso.test")

    assert vault.reads == 1
    assert (unchanged, same_content) == (False, False)
    assert vault.writes == 0


def test_a_forced_load_reports_whether_someone_else_stored_a_new_sign_in():
    vault = MemoryVault()
    vault.values["tc"] = encode_envelope(json.dumps(MSAL_CACHE), account="a@x.test", now=1)
    cache = KeyVaultTokenCache(SecretStore(lambda: vault, ttl=300), "tc")
    cache.load()

    same = cache.load(force=True)
    vault.values["tc"] = encode_envelope(json.dumps(MSAL_CACHE), account="a@x.test", now=2)
    newer = cache.load(force=True)

    assert (same, newer) == (False, True)
    assert cache.state().saved_at == 2


@pytest.mark.parametrize(
    ("mode", "credential", "ok"),
    [
        ("service_account", "token_cache", True),
        ("service_account", "client_secret", False),
        ("user", "client_secret", True),
        ("user", "token_cache", False),
        ("app", "certificate", True),
        ("app", "password", False),
    ],
)
def test_each_mode_accepts_only_its_credential_types(mode, credential, ok):
    doc = {
        "name": "c",
        "mode": mode,
        "tenantId": "t",
        "clientId": "i",
        "credential": {"type": credential},
    }
    if ok:
        assert parse_connection(doc).credential.type == credential
    else:
        with pytest.raises(ValidationFailed):
            parse_connection(doc)


def test_the_password_option_needs_the_account():
    doc = {
        "name": "c",
        "mode": "service_account",
        "tenantId": "t",
        "clientId": "i",
        "credential": {"type": "password"},
    }
    with pytest.raises(ValidationFailed):
        parse_connection(doc)
    assert parse_connection({**doc, "account": "svc@x.test"}).account == "svc@x.test"


def test_delegated_scopes_follow_the_graph_scope_of_national_clouds():
    doc = {
        "name": "c",
        "mode": "user",
        "tenantId": "t",
        "clientId": "i",
        "graphScope": "https://graph.microsoft.us/.default",
        "credential": {"type": "client_secret"},
    }
    service = {**doc, "mode": "service_account", "credential": {"type": "token_cache"}}

    assert "https://graph.microsoft.us/Mail.Send" in parse_connection(doc).scopes()
    assert "https://graph.microsoft.us/Mail.Send.Shared" in parse_connection(service).scopes()
    named = {**doc, "delegatedScopes": ["Mail.Send.Shared", "Mail.ReadWrite.Shared"]}
    assert parse_connection(named).scopes() == [
        "https://graph.microsoft.us/Mail.Send.Shared",
        "https://graph.microsoft.us/Mail.ReadWrite.Shared",
    ]
