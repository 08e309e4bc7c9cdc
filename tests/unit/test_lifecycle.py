"""Every transition of the one lifecycle, queued and inline, on the in-memory store (no I/O):
accept → claim → run → succeed | fail | park | reschedule | hand back | poison, the gates a
message passes first, progress records, and an attempt that outlived its claim."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from shared.errors import (
    GraphUnavailable,
    ReauthRequired,
    SendAsDenied,
    StorageUnavailable,
    Throttled,
)
from shared.models import SendRequest
from shared.work.lifecycle import (
    BUSY_RECHECK_SECONDS,
    CLAIM_RACE_DELAY,
    ClaimLost,
    Lifecycle,
    Limits,
    Policy,
    Step,
)
from shared.work.parking import requeue_parked
from shared.work.processor import Processor
from shared.work.states import TRANSITIONS, InvalidTransition, Status, check_transition
from tests.fakes import Clock, MemoryQueues, MemoryStore, UnavailableStore

CLAIM = 60.0
REQUEST = {
    "connection": "contoso.test",
    "from": "anna@contoso.test",
    "to": ["bram@contoso.test"],
    "subject": "Hi",
    "callbackUrl": "https://docuflow.test/cb",
    "mode": "async",
}


class Runner:
    """Plays a scripted list of outcomes, one per attempt (an exception or a result)."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls: list[dict] = []

    def __call__(self, kind, request, ctx):
        self.calls.append({"resume": ctx.progress.resume, "progress": ctx.progress.steps})
        step = self.script.pop(0)
        if callable(step):
            step = step(ctx)
        if isinstance(step, BaseException):
            raise step
        return step if step is not None else {"operationId": ctx.operation_id, "status": "sent"}


def context(connection, operation_id, user=None, *, progress):
    return SimpleNamespace(operation_id=operation_id, progress=progress, graph=None)


class World:
    """A lifecycle on the in-memory store, its queues, a hand-moved clock, the callbacks."""

    def __init__(self, *script, store=None, max_dequeue_count=3):
        self.store = store or MemoryStore()
        self.queues = MemoryQueues()
        self.clock = Clock()
        self.runner = Runner(*script)
        self.finals: list[tuple[str, str]] = []
        self.lifecycle = Lifecycle(
            self.store,
            self.queues,
            context,
            limits=Limits(claim_seconds=CLAIM, max_dequeue_count=max_dequeue_count),
            on_final=lambda op: self.finals.append((op.operation_id, str(op.status))),
            clock=self.clock,
            runner=self.runner,
        )
        self.processor = Processor(self.lifecycle)

    def accept(self, policy=Policy.QUEUED, **extra):
        operation_id = str(uuid.uuid4())
        request = {**REQUEST, **extra}
        accepted = self.lifecycle.accept(
            "send",
            operation_id,
            request,
            key=None,
            user=request.get("user"),
            callback_url=request.get("callbackUrl"),
            policy=policy,
        )
        return accepted.operation

    def deliver(self, dequeue_count=1):
        """Run every queued message once (in order); returns the steps."""
        return [self.processor.process(m.kind, m.body, dequeue_count) for m in self.queues.take()]

    def status(self, op):
        return self.store.get(op.operation_id)


def request_struct():
    from shared.api.validation import decode

    return decode(SendRequest, json.dumps(REQUEST).encode())


# --- queued ------------------------------------------------------------------------------


def test_a_queued_operation_is_claimed_run_and_ends_succeeded_without_its_envelope():
    world = World(None)
    op = world.accept()
    assert world.status(op).status == Status.ACCEPTED
    assert world.deliver() == [Status.SUCCEEDED]
    done = world.status(op)
    assert done.status == Status.SUCCEEDED and done.attempts == 1 and done.envelope is None
    assert done.result == {"operationId": op.operation_id, "status": "sent"}
    assert done.claimed_until is None and done.finished_at
    assert world.finals == [(op.operation_id, "succeeded")]
    assert world.runner.calls[0]["resume"] is False
    # A duplicate delivery afterwards does nothing.
    assert world.processor.process("send", op.envelope, 1) == "already-succeeded"


def test_a_permanent_error_ends_failed_at_once_with_its_code():
    world = World(SendAsDenied("no"))
    op = world.accept()
    assert world.deliver() == [Status.FAILED]
    failed = world.status(op)
    assert failed.status == Status.FAILED and failed.error.code == "send_as_denied"
    assert world.queues.messages == [] and world.finals == [(op.operation_id, "failed")]


def test_throttling_reschedules_a_new_message_no_earlier_than_retry_after_and_resumes():
    world = World(Throttled("slow down", retry_after=7), None)
    op = world.accept()
    assert world.deliver() == [Step.RESCHEDULED]
    waiting = world.status(op)
    assert waiting.status == Status.ACCEPTED and waiting.error.code == "throttled"
    [message] = world.queues.messages
    assert message.delay >= 7 and waiting.next_attempt_at
    # The same message delivered early (a duplicate) waits for the due time.
    assert world.processor.process("send", message.body, 1) == Step.EARLY
    world.clock.advance(8)
    world.queues.take()
    assert world.processor.process("send", message.body, 1) == Status.SUCCEEDED
    assert [c["resume"] for c in world.runner.calls] == [False, True]
    assert world.status(op).attempts == 2


def test_reauth_parks_with_the_sign_in_url_and_a_sign_in_queues_it_again():
    world = World(ReauthRequired("sign in", sign_in_url="/api/auth/c/login?user=anna"), None)
    op = world.accept(user="anna@contoso.test")
    assert world.deliver() == [Status.PARKED]
    parked = world.status(op)
    assert parked.status == Status.PARKED and parked.sign_in_url.endswith("user=anna")
    assert parked.parked_until and parked.envelope and parked.claimed_until is None
    assert world.store.parked_ids("contoso.test") == [op.operation_id]
    assert world.finals == [(op.operation_id, "parked")]
    # A stale copy of the message does nothing while parked.
    assert world.processor.process("send", op.envelope, 1) == Step.STALE_PARKED
    assert requeue_parked(world.store, world.queues, "contoso.test", None) == [op.operation_id]
    assert world.status(op).status == Status.ACCEPTED
    assert world.deliver() == [Status.SUCCEEDED]


def test_an_unexpected_error_goes_back_to_the_host_and_the_last_dequeue_poisons():
    world = World(RuntimeError("bug"), RuntimeError("bug"), None, max_dequeue_count=2)
    op = world.accept()
    [message] = world.queues.take()
    with pytest.raises(RuntimeError):
        world.processor.process("send", message.body, 1)
    assert world.status(op).status == Status.ACCEPTED  # the host retries this message
    with pytest.raises(RuntimeError):
        world.processor.process("send", message.body, 2)
    poisoned = world.status(op)
    assert poisoned.status == Status.POISONED and poisoned.poison_queue == "mail-send-poison"
    assert poisoned.envelope == message.body and poisoned.error.code == "internal_error"
    # An operator moves the message back: it runs again, in resume mode.
    assert world.processor.process("send", message.body, 1) == Status.SUCCEEDED
    assert [c["resume"] for c in world.runner.calls] == [False, True, True]
    assert world.status(op).poison_queue is None


def test_a_message_for_a_held_operation_looks_again_when_the_claim_ends():
    world = World()
    op = world.accept()
    [message] = world.queues.take()
    held = world.store.get(op.operation_id)
    held.status, held.attempts = Status.RUNNING, 1
    held.claimed_until = "2999-01-01T00:00:00.000000Z"
    world.store.save(held)
    assert world.processor.process("send", message.body, 1) == Step.BUSY
    [copy] = world.queues.messages
    assert 0 < copy.delay <= BUSY_RECHECK_SECONDS and world.runner.calls == []


def test_a_lost_claim_race_leaves_the_run_to_the_winner():
    world = World(None)
    op = world.accept()
    [message] = world.queues.take()
    stale = world.store.get(op.operation_id)
    world.store.save(world.store.get(op.operation_id))  # someone else wrote first
    assert world.lifecycle.run_queued(stale, request_struct, message.body, 1).step == Step.BUSY
    assert world.queues.messages[0].delay == CLAIM_RACE_DELAY and world.runner.calls == []


def test_a_message_rerouted_to_another_kinds_queue_is_refused():
    world = World(None)
    op = world.accept()
    assert world.processor.process("move", op.envelope, 1) == "rejected"
    assert world.queues.poisoned and world.runner.calls == []


def test_rescheduling_gives_up_after_max_attempts():
    world = World(GraphUnavailable("down", retry_after=1))
    world.lifecycle.limits = Limits(claim_seconds=CLAIM, max_attempts=1)
    op = world.accept()
    assert world.deliver() == [Status.FAILED]
    assert "Gave up after 1 attempts" in world.status(op).error.message


# --- progress ------------------------------------------------------------------------------


def test_progress_is_persisted_before_the_step_and_read_back_by_the_resumed_attempt():
    seen = {}

    def first(ctx):
        ctx.progress.record("sendIssuedAt", "2026-05-01T12:00:00.000000Z")
        seen["stored"] = dict(world.store.get(ctx.operation_id).progress)
        return GraphUnavailable("answer lost", retry_after=1)

    world = World(first, None)
    op = world.accept()
    world.deliver()
    assert seen["stored"] == {"sendIssuedAt": "2026-05-01T12:00:00.000000Z"}
    world.clock.advance(2)
    world.deliver()
    assert world.runner.calls[1] == {
        "resume": True,
        "progress": {"sendIssuedAt": "2026-05-01T12:00:00.000000Z"},
    }
    assert world.status(op).status == Status.SUCCEEDED


def test_a_progress_record_that_cannot_be_stored_stops_the_step_and_reschedules():
    store = UnavailableStore()

    def record(ctx):
        store.down = True
        try:
            ctx.progress.record("sendIssuedAt", "x")
        finally:
            store.down = False
        raise AssertionError("the step ran without its record")

    world = World(record, store=store)
    op = world.accept()
    assert world.deliver() == [Step.RESCHEDULED]
    assert world.status(op).progress == {} and world.status(op).error.code == "storage_unavailable"


def test_an_outcome_that_cannot_be_recorded_keeps_the_message_for_a_redelivery():
    store = UnavailableStore()

    def succeed_then_storage_fails(ctx):
        store.down = True
        return None

    world = World(succeed_then_storage_fails, store=store)
    op = world.accept()
    [message] = world.queues.take()
    with pytest.raises(StorageUnavailable):
        world.processor.process("send", message.body, 1)
    assert world.status(op).status == Status.RUNNING  # redelivered after the claim: resumed


# --- an attempt that outlived its claim -----------------------------------------------------


@pytest.mark.parametrize(
    "late_end",
    [RuntimeError("worker A's late bug"), Throttled("A throttled", retry_after=5), None],
    ids=["unexpected", "throttled", "succeeded"],
)
def test_an_attempt_that_outlived_its_claim_does_not_overwrite_the_newer_attempt(late_end):
    """Worker A's attempt outlives its claim; worker B (a redelivery) claims the operation and
    finishes it. A's late end must not write: before, A's save took the current ETag and
    overwrote B's `succeeded` with `accepted`, and with B's message deleted and A's message
    gone (its lease had expired and B had it), nothing would ever run the operation again."""
    world = World()
    op = world.accept()
    [message] = world.queues.take()

    def a_runs_long(ctx):
        world.clock.advance(CLAIM + 1)  # A is still busy when its claim runs out
        b_steps.append(world.processor.process("send", message.body, 2))
        return late_end

    b_steps: list[str] = []
    world.runner.script = [a_runs_long, None]
    assert world.processor.process("send", message.body, 1) == Step.CLAIM_LOST
    assert b_steps == [Status.SUCCEEDED]
    final = world.status(op)
    assert final.status == Status.SUCCEEDED and final.attempts == 2
    assert world.queues.messages == []  # A queued nothing either
    assert world.finals == [(op.operation_id, "succeeded")]


def test_a_progress_record_after_the_claim_was_lost_stops_the_late_attempt():
    world = World()
    op = world.accept()
    [message] = world.queues.take()
    acted: list[str] = []

    def a_runs_long(ctx):
        world.clock.advance(CLAIM + 1)
        world.processor.process("send", message.body, 2)  # B takes over and finishes
        ctx.progress.record("sendIssuedAt", "late")  # raises ClaimLost: A never sends
        acted.append("sent")

    world.runner.script = [a_runs_long, None]
    assert world.processor.process("send", message.body, 1) == Step.CLAIM_LOST
    assert acted == [] and world.status(op).progress == {}


def test_claim_lost_is_no_app_error_so_an_operation_never_catches_it_as_its_own():
    from shared.errors import AppError

    assert not issubclass(ClaimLost, AppError)


# --- inline (mode auto) --------------------------------------------------------------------


def test_inline_success_ends_now_and_leaves_a_safety_net_for_a_crash():
    world = World(None)
    op = world.accept(Policy.INLINE)
    [net] = world.queues.messages
    assert net.delay == CLAIM  # visible only once the inline claim has ended
    outcome = world.lifecycle.run_inline(op, request_struct())
    assert outcome.step == Status.SUCCEEDED and world.status(op).status == Status.SUCCEEDED
    assert world.finals == [(op.operation_id, "succeeded")]
    world.clock.advance(CLAIM)
    assert world.deliver() == ["already-succeeded"]


def test_inline_crash_is_resumed_by_the_safety_net_when_the_claim_ends():
    world = World(None)
    op = world.accept(Policy.INLINE)
    world.lifecycle._claim(op)  # the inline attempt claimed it, then the host died
    world.clock.advance(1)
    assert world.deliver() == [Step.BUSY]  # the net arrived early: it looks again later
    world.clock.advance(CLAIM)
    assert world.deliver() == [Status.SUCCEEDED]
    assert world.runner.calls == [{"resume": True, "progress": {}}]


def test_inline_throttling_is_rescheduled_not_failed():
    world = World(Throttled("slow down", retry_after=3), None)
    op = world.accept(Policy.INLINE)
    world.queues.take()  # the safety net
    outcome = world.lifecycle.run_inline(op, request_struct())
    assert outcome.step == Step.RESCHEDULED
    waiting = world.status(op)
    assert waiting.status == Status.ACCEPTED and waiting.error.code == "throttled"
    [message] = world.queues.messages
    assert message.delay >= 3
    world.clock.advance(4)
    assert world.deliver() == [Status.SUCCEEDED]


def test_inline_reauth_parks_with_the_sign_in_url_and_resumes_after_sign_in():
    url = "/api/auth/contoso.test/login?user=anna%40contoso.test"
    world = World(ReauthRequired("sign in", sign_in_url=url), None)
    op = world.accept(Policy.INLINE, user="anna@contoso.test")
    world.queues.take()
    outcome = world.lifecycle.run_inline(op, request_struct())
    assert outcome.step == Status.PARKED
    parked = world.status(op)
    assert parked.status == Status.PARKED and parked.sign_in_url == url
    assert requeue_parked(world.store, world.queues, "contoso.test", "anna@contoso.test")
    assert world.deliver() == [Status.SUCCEEDED]


def test_inline_unexpected_error_is_handed_to_the_queue_with_back_off():
    world = World(RuntimeError("bug"), None)
    op = world.accept(Policy.INLINE)
    world.queues.take()
    outcome = world.lifecycle.run_inline(op, request_struct())
    assert outcome.step == Step.RESCHEDULED and world.status(op).status == Status.ACCEPTED
    world.clock.advance(60)
    assert world.deliver() == [Status.SUCCEEDED]


def test_inline_permanent_error_ends_failed_and_reports_the_error():
    world = World(SendAsDenied("no"))
    op = world.accept(Policy.INLINE)
    outcome = world.lifecycle.run_inline(op, request_struct())
    assert outcome.step == Status.FAILED and isinstance(outcome.error, SendAsDenied)
    assert world.status(op).status == Status.FAILED


def test_accept_takes_the_record_back_when_its_message_cannot_be_queued():
    world = World()
    world.queues.down = True
    with pytest.raises(StorageUnavailable):
        world.accept()
    assert world.store.ops == {}


# --- the state table -----------------------------------------------------------------------


def test_final_statuses_have_no_way_out_and_every_status_is_in_the_table():
    assert set(TRANSITIONS) == set(Status)
    assert TRANSITIONS[Status.SUCCEEDED] == TRANSITIONS[Status.FAILED] == frozenset()
    with pytest.raises(InvalidTransition):
        check_transition(Status.SUCCEEDED, Status.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(Status.PARKED, Status.RUNNING)  # only a sign-in (→ accepted) frees it
    check_transition(Status.POISONED, Status.RUNNING)
