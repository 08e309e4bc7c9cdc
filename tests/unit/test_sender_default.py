"""Which mailbox sends when `from` is left out: the signed-in user in `user` mode, else 400."""

import json

import pytest

from shared.errors import ValidationFailed
from shared.identity.connections import parse_connection
from shared.models import DraftRequest, SendRequest
from shared.operations.compose import default_sender
from shared.operations.context import OperationContext


def context(mode: str) -> OperationContext:
    credential = {"type": "client_secret"}
    if mode == "service_account":
        credential = {"type": "token_cache"}
    document = {
        "name": "c.test",
        "mode": mode,
        "tenantId": "contoso.test",
        "clientId": "x",
        "allowedSenders": ["*@contoso.test"],
        "credential": credential,
    }
    connection = parse_connection(json.dumps(document))
    return OperationContext(operation_id="op", connection=connection, graph=None, settings=None)


def request(kind=SendRequest, **fields) -> SendRequest:
    return kind(connection="c.test", to=["x@example.test"], **fields)


def test_user_mode_sends_as_the_signed_in_user_when_from_is_left_out():
    req = request(user="anna@contoso.test")
    assert default_sender(req, context("user")) == "anna@contoso.test"
    assert req.from_ == "anna@contoso.test"


def test_user_mode_keeps_an_explicit_from_such_as_a_mailbox_the_user_has_rights_on():
    req = request(DraftRequest, from_="administratie@contoso.test", user="anna@contoso.test")
    assert default_sender(req, context("user")) == "administratie@contoso.test"


@pytest.mark.parametrize("mode", ["app", "service_account"])
def test_other_modes_need_from_even_with_a_user_and_say_so(mode):
    req = request(user="anna@contoso.test")
    with pytest.raises(ValidationFailed) as exc:
        default_sender(req, context(mode))
    assert exc.value.status == 400
    assert [d.field for d in exc.value.details] == ["from"]
    assert f"{mode} mode" in exc.value.message and req.from_ is None
