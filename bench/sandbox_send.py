"""The sandbox's own sendMail throughput over keep-alive TLS: the ceiling later benchmarks see."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msal
import requests

from devhost.services import start_sandbox

TENANT_ID = "8f3c1a52-0000-4000-8000-00000000c0de"
CLIENT_ID = "5d1e7c9a-0000-4000-8000-00000000a11c"
CLIENT_SECRET = "sandbox-app-secret"
THREADS = 4
DURATION_SECONDS = 10.0


def _token(url: str) -> str:
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=f"{url}/{TENANT_ID}",
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    if "access_token" not in result:
        raise RuntimeError(f"no token from the sandbox: {result.get('error')}")
    return result["access_token"]


def measure(url: str, ca: str, threads: int = THREADS, seconds: float = DURATION_SECONDS) -> dict:
    """sendMail as fast as `threads` keep-alive sessions can for `seconds`; counts 202s."""
    token = _token(url)
    # The budget of 10,000 requests per 10 minutes and the realistic send rate and transit
    # delay would cap the run (it measures the sandbox's headroom): the instant timing, no budget.
    requests.patch(
        f"{url}/_sandbox/limits",
        json={"requestsPer10Minutes": 0, "sentCopyDelayMs": 0, "sendRatePerMinute": None},
        verify=ca,
        timeout=10,
    )
    message = {
        "message": {
            "subject": "bench",
            "body": {"contentType": "text", "content": "x" * 1000},
            "toRecipients": [{"emailAddress": {"address": "bench@example.com"}}],
        },
        "saveToSentItems": True,
    }
    counts = [0] * threads
    errors = [0] * threads
    deadline = time.monotonic() + seconds
    endpoint = f"{url}/v1.0/users/administratie@contoso.test/sendMail"

    def worker(i: int) -> None:
        with requests.Session() as http:
            http.verify = ca
            http.headers["Authorization"] = f"Bearer {token}"
            while time.monotonic() < deadline:
                resp = http.post(endpoint, json=message, timeout=30)
                if resp.status_code == 202:
                    counts[i] += 1
                else:
                    errors[i] += 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 60)
    elapsed = time.monotonic() - started
    return {"sent": sum(counts), "errors": sum(errors), "seconds": elapsed}


def run() -> list[dict[str, Any]]:
    """Start a private sandbox, measure, stop it; one result row."""
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as state:
        service = start_sandbox(port=0, state_dir=Path(state))
        previous = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = service.info["ca"]
        try:
            result = measure(service.info["url"], service.info["ca"])
        finally:
            service.stop()
            if previous is None:
                os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = previous
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} sendMail calls failed during the benchmark")
    return [
        {
            "name": f"sandbox sendMail throughput ({THREADS} keep-alive TLS sessions)",
            "value": round(result["sent"] / result["seconds"], 1),
            "unit": "messages/s",
            "baseline": None,
            "ratio": None,
            "goal": None,
            "met": None,
        }
    ]
