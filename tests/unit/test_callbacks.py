"""FinalCallbacks: which session a callback goes through, and the receipt it records."""

from __future__ import annotations

import uuid

import pytest

from shared.identity.connections import parse_connection
from shared.work.callbacks import FinalCallbacks
from shared.work.record import new_operation
from shared.work.states import Status
from tests.fakes import MemoryStore


class Session:
    """Records the POSTs a callback makes and answers 204."""

    def __init__(self) -> None:
        self.posts: list[str] = []

    def post(self, url, **kwargs):
        self.posts.append(url)
        return type("Response", (), {"status_code": 204, "close": lambda self: None})()


class Connections:
    """The registry's two answers a callback needs: the connection and its signing key."""

    def __init__(self, allow_private: bool, key: str | None = "k" * 32) -> None:
        self.key = key
        self.connection = parse_connection(
            {
                "name": "c.test",
                "mode": "app",
                "tenantId": "t",
                "clientId": "c",
                "credential": {"type": "client_secret"},
                "callbackUrlHosts": ["docuflow.test"],
                "allowPrivateAttachmentHosts": allow_private,
            }
        )

    def get(self, name):
        return self.connection

    def signing_key(self, connection):
        return self.key


def resolve_public(host: str, port: int) -> list[str]:
    return ["20.190.151.7"]  # a global address (the documentation ranges count as internal)


@pytest.mark.parametrize(("allow_private", "expected"), [(False, "guarded"), (True, "plain")])
def test_a_callback_uses_the_peer_checked_session_unless_the_connection_allows_private_hosts(
    allow_private, expected
):
    store = MemoryStore()
    op = store.create(
        new_operation(
            str(uuid.uuid4()),
            "send",
            "c.test",
            status=Status.SUCCEEDED,
            callback_url="https://docuflow.test/cb",
        )
    )
    sessions = {"guarded": Session(), "plain": Session()}
    callbacks = FinalCallbacks(
        Connections(allow_private),
        store,
        guarded_session=sessions["guarded"],
        plain_session=sessions["plain"],
        resolve=resolve_public,
    )
    callbacks(op)
    assert sessions[expected].posts == ["https://docuflow.test/cb"]
    assert [s.posts for name, s in sessions.items() if name != expected] == [[]]
    assert store.get(op.operation_id).callback.status == "delivered"


def test_without_a_signing_key_nothing_is_sent_and_the_receipt_says_why():
    store = MemoryStore()
    op = store.create(
        new_operation(str(uuid.uuid4()), "send", "c.test", callback_url="https://docuflow.test/cb")
    )
    session = Session()
    FinalCallbacks(
        Connections(False, key=None),
        store,
        guarded_session=session,
        plain_session=session,
        resolve=resolve_public,
    )(op)
    assert session.posts == []
    receipt = store.get(op.operation_id).callback
    assert (receipt.status, receipt.reason) == ("failed", "no signing key")
