"""The queue worker, `mode: auto`, parked work and the cleanup against real Azurite and the
sandbox: the crash and unknown-outcome windows, poison recovery, storage failures, oplog."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import msgspec
import pytest

from shared.api.modes import submit
from shared.api.validation import decode
from shared.errors import ReauthRequired, StorageUnavailable
from shared.graph.limiter import InstanceLimits
from shared.models import SendRequest
from shared.runtime import Runtime
from shared.settings import Settings
from shared.timestamps import iso, now_utc
from shared.work.idempotency import accept
from shared.work.lifecycle import Lifecycle, Limits, Policy, run_kind
from shared.work.parking import requeue_parked
from shared.work.processor import Processor
from shared.work.queueing import Queues, encode_envelope
from shared.work.recovery import recover_stale
from shared.work.states import Status
from shared.work.table_store import TableOperationStore
from tests.functional.conftest import CONNECTION, Ops, secret_client, until

ACCEPTED, PARKED, POISONED = Status.ACCEPTED, Status.PARKED, Status.POISONED
RUNNING, SUCCEEDED = Status.RUNNING, Status.SUCCEEDED

pytestmark = pytest.mark.timeout(120)

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
SEND_STEP = r"/messages/[^/]+/send$"


@pytest.fixture
def own_store(azurite) -> TableOperationStore:
    """A store on a table of its own: the cleanup must not touch other tests' operations."""
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(azurite.connection_string)
    return TableOperationStore(service.get_table_client(f"reliability{uuid.uuid4().hex[:12]}"))


def processor(store, queues, context, *, runner=run_kind, clock=now_utc, **limits) -> Processor:
    """The queue edge over a lifecycle on these collaborators."""
    lifecycle = Lifecycle(
        store, queues, context, limits=Limits(**limits), runner=runner, clock=clock
    )
    return Processor(lifecycle)


def no_graph(connection, operation_id, user=None, *, progress):
    return SimpleNamespace(operation_id=operation_id, progress=progress)


@pytest.fixture
def dead_queues(azurite) -> Queues:
    """Queues on a storage endpoint nobody listens on (the real SDK error path)."""
    dead = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:9", azurite.connection_string)
    return Queues(Settings.load(env={}, storage_connection=dead), retry_total=0)


class Clock:
    """The worker's clock, moved forward to skip a Retry-After instead of sleeping."""

    def __init__(self) -> None:
        self.shift = timedelta()

    def __call__(self):
        return now_utc() + self.shift


def body(subject: str, **extra) -> dict:
    request = {"connection": CONNECTION, "from": ADMIN, "to": [ANNA], "subject": subject}
    request.update(extra)
    return request


def accepted(store: TableOperationStore, request: dict, operation_id: str | None = None):
    operation_id = operation_id or str(uuid.uuid4())
    envelope = encode_envelope(operation_id, request)
    return accept(
        store,
        kind="send",
        operation_id=operation_id,
        request_json=request,
        envelope=envelope,
        key=None,
    ).operation


def count(ops: Ops, mailbox: str, folder: str, subject: str) -> int:
    """Copies of `subject` in a folder; in any but the Outbox once administratie's mail has
    left its Outbox (then the count is final)."""
    if folder != "outbox":
        ops.settle(ADMIN)
    return sum(1 for m in ops.folder_messages(mailbox, folder) if m.get("subject") == subject)


def drain(queues: Queues, queue: str) -> list[dict]:
    client = queues.client(queue)
    out = []
    for message in client.receive_messages(max_messages=32, visibility_timeout=30):
        out.append(json.loads(base64.b64decode(message.content)))
        client.delete_message(message)
    return out


def queued_ids(queues: Queues, queue: str) -> list[str]:
    """Operation ids of every visible message (other tests may have left many)."""
    ids: list[str] = []
    client = queues.client(queue)
    for _ in range(50):
        batch = list(client.receive_messages(max_messages=32, visibility_timeout=30))
        if not batch:
            break
        for message in batch:
            with contextlib.suppress(ValueError):
                ids.append(json.loads(base64.b64decode(message.content)).get("operationId"))
            client.delete_message(message)
    return ids


# --- B1 through the worker -----------------------------------------------------------------------


def test_a_queued_send_in_the_outbox_window_is_waited_for_and_sent_once(ops, store, queues):
    ops.sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 2500})
    ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="accept_then_drop", times=1)
    clock = Clock()
    worker = processor(store, queues, ops.runtime.context, clock=clock)
    subject = f"queued {uuid.uuid4()}"
    op = accepted(store, body(subject))

    assert worker.process("send", op.envelope, 1) == "reschedule"
    first = store.get(op.operation_id)
    assert first.status == ACCEPTED and first.progress["sendIssuedAt"]  # recorded before /send
    clock.shift = timedelta(hours=1)  # the re-scheduled attempt is due
    # The resume while the mail sits in the Outbox: re-scheduled again, never sent again.
    assert worker.process("send", op.envelope, 1) == "reschedule"
    assert until(lambda: count(ops, ADMIN, "sentitems", subject) == 1)
    clock.shift = timedelta(hours=2)
    assert worker.process("send", op.envelope, 1) == SUCCEEDED
    done = store.get(op.operation_id)
    assert done.status == SUCCEEDED and done.attempts == 3
    assert count(ops, ADMIN, "sentitems", subject) == 1
    assert count(ops, ANNA, "inbox", subject) == 1


def test_a_crash_right_after_send_was_issued_is_resumed_without_a_second_mail(ops, store, queues):
    """The host dies after /send left (answer never handled): the retry must not restart."""
    ops.sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 2000})
    subject = f"crash {uuid.uuid4()}"
    op = accepted(store, body(subject))

    def crash_after_send(kind, request, ctx):
        ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="accept_then_drop", times=1)
        try:
            kind.run(request, ctx)
        finally:
            raise SystemExit("host died")  # not an Exception: nothing gets recorded

    with pytest.raises(SystemExit):
        processor(store, queues, ops.runtime.context, runner=crash_after_send).process(
            "send", op.envelope, 1
        )
    stranded = store.get(op.operation_id)
    assert stranded.status == RUNNING and stranded.progress["sendIssuedAt"]
    # The host's retry after the claim ran out: resume mode, the copy is not filed yet.
    clock = Clock()
    clock.shift = timedelta(hours=1)
    worker = processor(store, queues, ops.runtime.context, clock=clock)
    assert worker.process("send", op.envelope, 2) == "reschedule"
    assert until(lambda: count(ops, ADMIN, "sentitems", subject) == 1)
    clock.shift = timedelta(hours=2)
    assert worker.process("send", op.envelope, 1) == SUCCEEDED
    assert count(ops, ANNA, "inbox", subject) == 1


# --- B3: mode auto ------------------------------------------------------------------------------


@pytest.fixture
def runtime(ops, store, queues) -> Runtime:
    """The process's collaborators on the sandbox and this Azurite (what submit() uses)."""
    return Runtime(ops.settings, lambda: secret_client(ops.sandbox.url), store=store, queues=queues)


def auto_request(subject: str) -> SendRequest:
    return decode(SendRequest, json.dumps(body(subject, mode="auto")).encode())


def test_auto_queues_a_safety_net_so_a_crash_during_the_inline_run_is_resumed(
    ops, store, queues, runtime
):
    drain(queues, "mail-send")
    subject = f"auto {uuid.uuid4()}"
    operation_id = str(uuid.uuid4())

    def crash(kind, request, ctx):
        raise SystemExit("host died during the inline run")

    lifecycle = Lifecycle(
        store, queues, runtime.context, limits=Limits.from_settings(ops.settings), runner=crash
    )
    request = auto_request(subject)
    op = lifecycle.accept(
        "send", operation_id, msgspec.to_builtins(request), key=None, policy=Policy.INLINE
    ).operation
    with pytest.raises(SystemExit):
        lifecycle.run_inline(op, request)
    assert store.get(operation_id).status == RUNNING
    # The safety net is there, invisible until the claim ends.
    props = queues.client("mail-send").get_queue_properties()
    assert props.approximate_message_count >= 1
    assert drain(queues, "mail-send") == []
    clock = Clock()
    clock.shift = timedelta(seconds=ops.settings.operation_claim_seconds + 5)
    worker = processor(store, queues, runtime.context, clock=clock)
    envelope = store.get(operation_id).envelope
    assert worker.process("send", envelope, 1) == SUCCEEDED
    assert count(ops, ADMIN, "sentitems", subject) == 1


def test_auto_that_finished_inline_answers_200_and_its_safety_net_is_dropped(
    ops, store, queues, runtime
):
    subject = f"auto-ok {uuid.uuid4()}"
    operation_id = str(uuid.uuid4())
    status, result, _ = submit(auto_request(subject), "send", operation_id, "https://x", runtime)
    assert status == 200 and result.message_id
    assert store.get(operation_id).status == SUCCEEDED
    assert count(ops, ADMIN, "sentitems", subject) == 1
    envelope = encode_envelope(operation_id, json.loads(json.dumps(body(subject, mode="auto"))))
    worker = processor(store, queues, runtime.context)
    assert worker.process("send", envelope, 1) == "already-succeeded"


def test_a_throttled_auto_send_is_rescheduled_not_failed_and_then_sent_once(ops, store, queues):
    ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="status", status=429,
                          retryAfter=30, times=1)  # fmt: skip
    subject = f"auto-429 {uuid.uuid4()}"
    operation_id = str(uuid.uuid4())
    clock = Clock()
    # Graph's Retry-After pauses the mailbox (shared.graph.limiter) on the same moved clock.
    limits = InstanceLimits(clock=lambda: time.time() + clock.shift.total_seconds())
    runtime = Runtime(
        ops.settings,
        lambda: secret_client(ops.sandbox.url),
        store=store,
        queues=queues,
        mailbox_limits=limits,
    )

    status, answer, headers = submit(
        auto_request(subject), "send", operation_id, "https://x", runtime
    )

    assert status == 202 and answer["status"] == "accepted", answer
    assert answer["error"]["code"] == "throttled" and headers["Location"].endswith(operation_id)
    waiting = store.get(operation_id)
    assert waiting.status == ACCEPTED and waiting.next_attempt_at and waiting.attempts == 1
    assert count(ops, ADMIN, "sentitems", subject) == 0
    clock.shift = timedelta(seconds=31)
    worker = processor(store, queues, runtime.context, clock=clock)
    assert worker.process("send", waiting.envelope, 1) == SUCCEEDED
    assert count(ops, ADMIN, "sentitems", subject) == 1


# --- S11 / S10: storage failures ------------------------------------------------------------------


def test_a_queue_that_cannot_be_reached_is_storage_unavailable(dead_queues):
    with pytest.raises(StorageUnavailable):
        dead_queues.enqueue("send", b'{"v":1}')
    with pytest.raises(StorageUnavailable):
        Queues(Settings.load(env={})).enqueue("send", b'{"v":1}')


def test_async_accept_whose_enqueue_fails_answers_503_and_keeps_no_record(
    settings, store, dead_queues
):
    operation_id = str(uuid.uuid4())
    request = decode(SendRequest, json.dumps(body("x", mode="async")).encode())
    runtime = Runtime(settings, store=store, queues=dead_queues)
    with pytest.raises(StorageUnavailable):
        submit(request, "send", operation_id, "https://x", runtime)
    assert store.get(operation_id) is None  # a retry with the same key starts afresh


def test_parked_work_stays_parked_when_its_requeue_fails(store, queues, dead_queues):
    def needs_sign_in(kind, request, ctx):
        raise ReauthRequired("sign in", sign_in_url="/api/auth/x/login")

    connection = f"conn-{uuid.uuid4().hex[:8]}"
    op = accepted(store, body("parked", connection=connection))
    worker = processor(store, queues, no_graph, runner=needs_sign_in)
    assert worker.process("send", op.envelope, 1) == PARKED
    assert requeue_parked(store, dead_queues, connection, None) == []
    after = store.get(op.operation_id)
    assert after.status == PARKED and after.sign_in_url == "/api/auth/x/login"
    assert store.parked_ids(connection) == [op.operation_id]  # found again at the next sign-in
    assert requeue_parked(store, queues, connection, None) == [op.operation_id]


# --- S2: poison recovery, stranded work ---------------------------------------------------


def test_a_poisoned_operation_moved_back_to_the_queue_runs_again_in_resume_mode(ops, store, queues):
    calls: list[bool] = []

    def flaky(kind, request, ctx):
        calls.append(ctx.progress.resume)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return {"operationId": ctx.operation_id, "status": "sent"}

    worker = processor(store, queues, ops.runtime.context, runner=flaky, max_dequeue_count=1)
    op = accepted(store, body("poison"))
    with pytest.raises(RuntimeError):
        worker.process("send", op.envelope, 1)
    poisoned = store.get(op.operation_id)
    assert poisoned.status == POISONED and poisoned.envelope == op.envelope
    # An operator moves the message back: a new message, dequeue count 1.
    assert worker.process("send", op.envelope, 1) == SUCCEEDED
    assert calls == [False, True]
    assert store.get(op.operation_id).poison_queue is None


def test_cleanup_queues_an_operation_whose_host_died_long_ago(own_store, queues):
    op = accepted(own_store, body("stranded"))
    op.status, op.attempts = RUNNING, 1
    op.claimed_until = iso(now_utc() - timedelta(minutes=1))
    own_store.save(op)
    drain(queues, "mail-send")
    assert op.operation_id not in recover_stale(own_store, queues)  # recent: maybe still retried
    later = now_utc() + timedelta(hours=3)
    assert op.operation_id in recover_stale(own_store, queues, now=later)
    assert own_store.get(op.operation_id).status == ACCEPTED
    assert queued_ids(queues, "mail-send").count(op.operation_id) == 1


def test_cleanup_ends_a_stranded_operation_without_envelope_as_abandoned(own_store, queues):
    op = accepted(own_store, body("no envelope"))
    op.envelope = None
    own_store.save(op)
    later = now_utc() + timedelta(hours=3)
    assert op.operation_id in recover_stale(own_store, queues, now=later)
    gone = own_store.get(op.operation_id)
    assert gone.status == "failed" and gone.error.code == "abandoned"


# --- N5, S14, S12 ------------------------------------------------------------------------


def test_a_duplicate_copy_before_the_retry_after_waits_for_it(ops, store, queues):
    calls: list[int] = []
    op = accepted(store, body("early"))
    op.next_attempt_at = iso(now_utc() + timedelta(seconds=120))
    store.save(op)
    worker = processor(store, queues, ops.runtime.context, runner=lambda *a: calls.append(1))
    assert worker.process("send", op.envelope, 1) == "early"
    assert calls == [] and store.get(op.operation_id).attempts == 0


def test_a_message_with_an_invalid_operation_id_goes_to_poison_at_once(ops, store, queues):
    drain(queues, "mail-send-poison")
    worker = processor(store, queues, ops.runtime.context)
    bad = json.dumps({"v": 1, "operationId": "a#b/c?d", "request": {}}).encode()
    assert worker.process("send", bad, 1) == "rejected"
    assert [m["operationId"] for m in drain(queues, "mail-send-poison")] == ["a#b/c?d"]


def test_queued_operations_write_the_operation_log_line_when_they_end(ops, store, queues, caplog):
    def ok(kind, request, ctx):
        return {"operationId": ctx.operation_id, "status": "sent"}

    def denied(kind, request, ctx):
        from shared.errors import SendAsDenied

        raise SendAsDenied("no")

    good, bad = accepted(store, body("log ok")), accepted(store, body("log bad"))
    with caplog.at_level(logging.INFO, logger="exchange_processor.operations"):
        processor(store, queues, ops.runtime.context, runner=ok).process("send", good.envelope, 1)
        processor(store, queues, ops.runtime.context, runner=denied).process(
            "send", bad.envelope, 1
        )
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("operations")]
    by_id = {line["operationId"]: line for line in lines}
    assert by_id[good.operation_id]["outcome"] == "succeeded"
    assert by_id[bad.operation_id]["outcome"] == "send_as_denied"
    assert by_id[bad.operation_id]["event"] == "operation"
    assert by_id[bad.operation_id]["operation"] == "send"
