"""Start and stop the local services (sandbox, Azurite) as child processes on free ports."""

from __future__ import annotations

import contextlib
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
from typing import ParamSpec

from devhost.lifeline import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class ServiceError(RuntimeError):
    """A local service did not start."""


class StartInterrupted(ServiceError):
    """A stop was requested while a service was starting; the service was stopped."""


class StepFailed(ServiceError):
    """A start-up step (a child that does one job and exits) failed; says what it printed."""


@dataclass
class Service:
    """A child process, what it printed when ready, and how to wait for it and stop it."""

    name: str
    proc: subprocess.Popen[str]
    info: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    ready_timeout: float = 30.0
    _pending: dict[str, re.Pattern[str]] = field(default_factory=dict, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ports(self) -> list[int]:
        """The loopback ports in the URLs the service announced (none before it is ready)."""
        found = (re.search(r":(\d+)(?:/|$)", v) for v in self.info.values())
        return sorted({int(m.group(1)) for m in found if m})

    def wait_ready(
        self, timeout: float | None = None, interrupted: Callable[[], bool] | None = None
    ) -> Service:
        """Wait until every ready pattern matched a line; returns self.

        Raises ServiceError (and stops the service) if it exits first or is not ready within
        `timeout` (default: its ready_timeout), and StartInterrupted as soon as `interrupted()`
        is true.
        """
        limit = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self._done.wait(0.1):
            if interrupted is not None and interrupted():
                self.stop()
                raise StartInterrupted(f"{self.name}: stopped while starting")
            if time.monotonic() >= deadline:
                break
        if self._pending:
            exited = self._done.is_set()  # its output ended: it is gone, or going
            self.stop()
            tail = "".join(self.output[-20:])
            if exited:
                status = self.proc.returncode
                raise ServiceError(f"{self.name} exited ({status}) before it was ready:\n{tail}")
            raise ServiceError(f"{self.name} did not start within {limit:.0f}s:\n{tail}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the service's process group; SIGKILL if it has not ended after `timeout`."""
        self.terminate()
        self.wait_stopped(time.monotonic() + timeout)

    def terminate(self) -> None:
        """Ask the service (its whole process group) to stop; returns at once."""
        self._signal(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> bool:
        """Wait until the process ended or `deadline` (monotonic) passed; SIGKILL it then.

        True if it ended by itself.
        """
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
            ended = True
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(5)
            ended = False
        # The child is gone, so its output ends: read it to the end, so that its last lines are
        # echoed and no reader thread is left running when this process exits.
        self.wait_output(max(deadline, time.monotonic() + 1.0))
        return ended

    def wait_output(self, deadline: float) -> bool:
        """Wait until the child's output was read to its end or `deadline` (monotonic) passed.

        True if it was (a grandchild that inherited the pipe can keep it open).
        """
        if self._reader is not None:
            self._reader.join(max(0.0, deadline - time.monotonic()))
            return not self._reader.is_alive()
        return True

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def spawn(
    name: str,
    cmd: list[str],
    ready: dict[str, re.Pattern[str]],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ready_timeout: float = 30.0,
    echo: bool = False,
) -> Service:
    """Start `cmd` in its own process group and return at once; wait_ready() waits for it.

    The child gets SIGTERM when this process dies, even by SIGKILL (see devhost.lifeline), so
    call this from a thread that outlives the child, such as the main thread.
    """
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=str(cwd or ROOT),
        start_new_session=True,
        preexec_fn=die_with_parent(),
    )
    service = Service(name, proc, ready_timeout=ready_timeout, _pending=dict(ready))
    # A daemon only so that a parent that fails unexpectedly is not kept alive by it; a stop
    # joins it (wait_stopped).
    service._reader = threading.Thread(
        target=_pump, args=(service, echo), name=f"{name}-output", daemon=True
    )
    service._reader.start()
    return service


def _pump(service: Service, echo: bool) -> None:
    """Read the child's output to its end: keep the tail, echo it, match the ready patterns."""
    assert service.proc.stdout is not None
    for line in service.proc.stdout:
        service.output.append(line)
        del service.output[:-500]
        if echo:
            # A closed terminal must not stop the draining, or the child blocks on a full pipe.
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write(f"[{service.name}] {line}")
        for key, pattern in list(service._pending.items()):
            m = pattern.search(line)
            if m:
                service.info.update({k: v for k, v in m.groupdict().items() if v})
                del service._pending[key]
        if not service._pending:
            service._done.set()
    service._done.set()


_P = ParamSpec("_P")


def _and_wait_ready(spawner: Callable[_P, Service]) -> Callable[_P, Service]:
    """`start_x(...)`: `spawn_x(...)` and wait until the service is ready."""

    def start(*args: _P.args, **kw: _P.kwargs) -> Service:
        return spawner(*args, **kw).wait_ready()

    start.__doc__ = f"{spawner.__name__}() and wait until it is ready (ServiceError if not)."
    return start


def spawn_sandbox(
    *,
    port: int = 0,
    state_dir: Path | None = None,
    seed: Path | None = None,
    echo: bool = False,
) -> Service:
    """Spawn `python -m sandbox serve`; once ready, info has url and ca (the CA bundle path)."""
    cmd = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    if state_dir:
        cmd += ["--state", str(state_dir)]
    if seed:
        cmd += ["--seed", str(seed)]
    ready = {"ready": re.compile(r"sandbox ready (?P<url>https://\S+) ca=(?P<ca>\S+)")}
    return spawn("sandbox", cmd, ready, echo=echo, ready_timeout=30)


start_sandbox = _and_wait_ready(spawn_sandbox)


def spawn_connection_store(*, sandbox_url: str, ca_file: str | Path) -> Service:
    """Spawn `python -m devhost.bootstrap --url URL --ca CA`, a start-up step: it stores the
    sandbox's connection in the sandbox Key Vault and exits (Supervisor.run_step waits)."""
    cmd = [sys.executable, "-m", "devhost.bootstrap", "--url", sandbox_url, "--ca", str(ca_file)]
    return spawn("connection-store", cmd, {})


def spawn_azurite(
    *, location: Path | None = None, echo: bool = False, ports: dict[str, int] | None = None
) -> Service:
    """Spawn Azurite (queues, tables, blobs) on free loopback ports (or `ports`: blob, queue,
    table, to start one again where it was); once ready, info has the three URLs."""
    if not AZURITE_BIN.exists():
        raise ServiceError("Azurite is not installed: run `npm ci` (make does it for you)")
    chosen = {"blob": 0, "queue": 0, "table": 0, **(ports or {})}
    cmd = [str(AZURITE_BIN), "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    cmd += ["--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1"]
    cmd += ["--blobPort", str(chosen["blob"]), "--queuePort", str(chosen["queue"])]
    cmd += ["--tablePort", str(chosen["table"])]
    cmd += ["--location", str(location)] if location else ["--inMemoryPersistence"]
    ready = {
        kind: re.compile(rf"{kind.title()} service is successfully listening at (?P<{kind}>\S+)")
        for kind in ("blob", "queue", "table")
    }
    return spawn("azurite", cmd, ready, echo=echo, ready_timeout=60)


start_azurite = _and_wait_ready(spawn_azurite)


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


def spawn_devhost(
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
    """Spawn `python -m devhost`; once ready, info has url (http://127.0.0.1:PORT)."""
    cmd = [sys.executable, "-m", "devhost", "--port", str(port), "--settings", str(settings)]
    cmd += ["--root", str(root)]
    if state_dir:
        cmd += ["--state-dir", str(state_dir)]
    cmd += extra_args or []
    ready = {"ready": re.compile(r"devhost ready (?P<url>http://\S+)")}
    # The devhost logs unbuffered so its output (and a test's .logs()) is never behind.
    env = {"PYTHONUNBUFFERED": "1", **(env or {})}
    return spawn("devhost", cmd, ready, env=env, echo=echo, ready_timeout=timeout)


start_devhost = _and_wait_ready(spawn_devhost)


def spawn_devhost_worker(
    number: int,
    *,
    settings: Path | None,
    root: Path = ROOT,
    state_dir: Path | None = None,
    extra_args: list[str] | None = None,
    timeout: float = 60.0,
) -> Service:
    """Spawn instance `number` of a scaled-out devhost (`python -m devhost --worker`): the
    queue triggers on the same storage; its output goes to this process's, prefixed."""
    cmd = [sys.executable, "-m", "devhost", "--root", str(root)]
    if settings:
        cmd += ["--settings", str(settings)]
    if state_dir:
        cmd += ["--state-dir", str(state_dir)]
    cmd += extra_args or ["--worker"]
    ready = {"ready": re.compile(r"devhost worker ready pid=(?P<pid>\d+)")}
    env = {"PYTHONUNBUFFERED": "1"}
    return spawn(f"instance-{number}", cmd, ready, env=env, echo=True, ready_timeout=timeout)
