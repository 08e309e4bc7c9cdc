"""Secret namespaces: valid connection names, one prefix per kind, no collisions (pure)."""

from __future__ import annotations

import re

import pytest

from shared.identity import secret_names as names

KEY_VAULT_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
KINDS = (
    names.connection_secret,
    names.credential_secret,
    names.signing_key_secret,
    names.token_cache_secret,
)


@pytest.mark.parametrize(
    "name", ["contoso.test", "a", "0", "x" * 63, "docu-flow.example.com", "a.-b", "a-.b"]
)
def test_valid_names(name):
    assert names.valid_connection_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Contoso.test",
        "-contoso",
        ".contoso",
        "x" * 64,
        "x" * 200,
        "a_b",
        "a b",
        "a/b",
        "contoso\n",
        "contoso.test-client-secret",
        "contoso.cb.signing.key",
        "contoso.test-token-cache",
        "contoso.test.password",
    ],
)
def test_invalid_and_reserved_names(name):
    assert not names.valid_connection_name(name)


def test_every_kind_has_its_own_prefix_and_names_fit_key_vault():
    for name in ("contoso.test", "x" * 63, "a-b.c-d"):
        made = [kind(name) for kind in KINDS]
        made.append(names.user_cache_secret(name, "anna.de.vries+tag@contoso.test"))
        made.append(names.user_cache_secret(name, "y" * 300 + "@z.test"))
        assert all(KEY_VAULT_NAME.match(n) for n in made), made
        assert len({n.split("-", 1)[0] for n in made[:4]}) == 4


def test_names_that_share_a_slug_or_a_long_prefix_never_share_a_secret():
    similar = ["a.b", "a-b", "a.-b", "a-.b", "x" * 62 + "1", "x" * 62 + "2", "x" * 63]
    for kind in KINDS:
        assert len({kind(n) for n in similar}) == len(similar)
    assert len({names.user_cache_prefix(n) for n in similar}) == len(similar)


def test_no_name_reaches_another_connections_secret_of_any_kind():
    # The old layout let `contoso.test-client-secret` name contoso.test's credential and
    # `contoso.cb.signing.key` overwrite contoso.cb's signing key.
    secrets_of_contoso = {kind("contoso.cb") for kind in KINDS}
    for attacker in ("contoso.cb.signing.key", "contoso.cb-signing-key", "contoso.cb.x"):
        if names.valid_connection_name(attacker):
            assert not ({kind(attacker) for kind in KINDS} & secrets_of_contoso)


def test_one_connections_user_caches_are_not_under_another_connections_prefix():
    # Old layout: removing `contoso` deleted every `usercache-contoso*`, also `contoso.user`'s.
    theirs = names.user_cache_secret("contoso.user", "anna@contoso.test")
    assert not theirs.startswith(names.user_cache_prefix("contoso"))


def test_users_are_told_apart_exactly_but_case_insensitively():
    assert names.user_cache_secret("c", "a.b@x.test") != names.user_cache_secret("c", "a-b@x.test")
    assert names.user_cache_secret("c", "Anna@X.test") == names.user_cache_secret(
        "c", "anna@x.test"
    )
