"""Start and stop the local services (sandbox, Azurite) as child processes on free ports."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class ServiceError(RuntimeError):
    """A local service did not start."""


@dataclass
class Service:
    """A running child process and what it printed when ready."""

    name: str
    proc: subprocess.Popen[str]
    info: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _start(
    name: str,
    cmd: list[str],
    ready: dict[str, re.Pattern[str]],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
    echo: bool = False,
) -> Service:
    """Start `cmd` in its own process group; wait until every `ready` pattern matched a line."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=str(cwd or ROOT),
        start_new_session=True,
    )
    service = Service(name, proc)
    pending = dict(ready)
    done = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            service.output.append(line)
            del service.output[:-500]
            if echo:
                sys.stdout.write(f"[{name}] {line}")
            for key, pattern in list(pending.items()):
                m = pattern.search(line)
                if m:
                    service.info.update({k: v for k, v in m.groupdict().items() if v})
                    del pending[key]
            if not pending:
                done.set()
        done.set()

    threading.Thread(target=pump, name=f"{name}-output", daemon=True).start()
    if not done.wait(timeout) or pending:
        service.stop()
        tail = "".join(service.output[-20:])
        raise ServiceError(f"{name} did not start within {timeout:.0f}s:\n{tail}")
    return service


def start_sandbox(
    *,
    port: int = 0,
    state_dir: Path | None = None,
    seed: Path | None = None,
    echo: bool = False,
) -> Service:
    """Start `python -m sandbox serve`; info has url and ca (the CA bundle path)."""
    cmd = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    if state_dir:
        cmd += ["--state", str(state_dir)]
    if seed:
        cmd += ["--seed", str(seed)]
    ready = {"ready": re.compile(r"sandbox ready (?P<url>https://\S+) ca=(?P<ca>\S+)")}
    return _start("sandbox", cmd, ready, echo=echo, timeout=30)


def start_azurite(*, location: Path | None = None, echo: bool = False) -> Service:
    """Start Azurite (queues, tables, blobs) on free loopback ports; info has the three URLs."""
    if not AZURITE_BIN.exists():
        raise ServiceError("Azurite is not installed: run `npm ci` (make does it for you)")
    cmd = [str(AZURITE_BIN), "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    cmd += ["--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1"]
    cmd += ["--blobPort", "0", "--queuePort", "0", "--tablePort", "0"]
    cmd += ["--location", str(location)] if location else ["--inMemoryPersistence"]
    ready = {
        kind: re.compile(rf"{kind.title()} service is successfully listening at (?P<{kind}>\S+)")
        for kind in ("blob", "queue", "table")
    }
    return _start("azurite", cmd, ready, echo=echo, timeout=60)


def azurite_connection_string(service: Service) -> str:
    """The storage connection string for a running Azurite."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={service.info['blob']}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint={service.info['queue']}/{AZURITE_ACCOUNT};"
        f"TableEndpoint={service.info['table']}/{AZURITE_ACCOUNT};"
    )


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05
) -> bool:
    """Poll `predicate` until it is truthy or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def start_devhost(
    *,
    settings: Path,
    root: Path = ROOT,
    port: int = 0,
    state_dir: Path | None = None,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    echo: bool = False,
    timeout: float = 60.0,
) -> Service:
    """Start `python -m devhost`; info has url (http://127.0.0.1:PORT)."""
    cmd = [sys.executable, "-m", "devhost", "--port", str(port), "--settings", str(settings)]
    cmd += ["--root", str(root)]
    if state_dir:
        cmd += ["--state-dir", str(state_dir)]
    cmd += extra_args or []
    ready = {"ready": re.compile(r"devhost ready (?P<url>http://\S+)")}
    # The devhost logs unbuffered so its output (and a test's .logs()) is never behind.
    env = {"PYTHONUNBUFFERED": "1", **(env or {})}
    return _start("devhost", cmd, ready, env=env, echo=echo, timeout=timeout)
