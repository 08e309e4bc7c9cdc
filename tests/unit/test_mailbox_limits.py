"""The mailbox limits' pure parts: the send window's bookings, the per-instance limits and the
gate a Graph client goes through (fake clock, no I/O)."""

from __future__ import annotations

import random

import pytest

from shared.errors import MailboxBusy, Throttled
from shared.graph import send_window
from shared.graph.limiter import (
    InstanceLimits,
    MailboxGate,
    MailboxPolicy,
    busy_error,
    is_submission,
    mailbox_of,
)
from shared.work.states import Action, classify

SPAN = send_window.SPAN_SECONDS


def most_in_any_window(times: list[float], span: float = SPAN) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if s <= t < s + span) for s in times), default=0)


def test_a_burst_of_rate_leaves_at_once_and_the_next_one_a_span_later():
    times: list[float] = []
    for _ in range(5):
        at = send_window.earliest(times, 100.0, 5)
        times = sorted([*times, at])
    assert times == [100.0] * 5
    assert send_window.earliest(times, 100.0, 5) == 100.0 + SPAN


def test_a_departure_fills_a_gap_without_crowding_a_later_booking():
    # Two booked far ahead (re-scheduled work) do not block the minutes before them...
    ahead = [200.0, 200.0]
    assert send_window.earliest(ahead, 100.0, 3) == 100.0
    # ...but a gap too close to them is skipped: 3 per span at most, wherever the window is.
    times = [100.0, 150.0, 155.0]
    at = send_window.earliest(times, 100.0, 3)
    assert at == 100.0 + SPAN
    assert most_in_any_window([*times, at]) <= 3


def test_random_bookings_never_put_more_than_rate_in_any_window():
    rng = random.Random(7)
    bookings: list[send_window.Booking] = []
    now = 0.0
    for i in range(400):
        now += rng.uniform(0, 3)
        decision = send_window.decide(
            bookings, now, 10, f"op{i}", max_wait=5, book_ahead=rng.random() < 0.7
        )
        if decision.bookings is not None:
            bookings = decision.bookings
        times = [t for t, _ in bookings]
        assert most_in_any_window(times) <= 10
        assert len(bookings) <= 10 * (send_window.HORIZON_WINDOWS + 2)


def test_a_look_books_nothing():
    look = send_window.decide([], 0.0, 2, "a", max_wait=5, book_ahead=True, peek=True)
    assert look.at == 0.0 and not look.booked and look.bookings is None


def test_a_booking_is_found_again_by_its_tag_and_given_up_when_late():
    first = send_window.decide([], 0.0, 2, "a", max_wait=5, book_ahead=True)
    assert first.at == 0.0 and first.bookings == [(0.0, "a")]
    again = send_window.decide(first.bookings, 0.5, 2, "a", max_wait=5, book_ahead=True)
    assert again.at == 0.0 and again.bookings is None  # no write needed
    late = send_window.decide(first.bookings, 10.0, 2, "a", max_wait=5, book_ahead=True)
    assert late.at == 10.0 and late.bookings == [(10.0, "a")]


def test_far_departures_are_booked_for_queued_work_only():
    full = [(0.0, "x"), (0.0, "y")]
    queued = send_window.decide(full, 1.0, 2, "q", max_wait=5, book_ahead=True)
    assert queued.at == SPAN and (SPAN, "q") in (queued.bookings or [])
    sync = send_window.decide(full, 1.0, 2, "s", max_wait=5, book_ahead=False)
    assert sync.at is None and sync.bookings is None
    assert sync.retry_after == pytest.approx(SPAN - 1.0)


def test_nothing_is_booked_beyond_the_horizon():
    now = 0.0
    bookings = [(now + k * SPAN, f"b{k}") for k in range(send_window.HORIZON_WINDOWS + 1)]
    decision = send_window.decide(bookings, now, 1, "late", max_wait=5, book_ahead=True)
    assert decision.at is None and decision.retry_after is not None
    assert decision.retry_after > send_window.HORIZON_WINDOWS * SPAN


def test_submissions_and_mailboxes_are_found_in_graph_urls():
    assert is_submission("POST", "https://g/v1.0/users/a%40b.c/messages/AA%3D/send")
    assert is_submission("post", "https://g/v1.0/users/a@b.c/sendMail")
    assert is_submission("POST", "https://g/v1.0/users/a@b.c/messages/x/replyAll")
    assert not is_submission("GET", "https://g/v1.0/users/a@b.c/sendMail")
    assert not is_submission("POST", "https://g/v1.0/users/a@b.c/messages/x/createReply")
    assert mailbox_of("https://g/v1.0/users/Anna%40Contoso.test/messages") == "anna@contoso.test"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def gate(limits: InstanceLimits, t: FakeTime, **kw) -> MailboxGate:
    kw.setdefault("policy", MailboxPolicy(concurrent=2, sends_per_minute=2))
    return MailboxGate(limits, "tenant", "app", max_wait=5, **kw)


def test_the_gate_paces_submissions_and_reschedules_work_that_cannot_leave_soon():
    t = FakeTime()
    limits = InstanceLimits(clock=t.clock, sleep=t.sleep)
    for n in range(2):
        g = gate(limits, t, tag=f"op{n}", book_ahead=True)
        g.pace("box@x")
        with g.call("box@x", submission=True):
            pass
    assert t.slept == []  # a burst of the rate leaves at once
    third = gate(limits, t, tag="op2", book_ahead=True)
    with pytest.raises(MailboxBusy) as caught:
        third.pace("box@x")
    # Re-scheduled (never a failure) to come back shortly before its booked departure.
    decision = classify(caught.value)
    assert decision.action is Action.RESCHEDULE
    assert SPAN - 5 <= caught.value.retry_after <= SPAN
    t.now += caught.value.retry_after  # the message comes back...
    back = gate(limits, t, tag="op2", book_ahead=True)
    back.pace("box@x")  # ...finds its booking...
    with back.call("box@x", submission=True):
        pass
    assert t.now == pytest.approx(1_000.0 + SPAN)  # ...and leaves at the booked moment


def test_a_sync_caller_is_told_when_to_come_back_and_nothing_is_booked_for_it():
    t = FakeTime()
    limits = InstanceLimits(clock=t.clock, sleep=t.sleep)
    for n in range(2):
        sender = gate(limits, t, tag=f"op{n}")
        sender.pace("box@x")  # only a look: the submission books
        with sender.call("box@x", submission=True):
            pass
    with pytest.raises(MailboxBusy) as caught:
        gate(limits, t, tag="sync").pace("box@x")
    assert isinstance(caught.value, Throttled) and caught.value.retry_after >= SPAN - 1
    assert [who for _, who in limits._sends["tenant|box@x"]] == ["op0", "op1"]


def test_slots_are_per_app_and_mailbox_and_a_pause_holds_every_caller():
    t = FakeTime()
    limits = InstanceLimits(clock=t.clock, sleep=t.sleep)
    g = gate(limits, t)
    first, second = (limits.enter(g.scope("box@x"), g.policy, max_wait=0) for _ in range(2))
    with pytest.raises(MailboxBusy):
        limits.enter(g.scope("box@x"), g.policy, max_wait=0)
    limits.enter(g.scope("other@x"), g.policy, max_wait=0).release()
    first.release()
    limits.enter(g.scope("box@x"), g.policy, max_wait=0).release()
    second.release()
    g.pause("box@x", 3)
    with g.call("box@x"):
        pass
    assert t.slept == [3]  # within the wait: waited out
    g.pause("box@x", 60)
    with pytest.raises(MailboxBusy) as caught, g.call("box@x"):
        pass
    assert caught.value.retry_after >= 60


def test_without_pacing_the_instance_limits_are_the_old_per_instance_slots():
    t = FakeTime()
    limits = InstanceLimits(pacing=False, clock=t.clock, sleep=t.sleep)
    for n in range(10):
        g = gate(limits, t, tag=f"op{n}")
        g.pace("box@x")
        with g.call("box@x", submission=True):
            pass
    assert t.slept == []


def test_work_that_finds_no_slot_is_rescheduled_at_spread_moments_not_all_at_once():
    delays = []
    for _ in range(50):
        busy = busy_error()
        decision = classify(busy)
        # A new message after the delay: never a failure, never counted towards the dequeue
        # count (shared.work.lifecycle), and never sooner than the error asked.
        assert decision.action is Action.RESCHEDULE
        assert decision.delay >= busy.retry_after
        delays.append(busy.retry_after)
    assert all(2.0 <= d <= 10.0 for d in delays)
    assert len({round(d) for d in delays}) >= 4  # spread over the seconds, not one moment
