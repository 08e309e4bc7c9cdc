"""Row 4: queued sends to 4 mailboxes under Exchange's limits, against the best the limits allow.

The devhost hosts the product's function_app with the product's own host.json on Azurite; the
sandbox enforces 4 concurrent requests per mailbox and a send rate of SEND_RATE per minute per
mailbox. DocuFlow's path is used: POST /api/mail/send with mode "async" (202 + operationId).
Progress is read from the sandbox's request log (it costs no Graph budget or concurrency slot);
at the end every operation's status is read and each sender's Sent Items are counted by the
operation id every sent message carries, to find lost and duplicated mails.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench import harness
from bench.stats import row, unavailable
from devhost.services import ROOT, azurite_connection_string, start_azurite, start_devhost

MAILBOXES = (
    "administratie@contoso.test",
    "anna@contoso.test",
    "bram@contoso.test",
    "carla@contoso.test",
)
RECIPIENT = "svc-docuflow@contoso.test"
SEND_RATE = 30  # per mailbox per minute: Exchange Online's own
PER_MAILBOX = 3 * SEND_RATE  # three windows' worth: the first is a burst, two are waited for
WINDOW_SECONDS = 60.0
DEADLINE_SECONDS = 300.0
OP_PROPERTY = "String {3f5c8a2e-7b1d-4e6f-9a0c-2d4b6e8f1a3c} Name OperationId"
NAME = f"throttled throughput ({len(MAILBOXES)} mailboxes × {PER_MAILBOX} queued sends)"
GOAL = "≥ 0.9, 0 lost, 0 duplicated"


def minimum_seconds(per_mailbox: int, rate: int, window: float = WINDOW_SECONDS) -> float:
    """The shortest time in which a sliding window of `rate` sends lets `per_mailbox` through.

    The first `rate` go at once, every further `rate` one window later.
    """
    return window * ((per_mailbox - 1) // rate)


def queue_trigger_missing() -> str | None:
    """Why row 4 cannot run yet, or None when send_mail/ has its queue trigger."""
    text = (ROOT / "send_mail" / "__init__.py").read_text(encoding="utf-8")
    return None if "queue_trigger" in text else "send_mail/ has no queue trigger yet"


def _graph_token(box: harness.Sandbox) -> str:
    import msal

    app = msal.ConfidentialClientApplication(
        box.env["BENCH_CLIENT_ID"],
        client_credential=box.env["BENCH_CLIENT_SECRET"],
        authority=f"{box.url}/{box.env['BENCH_TENANT_ID']}",
        instance_discovery=False,
    )
    return app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])[
        "access_token"
    ]


def sent_copies(box: harness.Sandbox, mailbox: str) -> dict[str, int]:
    """Operation id → messages carrying it in `mailbox`'s Sent Items."""
    http = requests.Session()
    http.verify = box.ca
    http.headers["Authorization"] = f"Bearer {_graph_token(box)}"
    url = f"{box.url}/v1.0/users/{mailbox}/mailFolders/sentitems/messages"
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


def _is_send(entry: dict[str, Any]) -> bool:
    path = entry["path"]
    return (
        entry["method"] == "POST"
        and entry["status"] == 202
        and (path.endswith("/send") or path.endswith("/sendMail"))
    )


def measure(box: harness.Sandbox, storage: str, workdir: Path) -> dict[str, Any]:
    """Enqueue every send, wait until all are sent (bounded), count outcomes."""
    from devhost.local_settings import write_local_settings

    settings = workdir / "local.settings.json"
    write_local_settings(settings, {k: box.env[k] for k in _app_setting_names(box)}, http_port=0)
    key = secrets.token_urlsafe(24)
    devhost = start_devhost(
        settings=settings,
        root=ROOT,
        state_dir=workdir / "state",
        env={"DEVHOST_FUNCTION_KEY": key},
    )
    http = requests.Session()
    http.headers["x-functions-key"] = key
    base = devhost.info["url"]
    try:
        box.limits(concurrentRequestsPerMailbox=4, sendRatePerMinute=SEND_RATE)
        box.limits(requestsPer10Minutes=10000)
        since = box.last_seq()
        started_wall = dt.datetime.now(dt.UTC)
        started = time.monotonic()

        def enqueue(i: int) -> str:
            sender = MAILBOXES[i % len(MAILBOXES)]
            body = {
                "connection": harness.CONNECTION,
                "from": sender,
                "to": [RECIPIENT],
                "subject": f"throughput {i}",
                "body": {"contentType": "text", "content": "Queued benchmark message."},
                "mode": "async",
            }
            resp = http.post(f"{base}/api/mail/send", json=body, timeout=60)
            if resp.status_code != 202:
                raise RuntimeError(f"enqueue answered {resp.status_code}: {resp.text[:300]}")
            return resp.json()["operationId"]

        total = PER_MAILBOX * len(MAILBOXES)
        with ThreadPoolExecutor(8) as pool:
            operation_ids = list(pool.map(enqueue, range(total)))
        enqueued_seconds = time.monotonic() - started

        sends: list[dt.datetime] = []
        deadline = started + DEADLINE_SECONDS
        while len(sends) < total and time.monotonic() < deadline:
            entries = box.control("GET", "requests", params={"since": since, "limit": 5000})
            since = entries["lastSeq"]
            sends += [dt.datetime.fromisoformat(e["time"]) for e in entries["value"] if _is_send(e)]
            time.sleep(0.5)
        # Let stragglers (a duplicate would be one) land before counting.
        time.sleep(3)
        box.limits(sendRatePerMinute=None, concurrentRequestsPerMailbox=0)
        statuses = [
            http.get(f"{base}/api/operations/{op}", timeout=30).json().get("status")
            for op in operation_ids
        ]
        copies: dict[str, int] = {}
        for mailbox in MAILBOXES:
            copies.update(sent_copies(box, mailbox))
    finally:
        http.close()
        devhost.stop()
    elapsed = (max(sends) - started_wall).total_seconds() if sends else None
    ours = set(operation_ids)
    return {
        "total": total,
        "sent": len(sends),
        "elapsed": elapsed,
        "enqueueSeconds": enqueued_seconds,
        "lost": sum(1 for op in operation_ids if copies.get(op, 0) == 0),
        "duplicated": sum(n - 1 for op, n in copies.items() if op in ours and n > 1),
        "statuses": {s: statuses.count(s) for s in set(map(str, statuses))},
    }


def _app_setting_names(box: harness.Sandbox) -> list[str]:
    from devhost.local_settings import sandbox_values

    values = sandbox_values(sandbox_url=box.url, ca_file=box.ca, storage="", devhost_port=None)
    return list(values)


def run() -> list[dict[str, Any]]:
    """One row: achieved sends/min against the limits' maximum for this workload."""
    reason = queue_trigger_missing()
    if reason:
        return [unavailable(NAME, reason, GOAL)]
    azurite = start_azurite()
    try:
        storage = azurite_connection_string(azurite)
        with (
            harness.sandbox(storage=storage) as box,
            tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp,
        ):
            result = measure(box, storage, Path(tmp))
    finally:
        azurite.stop()
    print(f"    throughput detail: {json.dumps(result)}", flush=True)
    if not result["elapsed"]:
        return [unavailable(NAME, f"nothing was sent: {result['statuses']}", GOAL)]
    achieved = (result["total"] - result["lost"]) / result["elapsed"] * 60
    best = result["total"] / minimum_seconds(PER_MAILBOX, SEND_RATE) * 60
    out = row(
        NAME, achieved, "sends/min", baseline=best, goal=GOAL, limit=0.9, higher_is_better=True
    )
    out["met"] = bool(out["met"]) and result["lost"] == 0 and result["duplicated"] == 0
    out["name"] += f" — lost {result['lost']}, duplicated {result['duplicated']}"
    return [out]
