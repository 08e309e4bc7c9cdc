"""Shared fixtures: the sandbox and Azurite as real processes on free loopback ports."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from devhost.services import Service, azurite_connection_string, start_azurite, start_sandbox

SEED_TENANT = "contoso.test"
SEED_TENANT_ID = "8f3c1a52-0000-4000-8000-00000000c0de"
SEED_CLIENT_ID = "5d1e7c9a-0000-4000-8000-00000000a11c"
SEED_CLIENT_SECRET = "sandbox-app-secret"
SEED_PASSWORD = "Sandbox-Passw0rd!"
FABRIKAM_TENANT_ID = "2b7e9d41-0000-4000-8000-0000000fab01"
FABRIKAM_CLIENT_ID = "7a4f2c18-0000-4000-8000-0000000fab0a"
FABRIKAM_CLIENT_SECRET = "fabrikam-app-secret"
REPO = Path(__file__).resolve().parent.parent
_copies = itertools.count()
# The sandbox's explicit fast mode (docs/sandbox.md): sent copies filed at once, no sending rate.
# Only for tests that send many mails and test no timing; everything else runs realistic.
INSTANT_TIMING = {"sentCopyDelayMs": 0, "sendRatePerMinute": None}
# The modules that take longest, longest first (as measured on 2 busy cores). `make test` runs
# the suite on pytest-xdist workers, each module on one worker (`--dist loadfile`); the workers
# take these first, so that none is left to run alone at the end (tests/unit/test_suite_order.py).
LONGEST_FIRST = (
    "tests/e2e/test_schemathesis.py",
    "tests/e2e/test_connections_service_account.py",
    "tests/e2e/test_scale_out.py",
    "tests/e2e/test_run_all_signals.py",
    "tests/e2e/test_memory_edge.py",
    "tests/e2e/test_filing_campaign.py",
    "tests/e2e/test_signin_health.py",
    "tests/e2e/test_user_signin.py",
    "tests/e2e/test_security_findings.py",
    "tests/e2e/test_background_parked.py",
    "tests/infra/test_packaging.py",
    "tests/e2e/test_admin_cli.py",
    "tests/e2e/test_fault_campaign.py",
    "tests/e2e/test_admin_audit.py",
    "tests/infra/test_checkov.py",
    "tests/infra/test_functions_doctor.py",
    "tests/e2e/test_fixture_cleanup.py",
    "tests/e2e/test_conversations_e2e.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a pytest-xdist worker: the LONGEST_FIRST modules first, the rest in their own order."""
    if not hasattr(config, "workerinput"):
        return  # a run in one process keeps pytest's order
    rank = {module: position for position, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


def q(graph_id: str) -> str:
    """A Graph id as one URL path segment: ids carry '/', '+' and '=' (as Exchange's do)."""
    return quote(graph_id, safe="")


def fresh_function_app(path: Path = REPO / "function_app.py") -> object:
    """A new FunctionApp from `path`, loaded under a module name of its own.

    get_functions() refuses a second call on one FunctionApp (it checks names against those it
    saw before), so each test that indexes the app gets its own copy.
    """
    spec = importlib.util.spec_from_file_location(f"function_app_copy_{next(_copies)}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@dataclass
class Sandbox:
    """A running sandbox: its base URL, CA bundle and a session for its control API."""

    url: str
    ca: str
    service: Service
    http: requests.Session

    def control(self, method: str, path: str, **kw) -> requests.Response:
        """Call the control API (`/_sandbox/...`); raises on an HTTP error."""
        resp = self.http.request(method, f"{self.url}/_sandbox/{path.lstrip('/')}", **kw)
        resp.raise_for_status()
        return resp

    def reset(self) -> None:
        self.control("POST", "reset")

    def add_fault(self, **spec) -> dict:
        return self.control("POST", "faults", json=spec).json()

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def limits(self) -> dict:
        return self.control("GET", "limits").json()

    def instant(self) -> None:
        """Switch to the instant timing until the next reset (see INSTANT_TIMING)."""
        self.control("PATCH", "limits", json=INSTANT_TIMING)

    def transit_seconds(self) -> float:
        """How long a sent mail may take to reach Sent Items and its recipients: the current
        sentCopyDelayMs plus a margin for a loaded machine (polls derive their deadline here)."""
        return self.limits()["sentCopyDelayMs"] / 1000 + 15.0

    def requests_log(self) -> list[dict]:
        data = self.control("GET", "requests").json()
        return data["value"] if isinstance(data, dict) else data


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox for the session (default seed, state in a temp dir); reset it per test."""
    state = tmp_path_factory.mktemp("sandbox-state")
    service = start_sandbox(port=0, state_dir=state)
    url, ca = service.info["url"], service.info["ca"]
    # The machine sets REQUESTS_CA_BUNDLE; point it (and OpenSSL) at the sandbox CA so every
    # requests-based client in this process (MSAL, azure-core, ours) trusts the sandbox.
    previous = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    os.environ["SSL_CERT_FILE"] = ca
    http = requests.Session()
    http.verify = ca
    try:
        yield Sandbox(url, ca, service, http)
    finally:
        http.close()
        service.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def fresh_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session sandbox, reset to its seed with no faults."""
    sandbox.reset()
    return sandbox


@dataclass
class Azurite:
    service: Service
    connection_string: str


@contextlib.contextmanager
def running_azurite() -> Iterator[Azurite]:
    """An in-memory Azurite on a free port, stopped on leaving."""
    service = start_azurite()
    try:
        yield Azurite(service, azurite_connection_string(service))
    finally:
        service.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite for the session."""
    with running_azurite() as storage:
        yield storage


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
