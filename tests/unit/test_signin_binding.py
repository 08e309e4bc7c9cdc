"""Finding 11: a user sign-in is bound to the account's tenant and object id, not its UPN."""

from __future__ import annotations

import json

import pytest

from shared.identity.code_redemption import signed_in_identity
from shared.identity.connections import parse_connection
from shared.identity.signin import SignInError
from shared.identity.token_cache import decode_envelope, encode_envelope

TENANT = "8f3c1a52-0000-4000-8000-00000000c0de"
CONNECTION = parse_connection(
    {
        "name": "users.test",
        "mode": "user",
        "tenantId": TENANT,
        "clientId": "c",
        "credential": {"type": "client_secret"},
    }
)


def test_the_identity_is_tenant_and_object_id():
    claims = {"tid": TENANT, "oid": "o-1", "preferred_username": "anna@contoso.test"}
    assert signed_in_identity(CONNECTION, claims) == (TENANT, "o-1")


@pytest.mark.parametrize(
    "claims",
    [
        {"preferred_username": "anna@contoso.test"},  # what the old binding trusted alone
        {"tid": TENANT, "preferred_username": "anna@contoso.test"},
        {"tid": "2b7e9d41-0000-4000-8000-0000000fab01", "oid": "o-2"},  # another directory
    ],
    ids=["upn only", "no oid", "other tenant"],
)
def test_a_sign_in_without_tid_and_oid_or_from_another_tenant_is_refused(claims):
    with pytest.raises(SignInError) as caught:
        signed_in_identity(CONNECTION, claims)
    assert caught.value.status == 403


def test_the_stored_sign_in_carries_its_identity_and_keeps_the_upn_for_display():
    value = encode_envelope("{}", account="anna@contoso.test", identity=(TENANT, "o-1"))
    _, state = decode_envelope(value)
    assert state.identity == (TENANT, "o-1")
    assert state.account == "anna@contoso.test"
    assert json.loads(value)["oid"] == "o-1"
