"""End-to-end fixture: the real function_app on a devhost process, against the sandbox and Azurite.

`devhost` (session scope) writes a temp local.settings.json, stores the "contoso.test"
connection in the sandbox Key Vault and starts `python -m devhost --port 0`. `fresh_devhost`
also resets the sandbox (which empties its Key Vault) and stores the connection again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.bootstrap import store_sandbox_connection
from devhost.local_settings import sandbox_values, write_local_settings
from devhost.services import ROOT, Service, start_devhost

# Short fetch lease so a killed devhost's messages come back within a test (Azure: 10 min).
E2E_QUEUE_LEASE_SECONDS = "10"


@dataclass
class Devhost:
    """A devhost process serving the product's function_app; requests carry the function key."""

    settings: Path
    state: Path
    sandbox_url: str
    sandbox_ca: str
    key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    env: dict[str, str] = field(default_factory=dict)
    service: Service | None = None
    http: requests.Session = field(default_factory=requests.Session)
    _old_output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.service is not None, "devhost is not running"
        return self.service.info["url"]

    def start(self) -> Devhost:
        """Start (or restart) the devhost process; returns when it printed its ready line."""
        if self.service and self.service.proc.poll() is None:
            return self
        if self.service:
            self._old_output += self.service.output
        env = {
            "DEVHOST_FUNCTION_KEY": self.key,
            "DEVHOST_QUEUE_LEASE_SECONDS": E2E_QUEUE_LEASE_SECONDS,
            **self.env,
        }
        self.service = start_devhost(
            settings=self.settings, root=ROOT, state_dir=self.state, env=env
        )
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM), like Ctrl-C."""
        if self.service:
            self.service.stop()

    def kill(self) -> None:
        """SIGKILL, like a crashed host: leased queue messages reappear after their lease."""
        if self.service and self.service.proc.poll() is None:
            os.killpg(self.service.proc.pid, signal.SIGKILL)
            self.service.proc.wait(10)

    def logs(self) -> str:
        """Everything the devhost printed, across restarts."""
        current = self.service.output if self.service else []
        return "".join(self._old_output + current)

    def bootstrap(self) -> None:
        """Store the "contoso.test" connection in the sandbox Key Vault (again)."""
        store_sandbox_connection(self.sandbox_url, self.sandbox_ca)

    def request(
        self, method: str, path: str, *, key: str | None = None, **kw: Any
    ) -> requests.Response:
        """`path` is under the devhost (e.g. /api/mail/send); key=None uses the function key,
        key="" sends none."""
        headers = dict(kw.pop("headers", None) or {})
        chosen = self.key if key is None else key
        if chosen:
            headers.setdefault("x-functions-key", chosen)
        kw.setdefault("timeout", 120)
        return self.http.request(method, f"{self.url}{path}", headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kw)


def start_product_devhost(sandbox, storage: str, tmp: Path) -> Devhost:
    """The product's function app on a started devhost (port 0) against `sandbox` and the
    storage connection string `storage`, with the sandbox connection stored; files in `tmp`."""
    settings = tmp / "local.settings.json"
    values = sandbox_values(
        sandbox_url=sandbox.url,
        ca_file=sandbox.ca,
        storage=storage,
        devhost_port=None,
    )
    # The sandbox's own send rate is the one these tests meet (some lift it to send hundreds);
    # the product's pacing of it is tested in test_scale_out.py.
    values["MAILBOX_SENDS_PER_MINUTE"] = "0"
    write_local_settings(settings, values, http_port=0)
    host = Devhost(settings, tmp / "state", sandbox.url, sandbox.ca)
    host.bootstrap()
    return host.start()


@contextlib.contextmanager
def running_product_devhost(sandbox, storage: str, tmp: Path) -> Iterator[Devhost]:
    """`start_product_devhost`, stopped (and its HTTP session closed) on leaving."""
    host = start_product_devhost(sandbox, storage, tmp)
    try:
        yield host
    finally:
        host.stop()
        host.http.close()


@pytest.fixture(scope="session")
def devhost(sandbox, azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    """The product's function app on a devhost (port 0) with the sandbox connection stored."""
    tmp = tmp_path_factory.mktemp("e2e-devhost")
    with running_product_devhost(sandbox, azurite.connection_string, tmp) as host:
        yield host


@pytest.fixture
def fresh_devhost(devhost: Devhost, sandbox) -> Devhost:
    """The session devhost, running, with the sandbox reset and the connection stored again."""
    sandbox.reset()
    devhost.bootstrap()
    return devhost.start()
