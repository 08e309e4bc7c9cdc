"""The pid file of `make run` (`.state/processes.json`): which processes a run started and their
ports, so the next run can name leftovers and `make stop` can end them. Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

PID_FILE_NAME = "processes.json"
# The name of the run's own process in the pid file (its services go by their own names).
RUN_NAME = "run_all"


def process_start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, from /proc), to tell a reused pid apart.

    None if the process does not exist, is a zombie, or the platform has no /proc.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # Fields after the command name (which may contain spaces and parentheses): state is the
    # first, starttime the 20th (field 22 of proc(5)).
    fields = stat.rsplit(b")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None
    return int(fields[19])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process now has this pid: not ours
    return True


@dataclass
class RecordedProcess:
    """One process of a run: what it is, its pid, when it started and the ports it listens on."""

    name: str
    pid: int
    started: int | None = None
    ports: list[int] = field(default_factory=list)

    def is_running(self) -> bool:
        """True if this very process still runs (not just some process with the same pid)."""
        if self.started is not None:
            return process_start_time(self.pid) == self.started
        return _alive(self.pid)

    def describe(self) -> str:
        """E.g. `sandbox (pid 4242, port 8443)`."""
        if not self.ports:
            return f"{self.name} (pid {self.pid})"
        label = "port" if len(self.ports) == 1 else "ports"
        return f"{self.name} (pid {self.pid}, {label} {', '.join(map(str, self.ports))})"


class PidFile:
    """The processes of the current (or an earlier) run, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> PidFile:
        return cls(state_dir / PID_FILE_NAME)

    def read(self) -> list[RecordedProcess]:
        """The recorded processes; [] if there is no file or it cannot be read."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [RecordedProcess(**entry) for entry in data["processes"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def running(self) -> list[RecordedProcess]:
        """The recorded processes that still run."""
        return [p for p in self.read() if p.is_running()]

    def start(self, pid: int) -> None:
        """Begin a new record with the run's own process; replaces an earlier run's file."""
        self._write([RecordedProcess(RUN_NAME, pid, process_start_time(pid))])

    def add(self, name: str, pid: int, ports: list[int] | None = None) -> None:
        """Record a child as soon as it exists (ports may follow with set_ports)."""
        processes = [p for p in self.read() if p.pid != pid]
        processes.append(RecordedProcess(name, pid, process_start_time(pid), list(ports or [])))
        self._write(processes)

    def set_ports(self, pid: int, ports: list[int]) -> None:
        processes = self.read()
        for process in processes:
            if process.pid == pid:
                process.ports = list(ports)
        self._write(processes)

    def discard(self, pid: int) -> None:
        """Forget a child that ended as it should (a start-up step that is done)."""
        self._write([p for p in self.read() if p.pid != pid])

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _write(self, processes: list[RecordedProcess]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"processes": [asdict(p) for p in processes]}
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, self.path)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on `host:port` now (with SO_REUSEADDR, as ours do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port_near(port: int, avoid: Collection[int] = (), tries: int = 50) -> int | None:
    """The first free port above `port` (not in `avoid`), for a suggestion; None if none."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if candidate not in avoid and port_is_free(candidate):
            return candidate
    return None


def stop_processes(processes: list[RecordedProcess], grace: float = 10.0) -> list[RecordedProcess]:
    """End `processes` (first the run itself, then its children): SIGTERM, then SIGKILL after
    `grace` seconds. Returns those that ran when called."""
    running = [p for p in processes if p.is_running()]
    # The run's own process stops its children in order; the rest is for children it left.
    parents = [p for p in running if p.name == RUN_NAME]
    children = [p for p in running if p.name != RUN_NAME]
    for group in (parents, list(reversed(children))):
        _signal_all(group, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(p.is_running() for p in group) and time.monotonic() < deadline:
            time.sleep(0.05)
    still = [p for p in running if p.is_running()]
    _signal_all(still, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(p.is_running() for p in still) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


def _signal_all(processes: list[RecordedProcess], sig: signal.Signals) -> None:
    for process in processes:
        if not process.is_running():
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Children lead their own process group: signal anything they started too.
            if os.getpgid(process.pid) == process.pid and process.name != RUN_NAME:
                os.killpg(process.pid, sig)
            else:
                os.kill(process.pid, sig)
