"""A private sandbox with the app's connection stored, and fresh child processes that use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devhost.bootstrap import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_TENANT_ID
from devhost.services import ROOT, Service, start_sandbox

BENCH_DIR = Path(__file__).resolve().parent
SENDER = "administratie@contoso.test"
RECIPIENT = "anna@contoso.test"
CONNECTION = "contoso.test"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class ChildFailed(RuntimeError):
    """A measured child process exited badly or printed no result."""


@dataclass
class Sandbox:
    """A running private sandbox and the environment a measured child process needs."""

    service: Service
    url: str
    ca: str
    env: dict[str, str]

    def control(self, method: str, path: str, **kw: Any) -> Any:
        """Call the control API (`/_sandbox/...`); raises on an HTTP error; the JSON answer."""
        resp = requests.request(
            method, f"{self.url}/_sandbox/{path.lstrip('/')}", verify=self.ca, timeout=30, **kw
        )
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def limits(self, **values: Any) -> Any:
        return self.control("PATCH", "limits", json=values)

    def graph_entries(self, since: int) -> tuple[list[dict[str, Any]], int]:
        """Graph requests (/v1.0/...) the sandbox served after `since`, and the newest seq."""
        data = self.control("GET", "requests", params={"since": since, "limit": 5000})
        entries = [e for e in data["value"] if e["path"].startswith("/v1.0/")]
        return entries, data["lastSeq"]

    def last_seq(self) -> int:
        return self.control("GET", "requests", params={"limit": 1})["lastSeq"]


def child_env(url: str, ca: str, storage: str = "") -> dict[str, str]:
    """Environment of a measured child: the app settings a deployed app would have, locally."""
    from devhost.local_settings import sandbox_values

    values = sandbox_values(sandbox_url=url, ca_file=ca, storage=storage, devhost_port=None)
    env = {**os.environ, **values}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "BENCH_SANDBOX_URL": url,
            "BENCH_TENANT_ID": SANDBOX_TENANT_ID,
            "BENCH_CLIENT_ID": SANDBOX_CLIENT_ID,
            # The floor is handed the app secret directly: it has no Key Vault step by design.
            "BENCH_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
        }
    )
    # Cold runs should pay for imports, not for compiling: let Python keep its .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@contextmanager
def sandbox(storage: str = "") -> Iterator[Sandbox]:
    """A fresh sandbox on a free port with connection "contoso.test" in its Key Vault.

    The 10-minute request budget is lifted: rows that do not measure throttling must not hit it.
    """
    from devhost.bootstrap import store_sandbox_connection

    keys = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    previous = {k: os.environ.get(k) for k in keys}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as state:
        service = start_sandbox(port=0, state_dir=Path(state))
        try:
            url, ca = service.info["url"], service.info["ca"]
            store_sandbox_connection(url, ca)  # also points this process at the sandbox CA
            box = Sandbox(service, url, ca, child_env(url, ca, storage))
            # The sandbox's explicit instant timing (docs/sandbox.md): benchmarks measure our
            # code, not the realistic transit delay; throughput.py sets its own send rate.
            box.limits(requestsPer10Minutes=0, sentCopyDelayMs=0, sendRatePerMinute=None)
            yield box
        finally:
            service.stop()
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def child_command(script: str, *args: str) -> list[str]:
    """`python -P bench/<script> args`: -P keeps bench/ itself off sys.path (no shadowing)."""
    return [sys.executable, "-P", str(BENCH_DIR / script), *args]


def run_child(
    env: dict[str, str], script: str, *args: str, timeout: float = 120.0
) -> dict[str, Any]:
    """Run a measuring script in a fresh process; its last stdout line is a JSON result."""
    proc = subprocess.run(
        child_command(script, *args),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ChildFailed(
            f"{script} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1])
