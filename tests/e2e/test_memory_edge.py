"""Finding 6: a 90 MB request costs the worker less than its size when refused and at most twice
its size when sent. Measured on the devhost process that runs function_app (VmHWM, reset once
the host holds the body, as the Functions host holds it before the worker runs)."""

from __future__ import annotations

import base64
import json
import os
import re
import time

import pytest

from devhost.local_settings import sandbox_values, write_local_settings
from devhost.peak_memory import REPORT_SETTING
from tests.e2e.conftest import Devhost
from tests.e2e.connections_kit import sent_items_subjects

MB = 1024 * 1024
BODY_BYTES = 90 * MB
_PEAK = re.compile(r"peak memory of Functions\.send_mail: \+(\d+) bytes")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def measured(sandbox, azurite, tmp_path_factory):
    """A devhost of its own that logs each invocation's peak memory growth."""
    tmp = tmp_path_factory.mktemp("memory-devhost")
    settings = tmp / "local.settings.json"
    values = sandbox_values(
        sandbox_url=sandbox.url,
        ca_file=sandbox.ca,
        storage=azurite.connection_string,
        devhost_port=None,
    )
    # A 67 MB file is about 90 MB as Exchange counts it: a tenant that raised its maximum message
    # size to 150 MB, in the product's setting and in the sandbox.
    values["MESSAGE_MAX_BYTES"] = str(150 * MB)
    write_local_settings(settings, values, http_port=0)
    host = Devhost(settings, tmp / "state", sandbox.url, sandbox.ca, env={REPORT_SETTING: "1"})
    sandbox.reset()
    sandbox.control("PATCH", "limits", json={"maxMessageSizeBytes": 150 * MB})
    host.bootstrap()
    host.start()
    try:
        yield host
    finally:
        host.stop()
        host.http.close()


def ninety_mb_request(sender: str, subject: str) -> bytes:
    """A send whose base64 attachment makes the body ~90 MB."""
    raw = os.urandom((BODY_BYTES - 4096) // 4 * 3)
    body = {
        "connection": "contoso.test",
        "from": sender,
        "to": ["anna@contoso.test"],
        "subject": subject,
        "attachments": [{"name": "big.bin", "contentBytes": base64.b64encode(raw).decode()}],
    }
    return json.dumps(body).encode()


def growth_of_last_send(host: Devhost) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = _PEAK.findall(host.logs())
        if found:
            return int(found[-1])
        time.sleep(0.1)
    raise AssertionError("the devhost reported no peak memory:\n" + host.logs()[-2000:])


def test_a_refused_90_mb_request_grows_the_worker_by_less_than_its_size(measured, sandbox):
    # Warm up (imports, Key Vault, token) with a small request first.
    assert measured.post("/api/mail/send", json={"connection": "contoso.test"}).status_code == 400
    body = ninety_mb_request("intruder@elsewhere.test", "refused big")
    resp = measured.post("/api/mail/send", data=body, headers={"Content-Type": "application/json"})
    growth = growth_of_last_send(measured)
    print(f"refused: +{growth / MB:.1f} MB for a {len(body) / MB:.1f} MB body")

    assert resp.status_code == 403 and resp.json()["error"]["code"] == "sender_not_allowed"
    assert growth < len(body), f"grew by {growth / MB:.1f} MB for a {len(body) / MB:.1f} MB body"
    assert "refused big" not in sent_items_subjects(sandbox, "administratie@contoso.test")


def test_an_accepted_90_mb_request_grows_the_worker_by_at_most_twice_its_size(measured, sandbox):
    body = ninety_mb_request("administratie@contoso.test", "accepted big")
    resp = measured.post(
        "/api/mail/send", data=body, headers={"Content-Type": "application/json"}, timeout=300
    )
    growth = growth_of_last_send(measured)
    print(f"accepted: +{growth / MB:.1f} MB for a {len(body) / MB:.1f} MB body")

    assert resp.status_code == 200, resp.text
    assert growth <= 2 * len(body), f"grew by {growth / MB:.1f} MB for {len(body) / MB:.1f} MB"
    assert "accepted big" in sent_items_subjects(sandbox, "administratie@contoso.test")
