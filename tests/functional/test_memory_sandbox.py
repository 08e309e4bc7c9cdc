"""Memory stays bounded while a 50 MB attachment streams from its URL into an upload session."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.functional.conftest import Ops

MB = 1024 * 1024
# The child's own peak (VmHWM after a /proc/self/clear_refs reset, the helpers bench/memory_child
# uses), not ru_maxrss: after fork + exec a child's ru_maxrss starts at the parent's peak, so a
# child smaller than pytest would always report zero growth and the test could never fail.
CHILD = textwrap.dedent(
    """
    import json, sys, uuid
    from bench.memory_child import peak_rss_bytes, reset_peak
    from shared.operations import direct as operations
    from shared.models import SendRequest
    from shared.runtime import Runtime
    from shared.settings import Settings
    from shared.api.validation import decode
    from tests.functional.conftest import secret_client

    url, file_url = sys.argv[1], sys.argv[2]
    client = secret_client(url)
    # A tenant that raised its maximum message size to Exchange's 150 MB (a 50 MB file is about
    # 68 MB as MIME carries it); the sandbox gets the same limit.
    runtime = Runtime(
        Settings.load(key_vault_url=url, message_max_bytes=150 * 1024 * 1024), lambda: client
    )

    def send(subject, attachments):
        body = {"connection": "contoso.test", "from": "administratie@contoso.test",
                "to": ["anna@contoso.test"], "subject": subject, "attachments": attachments}
        request = decode(SendRequest, json.dumps(body).encode())
        operations.send(request, runtime.context("contoso.test", str(uuid.uuid4())))

    # Warm up: every import, token and pool is in place before we measure.
    send("warm-up", [{"name": "w.bin", "url": file_url.replace("SIZE", str(4 * 1024 * 1024))}])
    reset_peak()  # the warm-up's transient peak must not hide the big send's own peak
    before = peak_rss_bytes()
    send("fifty", [{"name": "big.bin", "url": file_url.replace("SIZE", str(50 * 1024 * 1024))}])
    after = peak_rss_bytes()
    # Calibration: the same meter must see a known 32 MB allocation (touched, so resident).
    reset_peak()
    base = peak_rss_bytes()
    ballast = bytearray(32 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    ballast_peak = peak_rss_bytes()
    print(json.dumps({"beforeBytes": before, "afterBytes": after,
                      "ballastGrowthBytes": ballast_peak - base}))
    """
)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_peak_memory_while_sending_50_mb_by_url_stays_far_below_its_size(ops: Ops, repo_root):
    file_url = ops.file_url("big.bin", 0).replace("size=0", "size=SIZE")
    ops.sandbox.control("PATCH", "limits", json={"maxMessageSizeBytes": 150 * MB})
    out = subprocess.run(
        [sys.executable, "-c", CHILD, ops.sandbox.url, file_url],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    usage = json.loads(out.stdout.strip().splitlines()[-1])
    # The meter works in this process: a 32 MB allocation shows as ≥ 30 MB of peak growth.
    assert usage["ballastGrowthBytes"] >= 30 * MB, usage
    growth = usage["afterBytes"] - usage["beforeBytes"]
    # Holding the file would cost ≥ 50 MB (67 MB as base64); streaming costs a few 3.75 MB
    # chunks (about 19 MB measured here), so 32 MB leaves room on both sides.
    assert growth < 32 * MB, f"peak RSS grew by {growth / MB:.1f} MB while sending 50 MB"
    ops.settle("administratie@contoso.test")
    inbox = ops.folder_messages("anna@contoso.test", "inbox")
    big = [m for m in inbox if m["subject"] == "fifty"]
    assert big and big[0].get("hasAttachments")
