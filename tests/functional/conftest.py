"""Operations run directly (no devhost) against the real sandbox: Key Vault, Entra ID, Graph."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests

from shared.graph.limiter import InstanceLimits
from shared.identity.connections import save_connection
from shared.operations.context import OperationContext, Progress
from shared.runtime import Runtime
from shared.settings import Settings
from shared.work.queueing import Queues
from shared.work.table_store import TableOperationStore
from tests.conftest import (
    SEED_CLIENT_ID,
    SEED_CLIENT_SECRET,
    SEED_TENANT_ID,
    Azurite,
    Sandbox,
    running_azurite,
)

CONNECTION = "contoso.test"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """An Azurite of these tests' own. The e2e tests' devhost lives for the whole session on
    the shared one and listens on the product's queues: it would take the messages these tests
    queue and then read back (an xdist worker may run both directories)."""
    with running_azurite() as storage:
        yield storage


@pytest.fixture
def settings(azurite) -> Settings:
    return Settings.load(env={}, storage_connection=azurite.connection_string)


@pytest.fixture
def store(settings) -> TableOperationStore:
    return TableOperationStore.from_settings(settings)


@pytest.fixture
def queues(settings) -> Queues:
    return Queues(settings)


def sandbox_connection(url: str) -> dict:
    """The sandbox's ready connection, in the Key Vault contract's format."""
    return {
        "name": CONNECTION,
        "mode": "app",
        "tenantId": SEED_TENANT_ID,
        "clientId": SEED_CLIENT_ID,
        "authorityHost": url,
        "graphBaseUrl": f"{url}/v1.0",
        "graphScope": "https://graph.microsoft.com/.default",
        "instanceDiscovery": False,
        "allowedSenders": ["*@contoso.test"],
        "attachmentUrlHosts": ["127.0.0.1"],
        "allowPrivateAttachmentHosts": True,
        "callbackUrlHosts": [],
        "archiveUrlHosts": ["127.0.0.1"],
        "requireSignedRequests": False,
        "credential": {"type": "client_secret"},  # its secret name is derived from the name
    }


def secret_client(url: str):
    """The sandbox vault as the seed's app (TLS trust: the `sandbox` fixture's CA settings)."""
    from devhost.bootstrap import sandbox_secret_client

    return sandbox_secret_client(
        url, tenant_id=SEED_TENANT_ID, client_id=SEED_CLIENT_ID, client_secret=SEED_CLIENT_SECRET
    )


def wait_for_graph(sandbox: Sandbox, timeout: float = 5.0) -> None:
    """Wait until the sandbox answers Graph; fail (never skip) with the status if it does not."""
    deadline = time.monotonic() + timeout
    while True:
        resp = sandbox.http.get(
            f"{sandbox.url}/v1.0/users/anna@contoso.test/mailFolders", timeout=5
        )
        if resp.status_code in (401, 403, 200):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"sandbox Graph not available (HTTP {resp.status_code})")
        time.sleep(0.2)


class LimitsTime:
    """The mailbox limits' clock; a test moves it on to skip a pause Graph asked for."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@dataclass
class Ops:
    """Build operation contexts against the sandbox, and look into mailboxes."""

    sandbox: Sandbox
    runtime: Runtime
    settings: Settings
    limits_time: LimitsTime

    def context(
        self, operation_id: str | None = None, *, progress: Progress | None = None
    ) -> OperationContext:
        return self.runtime.context(
            CONNECTION, operation_id or str(uuid.uuid4()), progress=progress
        )

    def graph_get(self, path: str, **params) -> dict:
        ctx = self.context()
        return ctx.graph.get(path, params=params or None)

    def folder_messages(self, mailbox: str, folder: str) -> list[dict]:
        return self.graph_get(f"users/{mailbox}/mailFolders/{folder}/messages", **{"$top": "100"})[
            "value"
        ]

    def settle(self, mailbox: str) -> None:
        """Wait until nothing `mailbox` sent is in transit (its Outbox is empty): from then on
        its Sent Items and the recipients' copies are final and may be counted. Bounded by
        the sandbox's transit time; fails if mail stays stuck."""
        in_transit = until(
            lambda: not self.folder_messages(mailbox, "outbox"), self.sandbox.transit_seconds()
        )
        assert in_transit, f"mail of {mailbox} stayed in its Outbox"

    def file_url(self, name: str, size: int, seed: str = "1") -> str:
        return f"{self.sandbox.url}/_sandbox/files/{name}?size={size}&seed={seed}"


@pytest.fixture
def ops(fresh_sandbox: Sandbox) -> Ops:
    wait_for_graph(fresh_sandbox)
    client = secret_client(fresh_sandbox.url)
    save_connection(client, sandbox_connection(fresh_sandbox.url), SEED_CLIENT_SECRET)
    settings = Settings(
        key_vault_url=fresh_sandbox.url,
        graph_base_url=f"{fresh_sandbox.url}/v1.0",
        authority_host=fresh_sandbox.url,
        graph_retry_budget_seconds=6.0,
        ca_bundle=fresh_sandbox.ca,
    )
    # Per-instance mailbox limits (no storage here) on a clock tests may move.
    limits_time = LimitsTime()
    limits = InstanceLimits(clock=limits_time)
    runtime = Runtime(settings, lambda: client, mailbox_limits=limits)
    return Ops(fresh_sandbox, runtime, settings, limits_time)


def until(predicate: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


__all__ = ["CONNECTION", "Ops", "requests", "until"]
