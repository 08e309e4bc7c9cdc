"""The fault campaign: 200 queued sends survive throttling, outages, dropped answers and a killed
host with every mail sent exactly once (counted in the sandbox) and nothing poisoned.

The wait has no wall-clock bound of its own: it lasts while the campaign makes progress, and
ends when nothing moved for longer than the lifecycle's policy allows an operation to sit
without an attempt (`stall_window`). An operation still unfinished then is stuck: the test
prints its full record and what its queue holds."""

from __future__ import annotations

import base64
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from shared.graph.retry import backoff
from shared.settings import Settings
from shared.work.host import queue_host
from shared.work.lifecycle import BUSY_RECHECK_SECONDS
from tests.e2e.background_support import (
    CLAIM_SECONDS,
    GRAPH_RETRY_BUDGET_SECONDS,
    GRAPH_TIMEOUT_SECONDS,
    LEASE_SECONDS,
    bg_fixture,  # noqa: F401 - provides the `bg` fixture to this module
    queue_length,
    sent_copies,
)
from tests.functional.mailboxes import Mailboxes

# A backstop only (a hung test must end); the campaign's own end is the stall window below.
pytestmark = pytest.mark.timeout(1500)

SENDERS = ("administratie@contoso.test", "anna@contoso.test")
TOTAL = 200
SEND_STEP = r"/users/[^/]+/messages/[^/]+/send$"
FAULTS = [
    # A slow Exchange backend on the draft step, so the queue is still busy when the host dies.
    {"method": "POST", "path": r"/users/[^/]+/messages$", "action": "delay", "delayMs": 1200},
    {"method": "POST", "path": SEND_STEP, "action": "status", "status": 429, "retryAfter": 1,
     "probability": 0.10},
    {"method": "POST", "path": SEND_STEP, "action": "status", "status": 503, "retryAfter": 1,
     "probability": 0.10},
    {"method": "POST", "path": SEND_STEP, "action": "reset", "probability": 0.08},
    {"method": "POST", "path": SEND_STEP, "action": "accept_then_drop", "probability": 0.10},
]  # fmt: skip
FINAL = {"succeeded", "failed", "parked", "poisoned"}
# Graph calls one attempt makes at most (create, attachment, send, read-back, resume lookups).
CALLS_PER_ATTEMPT = 6


def stall_window(bg) -> float:
    """The longest an unfinished operation may go without a new attempt, from the policy.

    An attempt takes at most CALLS_PER_ATTEMPT Graph calls of GRAPH_TIMEOUT plus the retry
    budget; after it the next comes after the longest of: a re-schedule (Retry-After 1 s or
    the back-off cap), a host retry (visibilityTimeout, polled every maxPollingInterval), or -
    after the host was killed - its message's lease, then the claim it left and a busy
    re-check. Twice that, so that a busy machine is slow, not stuck.
    """
    root = bg.root
    host = queue_host(Settings.load(env={}), root)
    attempt = CALLS_PER_ATTEMPT * GRAPH_TIMEOUT_SECONDS + GRAPH_RETRY_BUDGET_SECONDS
    between = max(
        backoff(99),
        host.visibility_timeout + host.max_polling_interval,
        LEASE_SECONDS + CLAIM_SECONDS + min(BUSY_RECHECK_SECONDS, CLAIM_SECONDS + 1),
    )
    return 2 * (attempt + between)


def request_body(i: int) -> dict:
    sender = SENDERS[i % 2]
    attachment = base64.b64encode(f"document {i}\n".encode() * 64).decode()
    return {
        "connection": "contoso.test",
        "from": sender,
        "to": ["bram@contoso.test"],
        "subject": f"campaign {i}",
        "body": {"contentType": "text", "content": f"Mail {i} of the fault campaign."},
        "attachments": [
            {"name": f"doc-{i}.txt", "contentType": "text/plain", "contentBytes": attachment}
        ],
        "mode": "async",
    }


def statuses(bg, ids: list[str], answers: Counter[str] | None = None) -> dict[str, dict]:
    """The status of each operation the devhost answers for; `answers` counts every outcome
    (status code or exception), so a campaign that saw none can say why."""
    out: dict[str, dict] = {}
    for op in ids:
        try:
            resp = bg.get(f"/api/operations/{op}", timeout=10)
        except requests.RequestException as exc:
            if answers is not None:
                answers[type(exc).__name__] += 1
            continue  # the devhost is down for a moment (killed on purpose)
        if answers is not None:
            answers[str(resp.status_code)] += 1
        if resp.status_code == 200:
            out[op] = resp.json()
    return out


def wait_while_moving(
    bg, ids: list[str], window: float, answers: Counter[str] | None = None
) -> tuple[dict[str, dict], list[str]]:
    """(final bodies, unfinished ids): polls the statuses while the campaign makes progress,
    and returns when all are final or nothing moved for `window` seconds."""
    pending = list(ids)
    final: dict[str, dict] = {}
    progress, moved_at = None, time.monotonic()
    while pending and time.monotonic() - moved_at < window:
        seen = statuses(bg, pending, answers)
        for op, body in seen.items():
            if body["status"] in FINAL:
                final[op] = body
        pending = [op for op in pending if op not in final]
        # Progress: an operation finished, or one of the others made another attempt.
        now = (len(final), sum(b.get("attempts", 0) for b in seen.values()))
        if now != progress:
            progress, moved_at = now, time.monotonic()
        if pending:
            time.sleep(1.0)
    return final, pending


def test_two_hundred_async_sends_survive_faults_and_a_killed_host_exactly_once(
    bg, sandbox, azurite
):
    started = time.monotonic()
    # The sandbox's explicit instant timing: 100 mails per mailbox at Exchange's 30 a minute
    # would be minutes of waiting, and every resume that meets a mail in transit is one more
    # backoff in a run bounded at 300 s on a loaded machine. What is tested here is exactly-once
    # under faults; resumes that meet the Outbox are tested in tests/functional.
    sandbox.instant()
    # Other tests of the session may have poisoned messages on purpose: count ours only.
    poisoned_before = queue_length(azurite.connection_string, "mail-send-poison")
    for spec in FAULTS:
        sandbox.add_fault(**spec)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda i: bg.post("/api/mail/send", json=request_body(i)), range(TOTAL))
            )
        assert [a.status_code for a in answers] == [202] * TOTAL
        ids = [a.json()["operationId"] for a in answers]
        sender_of = {op: SENDERS[i % 2] for i, op in enumerate(ids)}

        # Kill the host (SIGKILL) while the queue is still being worked, then start it again.
        sample = ids[:: TOTAL // 20]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            finished = [b for b in statuses(bg, sample).values() if b["status"] in FINAL]
            if finished:
                break
            time.sleep(0.2)
        killed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        bg.kill()
        bg.start()

        status_answers: Counter[str] = Counter()
        window = stall_window(bg)
        final, pending = wait_while_moving(bg, ids, window, status_answers)
    finally:
        applied = {
            (f["action"] if f["action"] != "status" else str(f["status"])): f["applied"]
            for f in sandbox.control("GET", "faults").json().get("value", [])
        }
        sandbox.clear_faults()

    boxes = Mailboxes(sandbox.url, sandbox.ca)
    copies: dict[str, int] = {}
    for sender in SENDERS:
        counts = sent_copies(boxes, sender)
        for op in ids:
            if sender_of[op] == sender and op in counts:
                copies[op] = counts[op]
    by_status: dict[str, int] = {}
    for body in final.values():
        by_status[body["status"]] = by_status.get(body["status"], 0) + 1
    poisoned = queue_length(azurite.connection_string, "mail-send-poison") - poisoned_before
    attempts = sum(body.get("attempts", 0) for body in final.values())
    done_at_kill = sum(1 for body in final.values() if body.get("finishedAt", "") < killed_at)
    print(
        f"\nfault campaign: {TOTAL} sends, statuses {by_status}, unfinished {len(pending)}, "
        f"done before the kill {done_at_kill}, attempts {attempts}, faults applied {applied}, "
        f"sent copies {sum(copies.values())} (ops with one copy "
        f"{sum(1 for c in copies.values() if c == 1)}, missing {TOTAL - len(copies)}, "
        f"duplicated {sum(1 for c in copies.values() if c > 1)}), poison queue {poisoned}, "
        f"status answers {dict(status_answers)}, "
        f"{time.monotonic() - started:.0f} s"
    )
    if pending:
        print(describe_stuck(azurite.connection_string, pending))
    assert not pending, f"{len(pending)} operations made no progress for {window:.0f} s"
    assert by_status == {"succeeded": TOTAL}
    assert len(copies) == TOTAL, "some mails were lost"
    assert all(c == 1 for c in copies.values()), "some mails were sent twice"
    assert poisoned == 0


def describe_stuck(connection_string: str, pending: list[str]) -> str:
    """Every unfinished operation's full record (the Table entity, private fields too) and the
    messages for it that its queue shows (visible ones: Storage cannot list invisible ones,
    whose count is in the queue's approximate length)."""
    import base64
    import json

    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueClient

    from shared.settings import OPERATIONS_TABLE
    from shared.work.table_store import TableOperationStore

    table = TableServiceClient.from_connection_string(connection_string)
    store = TableOperationStore(table.get_table_client(OPERATIONS_TABLE))
    queue = QueueClient.from_connection_string(connection_string, "mail-send")
    visible: dict[str, list[str]] = {}
    for message in queue.peek_messages(max_messages=32):
        try:
            op = json.loads(base64.b64decode(message.content))["operationId"]
        except (ValueError, KeyError):
            continue
        visible.setdefault(op, []).append(f"inserted {message.inserted_on}")
    lines = [
        f"queue mail-send: about {queue.get_queue_properties().approximate_message_count} "
        "messages (visible and invisible)"
    ]
    for op_id in pending:
        op = store.get(op_id)
        record = (
            {}
            if op is None
            else {
                "status": str(op.status),
                "attempts": op.attempts,
                "claimedUntil": op.claimed_until,
                "nextAttemptAt": op.next_attempt_at,
                "updatedAt": op.updated_at,
                "startedAt": op.started_at,
                "progress": op.progress,
                "error": None
                if op.error is None
                else {"code": op.error.code, "message": op.error.message},
                "hasEnvelope": op.envelope is not None,
            }
        )
        lines.append(
            f"unfinished {op_id}: {json.dumps(record)}; visible messages: {visible.get(op_id, [])}"
        )
    queue.close()
    return "\n".join(lines)
