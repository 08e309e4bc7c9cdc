"""The shared mailbox limits on Azurite's Table Storage, several "instances" (limiter objects
with their own copies and background threads) in one process: slots, expiry of a dead
instance's slots, a shared pause, the shared send window, and the fallback when storage is
down. The same against several devhost processes: tests/e2e/test_scale_out.py."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid

import pytest
import requests

from shared.errors import MailboxBusy, Throttled
from shared.graph import send_window
from shared.graph.client import GraphClient
from shared.graph.limiter import MailboxGate, MailboxPolicy, Scope
from shared.graph.shared_limits import TableMailboxLimits
from shared.settings import Settings
from shared.work.table_store import make_table_client
from tests.functional.conftest import until
from tests.functional.mailboxes import Mailboxes

GRAPH_SCOPE = "https://graph.microsoft.com/.default"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def table_name() -> str:
    return f"limits{uuid.uuid4().hex[:12]}"


@pytest.fixture
def instances(azurite, table_name):
    settings = Settings(storage_connection=azurite.connection_string)

    def make(**kw) -> TableMailboxLimits:
        return TableMailboxLimits(
            lambda: make_table_client(settings, table_name, retry_total=1), **kw
        )

    return make


def scope() -> Scope:
    return Scope("tenant", "app", f"box-{uuid.uuid4().hex[:8]}@contoso.test")


def slots(azurite, table_name: str) -> list[dict]:
    table = make_table_client(Settings(storage_connection=azurite.connection_string), table_name)
    return [dict(e) for e in table.list_entities() if str(e["RowKey"]).startswith("slot-")]


def test_three_instances_never_hold_more_than_the_limit_together(instances, azurite, table_name):
    limits = [instances() for _ in range(3)]
    box, policy = scope(), MailboxPolicy(concurrent=4)
    lock = threading.Lock()
    state = {"active": 0, "peak": 0, "done": 0}

    def work(limiter: TableMailboxLimits) -> None:
        for _ in range(8):
            ticket = limiter.enter(box, policy, max_wait=60)
            with lock:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
            time.sleep(0.005)
            with lock:
                state["active"] -= 1
                state["done"] += 1
            ticket.release()

    threads = [threading.Thread(target=work, args=(limits[i % 3],)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert state["done"] == 72
    assert state["peak"] <= 4
    # Every request was counted towards the app+mailbox budget, on the slot that let it through.
    import json

    rows = slots(azurite, table_name)
    assert len(rows) == 4
    assert sum(sum(json.loads(r["calls"]).values()) for r in rows) == 72


def test_a_dead_instances_slots_are_free_once_their_expiry_passes(instances, azurite, table_name):
    dead = instances(slot_seconds=2.0)
    dead._ensure_worker = lambda: None  # a killed instance renews and releases nothing
    box, policy = scope(), MailboxPolicy(concurrent=4)
    claimed_at = time.time()
    held = [dead.enter(box, policy, max_wait=5) for _ in range(4)]
    assert len(held) == 4
    expiries = [r["expires"] for r in slots(azurite, table_name)]
    assert all(e <= claimed_at + 2.0 + 1.0 for e in expiries)  # claim time + slot_seconds

    survivor = instances(slot_seconds=2.0)
    with pytest.raises(MailboxBusy):
        survivor.enter(box, policy, max_wait=0)
    taken = [survivor.enter(box, policy, max_wait=30) for _ in range(4)]
    assert {r["holder"].split(":")[0] for r in slots(azurite, table_name)} == {survivor.instance}
    assert time.time() >= max(expiries)
    for ticket in taken:
        ticket.release()


def test_a_pause_one_instance_was_given_holds_the_others(instances, azurite, table_name):
    first, second = instances(), instances()
    box, policy = scope(), MailboxPolicy(concurrent=4)
    first.enter(box, policy, max_wait=5).release()
    second.enter(box, policy, max_wait=5).release()  # its copy of the slots is current
    first.pause(box, 30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = slots(azurite, table_name)
        if len(rows) == 4 and all(r.get("notBefore", 0) > time.time() + 20 for r in rows):
            break
        time.sleep(0.05)
    with pytest.raises(MailboxBusy) as caught:
        second.enter(box, policy, max_wait=1)
    assert caught.value.retry_after >= 20


def test_a_429_with_retry_after_one_instance_got_pauses_the_mailbox_for_another(
    instances, azurite, table_name, fresh_sandbox
):
    boxes = Mailboxes(fresh_sandbox.url, fresh_sandbox.ca)
    token = boxes.app.acquire_token_for_client([GRAPH_SCOPE])["access_token"]
    first, second = instances(), instances()
    policy = MailboxPolicy(concurrent=4, sends_per_minute=0)
    path = "users/anna@contoso.test/mailFolders/inbox"
    fresh_sandbox.add_fault(
        method="GET", path=r"^/v1\.0/users/anna@contoso\.test/mailFolders/inbox$",
        action="status", status=429, retryAfter=30, times=1,
    )  # fmt: skip
    session = requests.Session()
    session.verify = fresh_sandbox.ca

    def client(limits: TableMailboxLimits) -> GraphClient:
        gate = MailboxGate(limits, "tenant", "app", policy=policy, max_wait=1)
        return GraphClient(
            f"{fresh_sandbox.url}/v1.0",
            lambda **_: token,
            session=session,
            retry_budget=1,
            limits=gate,
        )

    with pytest.raises(Throttled) as refused:
        client(first).get(path)  # Graph's 429 with Retry-After: 30, to this instance
    assert not isinstance(refused.value, MailboxBusy)
    until(lambda: [r for r in slots(azurite, table_name) if r.get("notBefore", 0) > time.time()])
    # The other instance does not call Graph for the mailbox (the fault is used up: a call
    # would succeed); it is told to come back after the pause instead.
    with pytest.raises(MailboxBusy) as caught:
        client(second).get(path)
    assert caught.value.retry_after >= 20
    session.close()


def test_the_send_window_is_one_for_every_instance(instances):
    limits = [instances() for _ in range(3)]
    box, policy = scope(), MailboxPolicy(sends_per_minute=5)
    now = time.time()
    departures = []
    for i in range(12):
        decision = limits[i % 3].book_send(box, policy, f"op-{i}", max_wait=5, book_ahead=True)
        assert decision.at is not None
        departures.append(decision.at)
    span = send_window.SPAN_SECONDS
    assert max(sum(1 for t in departures if s <= t < s + span) for s in departures) == 5
    assert sorted(departures)[5] >= now + span - 1


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_storage_down_falls_back_to_per_instance_limits_and_says_so(caplog):
    port = closed_port()
    down = Settings(
        storage_connection=(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    )
    limiter = TableMailboxLimits(
        lambda: make_table_client(down, "mailboxlimits", retry_total=0, connection_timeout=2)
    )
    box, policy = scope(), MailboxPolicy(concurrent=2, sends_per_minute=2)
    with caplog.at_level(logging.WARNING, logger="shared.graph.shared_limits"):
        held = [limiter.enter(box, policy, max_wait=1) for _ in range(2)]
        with pytest.raises(MailboxBusy):
            limiter.enter(box, policy, max_wait=0)  # the per-instance limit still holds
        for ticket in held:
            ticket.release()
        first = limiter.book_send(box, policy, "a", max_wait=5, book_ahead=False)
        assert first.at is not None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # said once per outage, not per call
    assert "per-instance fallback" in warnings[0]
