"""Connection secret names, sender allowlists and stored-connection checks."""

import pytest

from shared.errors import ValidationFailed
from shared.identity.connections import connection_secret_name, parse_connection, sender_allowed
from shared.identity.secret_names import credential_secret
from shared.settings import Settings

CONN = {
    "name": "contoso.test",
    "mode": "app",
    "tenantId": "t",
    "clientId": "c",
    "allowedSenders": ["*@contoso.test", "boss@other.nl"],
    "credential": {"type": "client_secret", "secretName": credential_secret("contoso.test")},
}


def test_secret_name_is_a_readable_slug_and_a_hash_of_the_exact_name():
    assert connection_secret_name("contoso.test").startswith("conn-contoso-test-")
    assert connection_secret_name("contoso.test") != connection_secret_name("contoso-test")


def test_sender_allowlist_exact_and_domain_wildcard():
    patterns = CONN["allowedSenders"]
    assert sender_allowed(patterns, "Administratie@Contoso.test")
    assert sender_allowed(patterns, "boss@other.nl")
    assert not sender_allowed(patterns, "someone@other.nl")
    assert not sender_allowed(patterns, "x@evilcontoso.test")
    assert not sender_allowed(patterns, "x@sub.contoso.test")
    assert not sender_allowed([], "a@contoso.test")


def test_parse_connection_and_fill_defaults_from_settings():
    conn = parse_connection(CONN).with_defaults(
        Settings(graph_base_url="https://g/v1.0", authority_host="https://login")
    )
    assert conn.graph_base_url == "https://g/v1.0" and conn.authority_host == "https://login"
    assert conn.sender_allowed("anna@contoso.test")


def test_bad_connection_names_each_problem():
    bad = {**CONN, "mode": "magic", "graphBaseUrl": "http://plain", "allowedSenders": ["nodomain"]}
    with pytest.raises(ValidationFailed) as exc:
        parse_connection(bad)
    assert {d.field for d in exc.value.details} == {"mode", "graphBaseUrl", "allowedSenders[0]"}


def test_credential_secret_name_must_be_a_key_vault_name():
    bad = {**CONN, "credential": {"type": "client_secret", "secretName": "has spaces"}}
    with pytest.raises(ValidationFailed):
        parse_connection(bad)


def test_a_connection_may_only_name_its_own_credential_secret():
    other = {**CONN, "credential": {"type": "client_secret", "secretName": credential_secret("x")}}
    with pytest.raises(ValidationFailed) as exc:
        parse_connection(other)
    assert [d.field for d in exc.value.details] == ["credential.secretName"]


SERVICE = {
    **CONN,
    "mode": "service_account",
    "credential": {"type": "token_cache"},
}
USER = {**CONN, "mode": "user"}


def test_each_delegated_mode_asks_for_the_least_its_operations_need():
    assert parse_connection(SERVICE).permissions() == ["Mail.Send.Shared", "Mail.ReadWrite.Shared"]
    assert parse_connection(USER).permissions() == ["Mail.Send", "Mail.ReadWrite"]
    # App-only connections ask for graphScope (.default) and no delegated scope, even when a
    # delegatedScopes list is stored (kept for a later change of mode).
    assert parse_connection(CONN).scopes() == []
    assert parse_connection({**CONN, "delegatedScopes": ["Mail.Send"]}).scopes() == []


def test_delegated_scopes_replace_the_default_and_accept_names_or_uris():
    named = parse_connection({**USER, "delegatedScopes": ["Mail.Send"]})
    assert named.scopes() == ["https://graph.microsoft.com/Mail.Send"]
    uri = "https://graph.microsoft.com/Mail.ReadWrite.Shared"
    assert parse_connection({**SERVICE, "delegatedScopes": [uri]}).scopes() == [uri]


@pytest.mark.parametrize(
    "doc, field",
    [
        ({**USER, "delegatedScopes": ["offline_access"]}, "delegatedScopes[0]"),
        ({**USER, "delegatedScopes": ["Mail.Send", "Files.ReadWrite.All"]}, "delegatedScopes[1]"),
        (
            {**USER, "delegatedScopes": ["http://graph.microsoft.com/Mail.Send"]},
            "delegatedScopes[0]",
        ),
        (
            {**USER, "delegatedScopes": ["https://graph.microsoft.com/.default"]},
            "delegatedScopes[0]",
        ),
    ],
)
def test_delegated_scopes_outside_the_mail_permissions_are_refused(doc, field):
    with pytest.raises(ValidationFailed) as refused:
        parse_connection(doc)
    assert field in [d.field for d in refused.value.details]
