"""The app's msgspec types survive their first use from many threads at once.

The Functions worker runs requests and queue messages on a thread pool, so on a cold instance
several threads meet a Struct type for the first time together. msgspec 0.22.0 could hand one
thread another's half-built type information and crash the whole process (SIGSEGV: every
request in flight dropped without an answer); 0.23.0 builds it under a lock. The race is made
likely by switching threads every microsecond, in fresh processes, several times over.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from devhost.services import ROOT

RUNS = 20
SCRIPT = textwrap.dedent(
    """
    import json, sys, threading
    import msgspec
    from shared.api.validation import decode
    from shared.models import DraftRequest, MoveRequest, SendRequest
    from shared.work.queueing import Envelope

    message = {
        "connection": "contoso.test", "from": "administratie@contoso.test",
        "to": ["bram@contoso.test", {"address": "carla@contoso.test", "name": "Carla"}],
        "subject": "Factuur", "body": {"contentType": "html", "content": "<p>Hallo</p>"},
        "attachments": [{"name": "a.pdf", "contentType": "application/pdf",
                         "contentBytes": "JVBERi0xLjcK"}],
    }
    move = {"connection": "contoso.test", "mailbox": "administratie@contoso.test",
            "messageId": "AAMk=", "destination": "Archief/2026"}
    work = [(SendRequest, message), (DraftRequest, message), (MoveRequest, move)]
    bodies = [(kind, json.dumps(body).encode()) for kind, body in work]
    sys.setswitchinterval(1e-6)
    start = threading.Barrier(8)

    def first_use():
        start.wait()
        for kind, body in bodies:
            decode(kind, body)
        msgspec.convert({"operationId": "x", "request": {}}, Envelope)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
)


def test_struct_types_survive_first_use_from_eight_threads_at_once():
    crashes = []
    for _ in range(RUNS):
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        if run.returncode != 0:
            crashes.append(f"exit {run.returncode}: {run.stderr[-400:]}")
    assert not crashes, f"{len(crashes)} of {RUNS} processes crashed: {crashes[0]}"
