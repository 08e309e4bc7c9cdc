"""The send-and-file fault campaign: 52 queued sends with `fileTo` survive dropped `/send`
answers, throttled moves, a 3 s wait for the Sent Items copy, mail held in the Outbox over the
sending rate, and a devhost killed between the send and the move. Every mail ends as exactly
one categorized copy in the case folder (none left in Sent Items) and one delivery.

The wait has no wall-clock bound of its own (the house pattern of test_fault_campaign.py): it
lasts while the campaign makes progress, and ends when nothing moved for longer than the
lifecycle's policy allows; whatever is unfinished then is printed in full.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.graph.retry import backoff
from shared.operations.filing import MAX_WAIT_SECONDS
from shared.settings import Settings
from shared.work.host import queue_host
from shared.work.lifecycle import BUSY_RECHECK_SECONDS
from tests.conftest import q
from tests.e2e.background_support import (
    CLAIM_SECONDS,
    GRAPH_RETRY_BUDGET_SECONDS,
    GRAPH_TIMEOUT_SECONDS,
    LEASE_SECONDS,
    OP_PROPERTY,
    bg_fixture,  # noqa: F401 - provides the `bg` fixture to this module
    queue_length,
)
from tests.e2e.test_fault_campaign import describe_stuck, wait_while_moving
from tests.functional.mailboxes import Mailboxes

pytestmark = pytest.mark.timeout(1200)  # a backstop only; the end is the stall window

SENDERS = ("administratie@contoso.test", "anna@contoso.test")
RECIPIENT = "bram@contoso.test"
TOTAL = 52
CASE = ("Dossiers", "2026-042")
# Over the sending rate (26 mails per mailbox at 20 a minute): the last ones wait in the
# Outbox for up to a minute, as Exchange holds them (`sendRateMode: hold`).
LIMITS = {"sentCopyDelayMs": 3000, "sendRatePerMinute": 20, "sendRateMode": "hold"}
FAULTS = [
    {"method": "POST", "path": r"/users/[^/]+/messages/[^/]+/send$",
     "action": "accept_then_drop", "probability": 0.25},
    {"method": "POST", "path": r"/users/[^/]+/messages/[^/]+/move$", "action": "status",
     "status": 429, "retryAfter": 1, "probability": 0.4},
]  # fmt: skip
CALLS_PER_ATTEMPT = 10  # the send's calls, the copy look-ups, the folder walk, move, marks


def stall_window(bg) -> float:
    """The longest an unfinished operation may go without a new attempt, from the policy: an
    attempt's calls plus the retry budget, then the longest pause before the next one (a
    Pending re-schedule, a host retry, or after the kill the lease, the claim and a busy
    re-check), twice over for a loaded machine."""
    host = queue_host(Settings.load(env={}), bg.root)
    attempt = CALLS_PER_ATTEMPT * GRAPH_TIMEOUT_SECONDS + GRAPH_RETRY_BUDGET_SECONDS
    between = max(
        backoff(99),
        MAX_WAIT_SECONDS,
        host.visibility_timeout + host.max_polling_interval,
        LEASE_SECONDS + CLAIM_SECONDS + min(BUSY_RECHECK_SECONDS, CLAIM_SECONDS + 1),
    )
    return 2 * (attempt + between)


def request_body(i: int, run: str) -> dict:
    return {
        "connection": "contoso.test",
        "from": SENDERS[i % 2],
        "to": [RECIPIENT],
        "subject": f"case-file {i}",
        "body": {"contentType": "text", "content": f"Mail {i} of the filing campaign."},
        "fileTo": {
            "destination": "Inbox/" + "/".join(CASE),
            "createMissingFolders": True,
            "categories": ["Verwerkt"],
        },
        "mode": "async",
        "idempotencyKey": f"filing-{run}-{i}",
    }


def sent_not_filed(connection_string: str, ids: list[str]) -> int:
    """Operations whose progress shows the mail sent but not yet filed (read from the store)."""
    from azure.data.tables import TableServiceClient

    from shared.settings import OPERATIONS_TABLE
    from shared.work.table_store import TableOperationStore

    table = TableServiceClient.from_connection_string(connection_string)
    store = TableOperationStore(table.get_table_client(OPERATIONS_TABLE))
    count = 0
    for op_id in ids:
        op = store.get(op_id)
        if op is not None and "sent" in op.progress and "filed" not in op.progress:
            count += 1
    return count


def copies_by_operation(boxes: Mailboxes, mailbox: str, folder: str) -> dict[str, list[dict]]:
    """Operation id → the messages in `folder` carrying it."""
    url = f"users/{mailbox}/mailFolders/{q(folder)}/messages"
    params = {
        "$top": "1000",
        "$select": "id,categories,subject",
        "$expand": f"singleValueExtendedProperties($filter=id eq '{OP_PROPERTY}')",
    }
    out: dict[str, list[dict]] = {}
    for item in boxes.get(url, **params).get("value", []):
        for prop in item.get("singleValueExtendedProperties") or []:
            out.setdefault(prop["value"], []).append(item)
    return out


def case_folder(boxes: Mailboxes, mailbox: str) -> str | None:
    parent = "inbox"
    for name in CASE:
        children = boxes.get(f"users/{mailbox}/mailFolders/{q(parent)}/childFolders")["value"]
        match = [c["id"] for c in children if c["displayName"] == name]
        if len(match) != 1:
            return None
        parent = match[0]
    return parent


def test_fifty_two_send_and_file_operations_survive_faults_and_a_kill_exactly_once(
    bg, sandbox, azurite
):
    started = time.monotonic()
    limits_before = sandbox.limits()
    sandbox.control("PATCH", "limits", json=LIMITS)
    poisoned_before = queue_length(azurite.connection_string, "mail-send-poison")
    for spec in FAULTS:
        sandbox.add_fault(**spec)
    killed_with = 0
    run = uuid.uuid4().hex[:8]
    try:
        try:
            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(
                        lambda i: bg.post("/api/mail/send", json=request_body(i, run)), range(TOTAL)
                    )
                )
        except Exception:
            print("the devhost's log when a request failed:\n" + bg.logs()[-8000:])
            raise
        assert [a.status_code for a in answers] == [202] * TOTAL, [a.text for a in answers]
        ids = [a.json()["operationId"] for a in answers]
        assert len(set(ids)) == TOTAL
        sender_of = {op: SENDERS[i % 2] for i, op in enumerate(ids)}

        # Kill the host (SIGKILL) while mails are sent but not yet filed, then start it again.
        deadline = time.monotonic() + stall_window(bg)
        while time.monotonic() < deadline:
            killed_with = sent_not_filed(azurite.connection_string, ids)
            if killed_with >= 5:
                break
            time.sleep(0.2)
        bg.kill()
        bg.start()

        window = stall_window(bg)
        final, pending = wait_while_moving(bg, ids, window)
    finally:
        applied = {
            (f["action"] if f["action"] != "status" else str(f["status"])): f["applied"]
            for f in sandbox.control("GET", "faults").json().get("value", [])
        }
        sandbox.clear_faults()
        sandbox.control("PATCH", "limits", json={k: limits_before[k] for k in LIMITS})

    boxes = Mailboxes(sandbox.url, sandbox.ca)
    in_case: dict[str, list[dict]] = {}
    in_sent: dict[str, list[dict]] = {}
    for sender in SENDERS:
        boxes.settle(sender)
        folder = case_folder(boxes, sender)
        assert folder, f"{sender} has no single {'/'.join(CASE)} folder"
        for op, items in copies_by_operation(boxes, sender, folder).items():
            if sender_of.get(op) == sender:
                in_case[op] = items
        for op, items in copies_by_operation(boxes, sender, "sentitems").items():
            if sender_of.get(op) == sender:
                in_sent[op] = items
    delivered: dict[str, int] = {}
    for item in boxes.messages(RECIPIENT, "inbox"):
        if item["subject"].startswith("case-file "):
            delivered[item["subject"]] = delivered.get(item["subject"], 0) + 1
    by_status: dict[str, int] = {}
    for body in final.values():
        by_status[body["status"]] = by_status.get(body["status"], 0) + 1
    poisoned = queue_length(azurite.connection_string, "mail-send-poison") - poisoned_before
    print(f"\nfiling campaign finished its wait after {time.monotonic() - started:.0f} s")
    print(
        f"\nfiling campaign: {TOTAL} send-and-file, statuses {by_status}, unfinished "
        f"{len(pending)}, sent-not-filed at the kill {killed_with}, attempts "
        f"{sum(b.get('attempts', 0) for b in final.values())}, faults applied {applied}, "
        f"filed {sum(len(v) for v in in_case.values())} (missing {TOTAL - len(in_case)}, "
        f"duplicated {sum(1 for v in in_case.values() if len(v) > 1)}), left in Sent Items "
        f"{sum(len(v) for v in in_sent.values())}, deliveries {sum(delivered.values())}, "
        f"poison queue {poisoned}, {time.monotonic() - started:.0f} s"
    )
    if pending:
        print(describe_stuck(azurite.connection_string, pending))
    assert killed_with >= 1, "the host was not killed between a send and its filing"
    assert not pending, f"{len(pending)} operations made no progress for {window:.0f} s"
    assert by_status == {"succeeded": TOTAL}
    assert len(in_case) == TOTAL, "some mails were not filed (lost)"
    assert all(len(v) == 1 for v in in_case.values()), "some mails were filed twice"
    assert all(v[0]["categories"] == ["Verwerkt"] for v in in_case.values())
    assert in_sent == {}, "some copies were left in Sent Items"
    assert sorted(delivered.values()) == [1] * TOTAL, "a mail was lost or sent twice"
    assert {final[op]["result"]["messageId"] for op in ids} == {
        v[0]["id"] for v in in_case.values()
    }
    assert poisoned == 0
