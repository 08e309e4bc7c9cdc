"""Scale-out: a devhost with three instances (`--instances 3`, as three Flex instances) drains
the same queues against a sandbox that allows 4 concurrent requests per mailbox and a sending
rate, with the mailbox limits shared through this module's own Azurite.

Asserted from what the sandbox saw (GET /_sandbox/throttle) and what the mailboxes hold, not
from timings: never more than 4 requests in flight for the mailbox, never more submissions in
a sending window than the rate; a killed instance's slots carry an expiry no later than the
kill plus MAILBOX_SLOT_SECONDS and are taken over after it; with Azurite down the instances
fall back to per-instance limits (logged), and nothing is lost.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError

from devhost.local_settings import sandbox_values, write_local_settings
from devhost.services import Service, azurite_connection_string, spawn_azurite
from shared.settings import MAILBOX_LIMITS_TABLE, Settings
from shared.work.table_store import make_table_client
from tests.e2e.background_support import (
    GRAPH_RETRY_BUDGET_SECONDS,
    GRAPH_TIMEOUT_SECONDS,
    OP_PROPERTY,
    FastDevhost,
    finished,
    make_root,
    store_connections,
    wait_status,
)
from tests.functional.mailboxes import Mailboxes

pytestmark = pytest.mark.timeout(420)

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"
INSTANCES = 3
CONCURRENT = 4
SEND_RATE = 6  # per minute: the sends below need two windows
SENDS = 9
DRAFTS = 16
SLOT_SECONDS = 4.0
CLAIM_SECONDS = 15
LEASE_SECONDS = 4
DRAFT_DELAY_MS = 1500  # a slow Exchange backend: every instance wants the mailbox's slots


class ScaledDevhost(FastDevhost):
    """The fast e2e devhost, started with --instances 3."""

    def start(self) -> ScaledDevhost:
        if self.service and self.service.proc.poll() is None:
            return self
        from devhost.services import start_devhost

        env = {
            "DEVHOST_FUNCTION_KEY": self.key,
            "DEVHOST_QUEUE_LEASE_SECONDS": str(LEASE_SECONDS),
            **self.env,
        }
        self.service = start_devhost(
            settings=self.settings,
            root=self.root,
            state_dir=self.state,
            env=env,
            extra_args=["--instances", str(INSTANCES)],
            timeout=120,
        )
        return self

    def worker_pids(self) -> list[int]:
        assert self.service is not None
        text = "".join(self.service.output)
        return [int(p) for p in re.findall(r"instance \d+: pid (\d+)", text)]


@dataclass
class Storage:
    """This module's Azurite, kept on disk so it can be stopped and started again."""

    location: Path
    service: Service
    ports: dict[str, int]

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.service)

    def stop(self) -> None:
        self.service.stop()

    def start(self) -> None:
        self.service = spawn_azurite(location=self.location, ports=self.ports).wait_ready()


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    location = tmp_path_factory.mktemp("scale-azurite")
    service = spawn_azurite(location=location).wait_ready()
    ports = {
        k: int(service.info[k].rsplit(":", 1)[1].strip("/")) for k in ("blob", "queue", "table")
    }
    box = Storage(location, service, ports)
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="module")
def scaled(sandbox, storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledDevhost]:
    tmp = tmp_path_factory.mktemp("scale-devhost")
    settings = tmp / "local.settings.json"
    values = sandbox_values(
        sandbox_url=sandbox.url,
        ca_file=sandbox.ca,
        storage=storage.connection_string,
        devhost_port=None,
    )
    values.update(
        {
            "GRAPH_RETRY_BUDGET_SECONDS": str(GRAPH_RETRY_BUDGET_SECONDS),
            "GRAPH_TIMEOUT_SECONDS": str(GRAPH_TIMEOUT_SECONDS),
            "OPERATION_CLAIM_SECONDS": str(CLAIM_SECONDS),
            "MAILBOX_SENDS_PER_MINUTE": str(SEND_RATE),
            "MAILBOX_SLOT_SECONDS": str(SLOT_SECONDS),
        }
    )
    write_local_settings(settings, values, http_port=0)
    sandbox.reset()
    store_connections(sandbox.url, sandbox.ca)
    host = ScaledDevhost(settings, tmp / "state", sandbox.url, sandbox.ca)
    host.root = make_root(tmp)
    host.start()
    try:
        yield host
    finally:
        host.stop()
        host.http.close()


def mail(sender: str, subject: str, mode: str = "async") -> dict:
    return {
        "connection": "contoso.test",
        "from": sender,
        "to": [ANNA if sender != ANNA else BRAM],
        "subject": subject,
        "body": {"contentType": "text", "content": "Scale-out test."},
        "mode": mode,
    }


def by_operation(boxes: Mailboxes, mailbox: str, folder: str) -> dict[str, int]:
    """Operation id → messages in `folder` of `mailbox` carrying it."""
    data = boxes.get(
        f"users/{mailbox}/mailFolders/{folder}/messages",
        **{
            "$top": "1000",
            "$select": "id",
            "$expand": f"singleValueExtendedProperties($filter=id eq '{OP_PROPERTY}')",
        },
    )
    counts: dict[str, int] = {}
    for item in data.get("value", []):
        for prop in item.get("singleValueExtendedProperties") or []:
            counts[prop["value"]] = counts.get(prop["value"], 0) + 1
    return counts


def slot_rows(storage: Storage) -> list[dict]:
    table = make_table_client(
        Settings(storage_connection=storage.connection_string), MAILBOX_LIMITS_TABLE
    )
    try:
        return [dict(e) for e in table.list_entities() if str(e["RowKey"]).startswith("slot-")]
    except ResourceNotFoundError:
        return []  # no instance has claimed a slot yet


def held_by(rows: list[dict], pid: int, now: float) -> list[dict]:
    return [r for r in rows if r.get("holder", "").startswith(f"{pid}-") and r["expires"] > now]


def just_claimed(rows: list[dict], pid: int, now: float) -> list[dict]:
    """Slots `pid` claimed in the last half second: its (slow) request is still running."""
    return [r for r in held_by(rows, pid, now) if r["expires"] - SLOT_SECONDS > now - 0.5]


def test_three_instances_keep_one_mailboxs_limits_and_a_killed_one_frees_its_slots(
    scaled, sandbox, storage
):
    sandbox.reset()
    store_connections(sandbox.url, sandbox.ca)
    sandbox.control(
        "PATCH",
        "limits",
        json={"concurrentRequestsPerMailbox": CONCURRENT, "sendRatePerMinute": SEND_RATE},
    )
    sandbox.add_fault(
        method="POST",
        path=r"^/v1\.0/users/[^/]+/messages$",
        action="delay",
        delayMs=DRAFT_DELAY_MS,
    )
    sandbox.control("DELETE", "throttle")
    workers = scaled.worker_pids()
    assert len(workers) == INSTANCES - 1

    requests = [("/api/mail/draft", mail(ADMIN, f"draft {i}")) for i in range(DRAFTS)]
    requests += [("/api/mail/send", mail(ADMIN, f"send {i}")) for i in range(SENDS)]
    with ThreadPoolExecutor(8) as pool:
        posting = pool.map(lambda r: scaled.post(r[0], json=r[1]), requests)

        # Meanwhile (the workers drain the queue while the requests still come in): kill a
        # worker instance (SIGKILL, as a crashed Flex instance) while it holds slots.
        deadline = time.monotonic() + 60
        held: list[dict] = []
        victim = 0
        while time.monotonic() < deadline and not held:
            rows = slot_rows(storage)
            for victim in workers:
                held = just_claimed(rows, victim, time.time())
                if held:
                    break
        assert held, "no worker instance ever held a slot of the mailbox"
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        left = {r["RowKey"]: r for r in held_by(slot_rows(storage), victim, 0)}
        answers = list(posting)
    assert left, "its slots vanished"
    assert [a.status_code for a in answers] == [202] * len(requests), answers[0].text
    ids = [a.json()["operationId"] for a in answers]
    # Nothing renews a dead instance's slot: each is free at the latest a slot's life after.
    assert all(r["expires"] <= killed_at + SLOT_SECONDS + 0.5 for r in left.values())

    # Every operation ends; the drafts and the two windows of sends are done by the others.
    statuses = {op: wait_status(scaled, op, finished, timeout=240) for op in ids}
    assert {op: s.get("status") for op, s in statuses.items()} == dict.fromkeys(ids, "succeeded")

    # The dead instance's slots are free: never renewed after the kill (so expired), and a
    # survivor that took one over (when it needed a fourth slot) did so only once it expired.
    rows = {r["RowKey"]: r for r in slot_rows(storage)}
    for row, before in left.items():
        after = rows[row]
        if after["holder"] == before["holder"]:
            assert after["expires"] == before["expires"] < time.time(), row
            continue
        taken_at = after["expires"] - SLOT_SECONDS if after["holder"] else None
        assert taken_at is None or taken_at >= before["expires"] - 0.5, row

    seen = sandbox.control("GET", "throttle").json()
    [admin] = [m for m in seen["mailboxes"] if m["mailbox"] == ADMIN]
    assert admin["peakConcurrent"] <= CONCURRENT, admin
    assert admin["refused"] == {}, admin  # not one 429 from the mailbox's limits
    [sender] = [s for s in seen["senders"] if s["mailbox"] == ADMIN]
    assert sender["submissions"] == SENDS and sender["peakPerWindow"] <= SEND_RATE, sender
    assert sender["refused"] == 0, sender

    boxes = Mailboxes(sandbox.url, sandbox.ca)
    boxes.settle(ADMIN)
    sent = by_operation(boxes, ADMIN, "sentitems")
    drafts = by_operation(boxes, ADMIN, "drafts")
    assert [sent.get(op) for op in ids[DRAFTS:]] == [1] * SENDS
    assert [drafts.get(op) for op in ids[:DRAFTS]] == [1] * DRAFTS


def test_with_azurite_down_the_limits_are_per_instance_logged_and_nothing_is_lost(
    scaled, sandbox, storage
):
    sandbox.reset()
    store_connections(sandbox.url, sandbox.ca)
    sandbox.instant()
    queued = [scaled.post("/api/mail/send", json=mail(BRAM, f"before {i}")) for i in range(3)]
    assert [a.status_code for a in queued] == [202] * 3
    storage.stop()
    try:
        direct = [
            scaled.post("/api/mail/send", json=mail(ANNA, f"during {i}", mode="sync"))
            for i in range(3)
        ]
    finally:
        storage.start()
    # Sync work goes on under per-instance limits (said in the log); what was queued before
    # waits in the queue for storage to come back.
    assert [a.status_code for a in direct] == [200] * 3, direct[0].text
    assert "per-instance fallback" in scaled.logs()
    ids = [a.json()["operationId"] for a in queued]
    statuses = [wait_status(scaled, op, finished, timeout=120).get("status") for op in ids]
    assert statuses == ["succeeded"] * 3

    boxes = Mailboxes(sandbox.url, sandbox.ca)
    boxes.settle(BRAM)
    sent = by_operation(boxes, BRAM, "sentitems")
    assert [sent.get(op) for op in ids] == [1] * 3
    during = {m["subject"] for m in boxes.messages(ANNA, "sentitems")}
    assert {f"during {i}" for i in range(3)} <= during
