"""Fixtures for the devhost's own tests: the fixture app hosted by a real devhost process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devhost.http_host import ConnectionLimits, DevhostServer, HttpHost, make_server
from devhost.local_settings import write_local_settings
from devhost.services import Service, start_devhost

FIXTURE_APP = Path(__file__).resolve().parent / "fixture_app"
FIXTURE_KEY = "fixture-function-key"
FIXTURE_MASTER_KEY = "fixture-master-key"
# Short enough that a killed devhost's message comes back within the test's bounded wait.
FIXTURE_LEASE_SECONDS = "3"


@contextlib.contextmanager
def serving(host: HttpHost, **limits: float) -> Iterator[DevhostServer]:
    """`host` served in-process on a free port with the given connection limits, until the end."""
    server = make_server(host, 0, limits=ConnectionLimits(**limits))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@dataclass
class FixtureHost:
    """A devhost process serving tests/devhost/fixture_app."""

    settings: Path
    state: Path
    record_file: Path
    timer_file: Path
    service: Service | None = None

    @property
    def url(self) -> str:
        assert self.service is not None
        return self.service.info["url"]

    def start(self) -> FixtureHost:
        env = {
            "DEVHOST_FUNCTION_KEY": FIXTURE_KEY,
            "DEVHOST_MASTER_KEY": FIXTURE_MASTER_KEY,
            "DEVHOST_QUEUE_LEASE_SECONDS": FIXTURE_LEASE_SECONDS,
        }
        self.service = start_devhost(
            settings=self.settings, root=FIXTURE_APP, state_dir=self.state, env=env
        )
        return self

    def stop(self) -> None:
        if self.service:
            self.service.stop()

    def kill(self) -> None:
        """SIGKILL, like a crashed host: nothing is cleaned up."""
        assert self.service is not None
        os.killpg(self.service.proc.pid, signal.SIGKILL)
        self.service.proc.wait(10)

    def logs(self) -> str:
        return "".join(self.service.output) if self.service else ""

    def records(self) -> list[dict]:
        if not self.record_file.exists():
            return []
        lines = self.record_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def ticks(self, function: str) -> list[dict]:
        """What the fixture app's timer `function` recorded, one entry per invocation."""
        if not self.timer_file.exists():
            return []
        lines = self.timer_file.read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        return [e for e in entries if e["function"] == function]

    def get(
        self, path: str, *, key: str | None = FIXTURE_KEY, headers: dict | None = None
    ) -> requests.Response:
        headers = {**({"x-functions-key": key} if key else {}), **(headers or {})}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30)


def new_fixture_host(tmp: Path, azurite, extra_values: dict[str, str] | None = None) -> FixtureHost:
    """A not yet started FixtureHost whose settings and files live under `tmp`."""
    settings = tmp / "local.settings.json"
    record_file = tmp / "records.jsonl"
    timer_file = tmp / "timers.jsonl"
    values = {
        "AzureWebJobsStorage": azurite.connection_string,
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "FIXTURE_SETTING": "from-local-settings",
        "FIXTURE_RECORD_FILE": str(record_file),
        "FIXTURE_TIMER_FILE": str(timer_file),
        # Yearly: the timer tests set it to every second where they need ticks.
        "FIXTURE_TICK_SCHEDULE": "0 0 0 1 1 *",
        **(extra_values or {}),
    }
    write_local_settings(settings, values, http_port=0)
    return FixtureHost(settings, tmp / "state", record_file, timer_file)


@pytest.fixture(scope="module")
def fixture_host(tmp_path_factory: pytest.TempPathFactory, azurite) -> Iterator[FixtureHost]:
    """The fixture app on a devhost with Azurite for its queue trigger; one per test module."""
    host = new_fixture_host(tmp_path_factory.mktemp("devhost"), azurite).start()
    try:
        yield host
    finally:
        host.stop()
