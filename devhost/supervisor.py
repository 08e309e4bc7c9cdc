"""The children of one `make run`: recorded in the pid file as they start, watched, stopped."""

from __future__ import annotations

import time

from devhost.run_state import PidFile
from devhost.services import Service, StartInterrupted, StepFailed
from devhost.stop_signals import StopSignals

# Everything is gone within this many seconds of a stop (the devhost ends itself within 7).
STOP_TIMEOUT_SECONDS = 9.0


class Supervisor:
    """A list of supervised child services in tiers: a tier's services use those of lower tiers
    (the devhost uses Azurite and the sandbox), so they stop first.

    Start each with a `spawn_*` function and hand it to add() at once (a start-up step to
    run_step()), so the pid file names it even if this process is killed while the child
    starts. Children get SIGTERM when this process dies (see devhost.lifeline), so spawn them
    from the main thread.
    """

    def __init__(self, stop: StopSignals, pid_file: PidFile | None = None) -> None:
        self.stop = stop
        self.pid_file = pid_file
        self.services: list[Service] = []
        self._tiers: dict[int, int] = {}

    def add(self, service: Service, ports: list[int] | None = None, tier: int = 0) -> Service:
        """Supervise a service that was just spawned; `ports` it will listen on, if known."""
        self.services.append(service)
        self._tiers[service.pid] = tier
        if self.pid_file is not None:
            self.pid_file.add(service.name, service.pid, ports)
        return service

    def wait_ready(self, *services: Service) -> None:
        """Wait until each service is ready and record its ports.

        Raises StartInterrupted as soon as a stop signal arrives, ServiceError if one fails.
        """
        for service in services:
            service.wait_ready(interrupted=lambda: self.stop.requested)
            if self.pid_file is not None:
                self.pid_file.set_ports(service.pid, service.ports())

    def run_step(self, step: Service) -> None:
        """Supervise a start-up step (a child that does one job and exits) until it exits.

        Raises StartInterrupted as soon as a stop signal arrives (stop_all then ends the step)
        and StepFailed, with the step's last line, if it exits with a failure.

        A step is a process, not a thread of this one: a stop must not wait for it (a client's
        retries, say), and a thread cannot be stopped from outside. An abandoned daemon thread
        would still run when the interpreter finalizes; CPython 3.11 then ends it with
        pthread_exit, a forced unwind that aborts the whole process ("FATAL: exception not
        rethrown") if the thread is inside a Rust (pyo3) or C++ frame that catches it, such as
        cryptography's module initialisation during an import. A process is ended at once.
        """
        self.add(step)
        while step.proc.poll() is None:
            if self.stop.wait(0.1):
                raise StartInterrupted(f"stopped during {step.name}")
        step.wait_output(time.monotonic() + 5.0)
        self.services.remove(step)
        del self._tiers[step.pid]
        if self.pid_file is not None:
            self.pid_file.discard(step.pid)
        if step.proc.returncode != 0:
            last = next((line.strip() for line in reversed(step.output) if line.strip()), "")
            raise StepFailed(last or f"{step.name} exited with status {step.proc.returncode}")

    def watch(self, interval: float = 0.5) -> Service | None:
        """Block until a stop signal (returns None) or until a child exits (returns it)."""
        while not self.stop.wait(interval):
            for service in self.services:
                if service.proc.poll() is not None:
                    return service
        return None

    def stop_all(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM the children tier by tier, the highest first, all of a tier at once, and wait
        for them; SIGKILL what is left when `timeout` seconds have passed in all."""
        deadline = time.monotonic() + timeout
        for tier in sorted(set(self._tiers.values()), reverse=True):
            group = [s for s in self.services if self._tiers[s.pid] == tier]
            for service in group:
                service.terminate()
            for service in group:
                service.wait_stopped(deadline)
        if self.pid_file is not None:
            self.pid_file.remove()
        self.services.clear()
        self._tiers.clear()
