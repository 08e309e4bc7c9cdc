"""Memory stays bounded while a 50 MB attachment streams from its URL into an upload session."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.functional.conftest import Ops

MB = 1024 * 1024
CHILD = textwrap.dedent(
    """
    import json, resource, sys, uuid
    from shared import operations
    from shared.models import SendRequest
    from shared.runtime import Runtime
    from shared.settings import Settings
    from shared.validation import decode
    from tests.functional.conftest import secret_client

    url, file_url = sys.argv[1], sys.argv[2]
    client = secret_client(url)
    runtime = Runtime(Settings(key_vault_url=url), lambda: client)

    def send(subject, attachments):
        body = {"connection": "contoso.test", "from": "administratie@contoso.test",
                "to": ["anna@contoso.test"], "subject": subject, "attachments": attachments}
        request = decode(SendRequest, json.dumps(body).encode())
        operations.send(request, runtime.context("contoso.test", str(uuid.uuid4())))

    # Warm up: every import, token and pool is in place before we measure.
    send("warm-up", [{"name": "w.bin", "url": file_url.replace("SIZE", str(4 * 1024 * 1024))}])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    send("fifty", [{"name": "big.bin", "url": file_url.replace("SIZE", str(50 * 1024 * 1024))}])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"beforeKiB": before, "afterKiB": after}))
    """
)


@pytest.mark.slow
def test_peak_memory_while_sending_50_mb_by_url_stays_far_below_its_size(ops: Ops, repo_root):
    file_url = ops.file_url("big.bin", 0).replace("size=0", "size=SIZE")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, ops.sandbox.url, file_url],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    usage = json.loads(out.stdout.strip().splitlines()[-1])
    growth = (usage["afterKiB"] - usage["beforeKiB"]) * 1024
    # Holding the file would cost ≥ 50 MB (67 MB as base64); streaming costs a few chunks.
    assert growth < 20 * MB, f"peak RSS grew by {growth / MB:.1f} MB"
    inbox = ops.folder_messages("anna@contoso.test", "inbox")
    big = [m for m in inbox if m["subject"] == "fifty"]
    assert big and big[0].get("hasAttachments")
