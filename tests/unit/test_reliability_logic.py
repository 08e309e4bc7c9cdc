"""Pure decisions behind exactly-once: resume plans, what a POST may retry, the retry budget,
maxDequeueCount from host.json, operation ids, stranded operations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.errors import GraphOutcomeUnknown, SendUnconfirmed
from shared.graph.retry import maybe_processed, next_delay
from shared.operations.exactly_once import RESTART, SENT, UNCONFIRMED, WAIT, resume_plan
from shared.settings import Settings
from shared.timestamps import iso
from shared.work.host import queue_host
from shared.work.processor import valid_operation_id
from shared.work.record import Operation, new_operation
from shared.work.recovery import is_stranded
from shared.work.states import Action, classify

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DRAFT = {"id": "d", "isDraft": True}
SENT_COPY = {"id": "s", "isDraft": False}


@pytest.mark.parametrize(
    ("found", "outbox", "issued_ago", "plan"),
    [
        ([SENT_COPY], [], 5, SENT),
        ([SENT_COPY], [], None, SENT),
        ([], [], None, RESTART),  # never issued: nothing can be on its way
        ([DRAFT], [], None, RESTART),
        ([DRAFT], [], 5, RESTART),  # still a draft: Graph flips isDraft when it accepts
        ([], [{"id": "o", "isDraft": False}], 5, WAIT),  # in the Outbox: on its way
        ([], [{"id": "o", "isDraft": False}], 5000, WAIT),
        ([], [{"id": "o", "isDraft": False}], None, WAIT),  # even without a record of it
        ([], [], 5, WAIT),  # issued, nowhere yet: the copy may still come
        ([], [], 5000, UNCONFIRMED),  # issued long ago and never filed
    ],
)
def test_resume_plan_never_restarts_an_issued_send_that_left_the_drafts(
    found, outbox, issued_ago, plan
):
    issued = None if issued_ago is None else NOW - timedelta(seconds=issued_ago)
    assert resume_plan(found, outbox, issued, NOW, confirm_seconds=900) == plan


@pytest.mark.parametrize(
    ("status", "retry_after", "unknown"),
    [
        (502, None, True),
        (504, None, True),
        (504, 3.0, True),
        (503, None, True),
        (503, 2.0, False),  # "not processed, come back later"
        (429, None, False),
        (429, 1.0, False),
        (500, None, False),  # a definite error answer, mapped as such
    ],
)
def test_only_429_and_503_with_retry_after_say_a_post_was_not_processed(
    status, retry_after, unknown
):
    assert maybe_processed(status, retry_after) is unknown


def test_the_retry_budget_counts_the_time_the_next_request_will_take():
    assert next_delay(0, 1.0, elapsed=5.0, budget=10.0) == 1.0
    # 5 s spent, 1 s wait, but the last request took 6 s: another one would end past 10 s.
    assert next_delay(0, 1.0, elapsed=5.0, budget=10.0, attempt_cost=6.0) is None


def test_send_unconfirmed_is_final_while_outcome_unknown_is_rescheduled():
    assert classify(SendUnconfirmed("x")).action == Action.FAIL
    assert classify(GraphOutcomeUnknown("x")).action == Action.RESCHEDULE


def test_max_dequeue_count_comes_from_host_json_with_the_hosts_env_override(tmp_path):
    (tmp_path / "host.json").write_text(
        json.dumps({"extensions": {"queues": {"maxDequeueCount": 3}}}), encoding="utf-8"
    )
    assert queue_host(Settings.load(env={}), tmp_path).max_dequeue_count == 3
    override = {"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "7"}
    assert queue_host(Settings.load(env=override), tmp_path).max_dequeue_count == 7
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}), encoding="utf-8")
    assert queue_host(Settings.load(env={}), tmp_path).max_dequeue_count == 5
    assert queue_host(Settings.load(env={}), tmp_path / "missing").max_dequeue_count == 5
    root = {"AzureWebJobsScriptRoot": str(tmp_path)}
    assert queue_host(Settings.load(env=root)).max_dequeue_count == 5


def test_the_app_reads_the_products_host_json_as_the_host_does():
    """The lifecycle poisons on the dequeue the host poisons after: both read the same file."""
    from devhost.host_config import load_host_config

    repo = Path(__file__).resolve().parents[2]
    host = load_host_config(repo).queues
    app = queue_host(Settings.load(env={}))
    assert (app.max_dequeue_count, app.visibility_timeout, app.max_polling_interval) == (
        host.max_dequeue_count,
        host.visibility_timeout,
        host.max_polling_interval,
    )
    raw = json.loads((repo / "host.json").read_text(encoding="utf-8"))["extensions"]["queues"]
    assert app.max_dequeue_count == raw["maxDequeueCount"]  # set explicitly, not a default


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0b6c3f5e-2f7e-4a44-9a67-9a1f1f6c2d11", True),
        ("not-a-uuid", False),
        ("a#b", False),
        ("a/b", False),
        ("x?y", False),
        ("", False),
    ],
)
def test_operation_ids_are_uuids(value, ok):
    assert valid_operation_id(value) is ok


def _op(status: str, updated_ago: float, **fields) -> Operation:
    op = new_operation("0b6c3f5e-2f7e-4a44-9a67-9a1f1f6c2d11", "send", "c", status=status)
    op.updated_at = iso(NOW - timedelta(seconds=updated_ago))
    for name, value in fields.items():
        setattr(op, name, value)
    return op


def test_stranded_operations_are_old_and_past_their_claim_or_next_attempt():
    two_hours = 7200
    assert is_stranded(_op("running", two_hours, claimed_until=iso(NOW - timedelta(hours=2))), NOW)
    assert not is_stranded(_op("running", 60, claimed_until=iso(NOW - timedelta(hours=2))), NOW)
    assert not is_stranded(
        _op("running", two_hours, claimed_until=iso(NOW + timedelta(minutes=5))), NOW
    )
    assert is_stranded(_op("accepted", two_hours), NOW)
    assert not is_stranded(
        _op("accepted", two_hours, next_attempt_at=iso(NOW + timedelta(hours=1))), NOW
    )
    assert not is_stranded(_op("succeeded", two_hours), NOW)
    assert not is_stranded(_op("parked", two_hours), NOW)
