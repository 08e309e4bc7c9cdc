"""Scale-out rows: three devhost instances (`--instances 3`) draining one set of queues.

(a) 1 mailbox × 150 queued sends, the sandbox's sending rate raised to 75/min so the limits
    allow them in 60 s: throughput against that, and Graph 429s against Graph requests, with
    the shared limits; once with `sendRateMode: reject`, once with `hold`.
(b) the same with the per-instance limiter the app had before (MAILBOX_LIMITS=instance).
(c) 4 mailboxes × (sends, drafts, moves) mixed.
(d) the shared limiter's added latency per Graph call on an idle mailbox, vs per instance.
Every row counts lost, duplicated and poisoned operations (0 is the goal in all).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench import harness
from bench.stats import percentile, row, unavailable
from bench.throughput import OP_PROPERTY, _app_setting_names, _graph_token, minimum_seconds
from devhost.services import ROOT, azurite_connection_string, start_azurite, start_devhost

INSTANCES = 3
ADMIN = "administratie@contoso.test"
MAILBOXES = (ADMIN, "anna@contoso.test", "bram@contoso.test", "carla@contoso.test")
RECIPIENT = "svc-docuflow@contoso.test"
SENDS = 150
RATE = 75  # per minute: 150 sends need one window after the first burst (60 s)
CONCURRENT = 4
DEADLINE_SECONDS = 240.0
MIXED = {"send": 12, "draft": 8, "move": 8}  # per mailbox
LATENCY_CALLS = 150
GOAL_A = "≥ 0.9 of the limit, 429s ≤ 2 %, 0 lost/dup/poison"
GOAL_C = "0 lost, 0 duplicated, 0 poison"


def _session(box: harness.Sandbox) -> requests.Session:
    http = requests.Session()
    http.verify = box.ca
    http.headers["Authorization"] = f"Bearer {_graph_token(box)}"
    return http


def _by_operation(box: harness.Sandbox, mailbox: str, folder: str) -> dict[str, int]:
    http = _session(box)
    url: str | None = f"{box.url}/v1.0/users/{mailbox}/mailFolders/{folder}/messages"
    params: dict[str, str] | None = {
        "$top": "1000",
        "$select": "id",
        "$expand": f"singleValueExtendedProperties($filter=id eq '{OP_PROPERTY}')",
    }
    counts: dict[str, int] = {}
    while url:
        data = http.get(url, params=params, timeout=60).json()
        for item in data.get("value", []):
            for prop in item.get("singleValueExtendedProperties") or []:
                counts[prop["value"]] = counts.get(prop["value"], 0) + 1
        url, params = data.get("@odata.nextLink"), None
    http.close()
    return counts


def _settle(box: harness.Sandbox, mailboxes: tuple[str, ...]) -> None:
    http = _session(box)
    deadline = time.monotonic() + 60
    for mailbox in mailboxes:
        url = f"{box.url}/v1.0/users/{mailbox}/mailFolders/outbox/messages"
        while time.monotonic() < deadline and http.get(url, timeout=30).json().get("value"):
            time.sleep(0.5)
    http.close()


class Cluster:
    """A devhost with three instances on Azurite, against `box`, with these app settings."""

    def __init__(self, box: harness.Sandbox, storage: str, workdir: Path, extra: dict) -> None:
        from devhost.local_settings import write_local_settings

        settings = workdir / "local.settings.json"
        values = {k: box.env[k] for k in _app_setting_names(box)}
        values.update({"AzureWebJobsStorage": storage, **extra})
        write_local_settings(settings, values, http_port=0)
        self.key = secrets.token_urlsafe(24)
        self.service = start_devhost(
            settings=settings,
            root=ROOT,
            state_dir=workdir / "state",
            env={"DEVHOST_FUNCTION_KEY": self.key},
            extra_args=["--instances", str(INSTANCES)],
            timeout=180,
        )
        self.http = requests.Session()
        self.http.headers["x-functions-key"] = self.key
        self.base = self.service.info["url"]

    def post(self, path: str, body: dict) -> str:
        resp = self.http.post(f"{self.base}{path}", json=body, timeout=60)
        if resp.status_code != 202:
            raise RuntimeError(f"{path} answered {resp.status_code}: {resp.text[:300]}")
        return resp.json()["operationId"]

    def statuses(self, ids: list[str]) -> dict[str, str]:
        out = {}
        for op in ids:
            body = self.http.get(f"{self.base}/api/operations/{op}", timeout=30).json()
            out[op] = str(body.get("status"))
        return out

    def wait(self, ids: list[str], deadline: float) -> dict[str, str]:
        final = {"succeeded", "failed", "parked", "poisoned"}
        pending = list(ids)
        done: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for op, status in self.statuses(pending[:50]).items():
                if status in final:
                    done[op] = status
            pending = [op for op in pending if op not in done]
            if pending:
                time.sleep(1.0)
        done.update(self.statuses(pending))
        return done

    def close(self) -> None:
        self.http.close()
        self.service.stop()


def _send(sender: str, i: int) -> dict:
    return {
        "connection": harness.CONNECTION,
        "from": sender,
        "to": [RECIPIENT],
        "subject": f"scale {i}",
        "body": {"contentType": "text", "content": "Scale-out benchmark message."},
        "mode": "async",
    }


def _graph_log(box: harness.Sandbox, since: int) -> list[dict]:
    entries, _ = box.graph_entries(since)
    return entries


def one_mailbox(cluster: Cluster, box: harness.Sandbox, mode: str) -> dict[str, Any]:
    """150 queued sends from one mailbox; the sandbox's send rate in `mode`."""
    box.control("POST", "reset")
    from devhost.bootstrap import store_sandbox_connection

    store_sandbox_connection(box.url, box.ca)
    box.limits(requestsPer10Minutes=0, sentCopyDelayMs=0)
    box.limits(
        concurrentRequestsPerMailbox=CONCURRENT,
        sendRatePerMinute=RATE,
        sendRateMode=mode,
        requestsPer10Minutes=10_000,
    )
    box.control("DELETE", "throttle")
    since = box.last_seq()
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(lambda i: cluster.post("/api/mail/send", _send(ADMIN, i)), range(SENDS))
        )
    statuses = cluster.wait(ids, started + DEADLINE_SECONDS)
    entries = _graph_log(box, since)
    sends = [
        e for e in entries if e["method"] == "POST" and e["status"] == 202 and "/send" in e["path"]
    ]
    times = sorted(e["time"] for e in sends)
    import datetime as dt

    first = min(dt.datetime.fromisoformat(e["time"]) for e in entries) if entries else None
    last = dt.datetime.fromisoformat(times[-1]) if times else None
    _settle(box, (ADMIN,))
    copies = _by_operation(box, ADMIN, "sentitems")
    seen = box.control("GET", "throttle")
    box.limits(sendRatePerMinute=None, concurrentRequestsPerMailbox=0)
    return {
        "mode": mode,
        "total": SENDS,
        "sent": len(sends),
        "elapsed": (last - first).total_seconds() if first and last else None,
        "graphRequests": len(entries),
        "graph429": sum(1 for e in entries if e["status"] == 429),
        "lost": sum(1 for op in ids if copies.get(op, 0) == 0),
        "duplicated": sum(copies.get(op, 0) - 1 for op in ids if copies.get(op, 0) > 1),
        "poisoned": sum(1 for s in statuses.values() if s == "poisoned"),
        "statuses": {s: list(statuses.values()).count(s) for s in set(statuses.values())},
        "throttle": seen,
    }


def mixed(cluster: Cluster, box: harness.Sandbox) -> dict[str, Any]:
    """4 mailboxes × sends, drafts and moves at once, Exchange's own limits (30 sends/min)."""
    box.control("POST", "reset")
    from devhost.bootstrap import store_sandbox_connection

    store_sandbox_connection(box.url, box.ca)
    box.limits(sentCopyDelayMs=0)
    box.limits(
        concurrentRequestsPerMailbox=CONCURRENT, sendRatePerMinute=30, requestsPer10Minutes=10_000
    )
    http = _session(box)
    targets: dict[str, list[str]] = {}
    for mailbox in MAILBOXES:
        url = f"{box.url}/v1.0/users/{mailbox}/messages"
        targets[mailbox] = [
            http.post(url, json={"subject": f"to move {i}"}, timeout=30).json()["id"]
            for i in range(MIXED["move"])
        ]
    http.close()
    box.control("DELETE", "throttle")
    since = box.last_seq()
    started = time.monotonic()
    jobs: list[tuple[str, str, dict]] = []
    for mailbox in MAILBOXES:
        jobs += [("send", mailbox, _send(mailbox, i)) for i in range(MIXED["send"])]
        jobs += [
            ("draft", mailbox, {**_send(mailbox, i), "subject": f"draft {i}"})
            for i in range(MIXED["draft"])
        ]
        jobs += [
            (
                "move",
                mailbox,
                {
                    "connection": harness.CONNECTION,
                    "mailbox": mailbox,
                    "messageId": message_id,
                    "destination": "archive",
                    "mode": "async",
                },
            )
            for message_id in targets[mailbox]
        ]
    paths = {"send": "/api/mail/send", "draft": "/api/mail/draft", "move": "/api/mail/move"}
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda j: cluster.post(paths[j[0]], j[2]), jobs))
    statuses = cluster.wait(ids, started + DEADLINE_SECONDS)
    elapsed = time.monotonic() - started
    entries = _graph_log(box, since)
    _settle(box, MAILBOXES)
    lost = duplicated = 0
    for mailbox in MAILBOXES:
        sent = _by_operation(box, mailbox, "sentitems")
        drafts = _by_operation(box, mailbox, "drafts")
        for (kind, owner, _), op in zip(jobs, ids, strict=True):
            if owner != mailbox or kind == "move":
                continue
            n = (sent if kind == "send" else drafts).get(op, 0)
            lost += n == 0
            duplicated += max(0, n - 1)
        http = _session(box)
        archived = http.get(
            f"{box.url}/v1.0/users/{mailbox}/mailFolders/archive/messages",
            params={"$top": "1000", "$select": "subject"},
            timeout=30,
        ).json()["value"]
        http.close()
        lost += MIXED["move"] - sum(1 for m in archived if m["subject"].startswith("to move"))
    seen = box.control("GET", "throttle")
    box.limits(sendRatePerMinute=None, concurrentRequestsPerMailbox=0)
    return {
        "operations": len(ids),
        "elapsed": elapsed,
        "graphRequests": len(entries),
        "graph429": sum(1 for e in entries if e["status"] == 429),
        "lost": lost,
        "duplicated": duplicated,
        "poisoned": sum(1 for s in statuses.values() if s == "poisoned"),
        "statuses": {s: list(statuses.values()).count(s) for s in set(statuses.values())},
        "peakConcurrent": max((m["peakConcurrent"] for m in seen["mailboxes"]), default=0),
    }


def latency(box: harness.Sandbox, storage: str) -> dict[str, Any]:
    """Per Graph call on an idle mailbox: shared limiter vs per-instance, interleaved."""
    from shared.graph.client import GraphClient
    from shared.graph.limiter import InstanceLimits, MailboxGate
    from shared.graph.shared_limits import TableMailboxLimits
    from shared.settings import MAILBOX_LIMITS_TABLE, Settings
    from shared.work.table_store import make_table_client

    box.control("POST", "reset")
    from devhost.bootstrap import store_sandbox_connection

    store_sandbox_connection(box.url, box.ca)
    token = _graph_token(box)
    settings = Settings(storage_connection=storage)
    kinds = {
        "shared": TableMailboxLimits(
            lambda: make_table_client(settings, MAILBOX_LIMITS_TABLE, retry_total=1)
        ),
        "instance": InstanceLimits(pacing=False),
    }
    session = requests.Session()
    session.verify = box.ca
    clients = {
        name: GraphClient(
            f"{box.url}/v1.0",
            lambda **_: token,
            session=session,
            limits=MailboxGate(limits, "tenant", "bench-app"),
        )
        for name, limits in kinds.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in clients}
    path = "users/anna@contoso.test/mailFolders/inbox"
    for name in clients:  # warm up: connection pool, table, first read of the slots
        for _ in range(10):
            clients[name].get(path)
    for _ in range(LATENCY_CALLS):
        for name, client in clients.items():
            started = time.perf_counter()
            client.get(path)
            samples[name].append((time.perf_counter() - started) * 1000)
    session.close()
    return {
        name: {"p50": percentile(v, 50), "p99": percentile(v, 99)} for name, v in samples.items()
    }


def _a_row(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    if not result["elapsed"]:
        return [unavailable(name, f"nothing was sent: {result['statuses']}", GOAL_A)]
    achieved = (result["total"] - result["lost"]) / result["elapsed"] * 60
    best = result["total"] / minimum_seconds(result["total"], RATE) * 60
    share = result["graph429"] / max(1, result["graphRequests"]) * 100
    out = row(
        name, achieved, "sends/min", baseline=best, goal=GOAL_A, limit=0.9, higher_is_better=True
    )
    clean = result["lost"] == result["duplicated"] == result["poisoned"] == 0
    out["met"] = bool(out["met"]) and share <= 2.0 and clean
    out["name"] += (
        f" — 429s {result['graph429']}/{result['graphRequests']} ({share:.1f} %), lost "
        f"{result['lost']}, dup. {result['duplicated']}, poison {result['poisoned']}"
    )
    return [out]


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    azurite = start_azurite()
    details: dict[str, Any] = {}
    try:
        storage = azurite_connection_string(azurite)
        with (
            harness.sandbox(storage=storage) as box,
            tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp,
        ):
            shared = Cluster(
                box, storage, Path(tmp) / "shared", {"MAILBOX_SENDS_PER_MINUTE": str(RATE)}
            )
            try:
                details["a"] = one_mailbox(shared, box, "reject")
                details["a-hold"] = one_mailbox(shared, box, "hold")
                details["c"] = mixed(shared, box)
            finally:
                shared.close()
            baseline = Cluster(box, storage, Path(tmp) / "instance", {"MAILBOX_LIMITS": "instance"})
            try:
                details["b"] = one_mailbox(baseline, box, "reject")
            finally:
                baseline.close()
            details["d"] = latency(box, storage)
    finally:
        azurite.stop()
    for key in ("a", "a-hold", "b", "c"):
        slim = {k: v for k, v in details[key].items() if k != "throttle"}
        print(f"    scale-out {key}: {json.dumps(slim)}", flush=True)
    prefix = f"{INSTANCES} instances"
    rows += _a_row(f"(a) {prefix}, 1 mailbox × {SENDS} sends, shared limits", details["a"])
    rows += _a_row(
        f"(a) {prefix}, 1 mailbox × {SENDS} sends, shared limits, sendRateMode hold",
        details["a-hold"],
    )
    rows += _a_row(
        f"(b) {prefix}, 1 mailbox × {SENDS} sends, per-instance limiter (before)", details["b"]
    )
    c = details["c"]
    share = c["graph429"] / max(1, c["graphRequests"]) * 100
    out = row(
        f"(c) {prefix} × 4 mailboxes mixed send/draft/move ({c['operations']} ops, "
        f"{c['elapsed']:.0f} s) — lost {c['lost']}, dup. {c['duplicated']}, poison "
        f"{c['poisoned']}, peak concurrent {c['peakConcurrent']}",
        share,
        "% 429s",
        goal=GOAL_C,
        limit=2.0,
    )
    out["met"] = bool(out["met"]) and c["lost"] == c["duplicated"] == c["poisoned"] == 0
    rows.append(out)
    d = details["d"]
    for pct in ("p50", "p99"):
        rows.append(
            row(
                f"(d) Graph call on an idle mailbox, {pct}: shared limiter vs per-instance",
                d["shared"][pct],
                "ms",
                baseline=d["instance"][pct],
                goal="one Table round trip added",
            )
        )
    return rows
