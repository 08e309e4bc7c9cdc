"""The operation store, idempotency and parked work against a real Azurite (Table + Queue)."""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared.errors import IdempotencyConflict, ReauthRequired
from shared.work.idempotency import accept
from shared.work.parking import expire_parked, requeue_parked
from shared.work.processor import Processor
from shared.work.queueing import Queues, encode_envelope
from shared.work.store import (
    PARKED,
    RUNNING,
    SUCCEEDED,
    Operation,
    StoreConflict,
    now_utc,
)

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


def accept_one(store, request, key=None, operation_id=None):
    operation_id = operation_id or str(uuid.uuid4())
    return accept(
        store,
        kind="send",
        operation_id=operation_id,
        request_json=request,
        envelope=encode_envelope(operation_id, request),
        key=key,
        user=request.get("user"),
    )


def drain(queues: Queues, queue: str) -> list[dict]:
    client = queues.client(queue)
    out = []
    for message in client.receive_messages(max_messages=32, visibility_timeout=30):
        # The host reads base64: prove the text we wrote is base64 of the JSON envelope.
        out.append(json.loads(base64.b64decode(message.content)))
        client.delete_message(message)
    return out


def test_an_operation_round_trips_and_a_stale_etag_cannot_overwrite_it(store):
    op = store.create(Operation(str(uuid.uuid4()), "send", "c", envelope=b'{"x":1}'))
    first, second = store.get(op.operation_id), store.get(op.operation_id)
    first.status, first.attempts, first.result = RUNNING, 1, {"messageId": "m"}
    store.save(first)
    second.status = SUCCEEDED
    with pytest.raises(StoreConflict):
        store.save(second)
    again = store.get(op.operation_id)
    assert (again.status, again.attempts, again.result) == (RUNNING, 1, {"messageId": "m"})
    assert again.envelope == b'{"x":1}' and again.created_at and again.updated_at
    assert "envelope" not in again.public() and again.public()["status"] == RUNNING


def test_five_concurrent_duplicates_of_one_key_become_one_operation(store):
    request = send_request()
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda _: accept_one(store, request, key="k-1"), range(5)))
    assert sum(r.new for r in results) == 1
    assert len({r.operation.operation_id for r in results}) == 1
    with pytest.raises(IdempotencyConflict):
        accept_one(store, {**request, "subject": "other"}, key="k-1")


def test_without_a_key_the_operation_id_is_the_key(store):
    request = send_request()
    op_id = str(uuid.uuid4())
    assert accept_one(store, request, operation_id=op_id).new
    # The same message delivered again (DocuFlow dropped it on the queue twice).
    with pytest.raises(StoreConflict):
        accept_one(store, request, operation_id=op_id)


class SignInFirst:
    """An operation runner that needs a sign-in until `signed_in` is set."""

    def __init__(self) -> None:
        self.signed_in = False
        self.calls = 0

    def __call__(self, kind, request, ctx, resume):
        self.calls += 1
        if not self.signed_in:
            raise ReauthRequired(
                "Anna must sign in again.", sign_in_url="/api/auth/conn/login?user=anna"
            )
        return {"operationId": ctx, "status": "sent"}


def test_reauth_parks_the_operation_and_a_sign_in_queues_it_again_to_run_once(store, queues):
    runner = SignInFirst()
    processor = Processor(store, queues, lambda conn, op_id, user: op_id, runner=runner)
    request = send_request()
    accepted = accept_one(store, request)
    op_id = accepted.operation.operation_id
    envelope = accepted.operation.envelope

    assert processor.process("send", envelope, 1) == PARKED
    parked = store.get(op_id)
    assert parked.status == PARKED and parked.sign_in_url.endswith("user=anna")
    assert parked.parked_until and parked.envelope == envelope
    assert store.parked_ids(request["connection"], "Anna@Contoso.test") == [op_id]
    # A stale copy of the message does nothing while parked.
    assert processor.process("send", envelope, 1) == "parked" and runner.calls == 1

    drain(queues, "mail-send")
    runner.signed_in = True
    assert requeue_parked(store, queues, request["connection"], "bram@contoso.test") == []
    assert requeue_parked(store, queues, request["connection"], "anna@contoso.test") == [op_id]
    messages = [m for m in drain(queues, "mail-send") if m["operationId"] == op_id]
    assert len(messages) == 1 and messages[0]["request"]["subject"] == "Hi"
    assert store.parked_ids(request["connection"]) == []

    body = json.dumps(messages[0]).encode()
    assert processor.process("send", body, 1) == SUCCEEDED
    assert processor.process("send", body, 1) == "already-succeeded"
    done = store.get(op_id)
    assert done.status == SUCCEEDED and done.envelope is None and runner.calls == 2


def test_parked_work_expires_with_a_clear_final_status(store, queues):
    processor = Processor(
        store,
        queues,
        lambda conn, op_id, user: op_id,
        runner=SignInFirst(),
        parked_ttl=timedelta(hours=1),
    )
    accepted = accept_one(store, send_request())
    processor.process("send", accepted.operation.envelope, 1)
    op_id = accepted.operation.operation_id
    assert op_id not in expire_parked(store, now=now_utc())
    assert op_id in expire_parked(store, now=now_utc() + timedelta(hours=2))
    expired = store.get(op_id)
    assert expired.status == "failed" and expired.error["code"] == "reauth_expired"
    assert expired.envelope is None
