"""Parked work against a real Azurite (Table + Queue): a sign-in queues it again to run once,
and parked work nobody signs in for expires. The store's own contract: tests/contract/."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest

from shared.errors import ReauthRequired
from shared.timestamps import now_utc
from shared.work.lifecycle import Lifecycle, Limits
from shared.work.parking import expire_parked, requeue_parked
from shared.work.processor import Processor
from shared.work.queueing import Queues
from shared.work.states import Status
from tests.fakes import accept_one
from tests.functional.test_reliability_background import no_graph

PARKED, SUCCEEDED = Status.PARKED, Status.SUCCEEDED

pytestmark = pytest.mark.timeout(60)


def send_request(subject: str = "Hi", user: str | None = "anna@contoso.test") -> dict:
    request = {
        "connection": f"conn-{uuid.uuid4().hex[:8]}",
        "from": "anna@contoso.test",
        "to": ["bram@contoso.test"],
        "subject": subject,
        "mode": "async",
    }
    if user:
        request["user"] = user
    return request


def drain(queues: Queues, queue: str) -> list[dict]:
    client = queues.client(queue)
    out = []
    for message in client.receive_messages(max_messages=32, visibility_timeout=30):
        # The host reads base64: prove the text we wrote is base64 of the JSON envelope.
        out.append(json.loads(base64.b64decode(message.content)))
        client.delete_message(message)
    return out


class SignInFirst:
    """An operation runner that needs a sign-in until `signed_in` is set."""

    def __init__(self) -> None:
        self.signed_in = False
        self.calls = 0

    def __call__(self, kind, request, ctx):
        self.calls += 1
        if not self.signed_in:
            raise ReauthRequired(
                "Anna must sign in again.", sign_in_url="/api/auth/conn/login?user=anna"
            )
        return {"operationId": ctx.operation_id, "status": "sent"}


def processor(store, queues, runner, **limits) -> Processor:
    return Processor(Lifecycle(store, queues, no_graph, limits=Limits(**limits), runner=runner))


def test_reauth_parks_the_operation_and_a_sign_in_queues_it_again_to_run_once(store, queues):
    runner = SignInFirst()
    worker = processor(store, queues, runner)
    request = send_request()
    accepted = accept_one(store, request)
    op_id = accepted.operation.operation_id
    envelope = accepted.operation.envelope

    assert worker.process("send", envelope, 1) == PARKED
    parked = store.get(op_id)
    assert parked.status == PARKED and parked.sign_in_url.endswith("user=anna")
    assert parked.parked_until and parked.envelope == envelope
    assert store.parked_ids(request["connection"], "Anna@Contoso.test") == [op_id]
    # A stale copy of the message does nothing while parked.
    assert worker.process("send", envelope, 1) == "parked" and runner.calls == 1

    drain(queues, "mail-send")
    runner.signed_in = True
    assert requeue_parked(store, queues, request["connection"], "bram@contoso.test") == []
    assert requeue_parked(store, queues, request["connection"], "anna@contoso.test") == [op_id]
    messages = [m for m in drain(queues, "mail-send") if m["operationId"] == op_id]
    assert len(messages) == 1 and messages[0]["request"]["subject"] == "Hi"
    assert store.parked_ids(request["connection"]) == []

    body = json.dumps(messages[0]).encode()
    assert worker.process("send", body, 1) == SUCCEEDED
    assert worker.process("send", body, 1) == "already-succeeded"
    done = store.get(op_id)
    assert done.status == SUCCEEDED and done.envelope is None and runner.calls == 2


def test_parked_work_expires_with_a_clear_final_status(store, queues):
    worker = processor(store, queues, SignInFirst(), parked_ttl=timedelta(hours=1))
    accepted = accept_one(store, send_request())
    worker.process("send", accepted.operation.envelope, 1)
    op_id = accepted.operation.operation_id
    assert op_id not in expire_parked(store, now=now_utc())
    assert op_id in expire_parked(store, now=now_utc() + timedelta(hours=2))
    expired = store.get(op_id)
    assert expired.status == "failed" and expired.error.code == "reauth_expired"
    assert expired.envelope is None
