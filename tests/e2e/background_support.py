"""Helpers for the background-work end-to-end tests: a fast-polling devhost, connections, a
signed-callback receiver and counting mails by operation id in the sandbox.

The devhost runs the product's function_app from a temp root whose host.json polls every
0.2 s with a 1 s visibilityTimeout and maxDequeueCount 3 (the product's host.json is unchanged),
so retries and poison handling fit in seconds instead of minutes.
"""

from __future__ import annotations

import http.server
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devhost.bootstrap import SANDBOX_CLIENT_SECRET, sandbox_connection
from devhost.local_settings import sandbox_values, write_local_settings
from devhost.services import ROOT, start_devhost
from tests.e2e.conftest import Devhost
from tests.functional.mailboxes import Mailboxes
from tests.loopback_https import start_https_server, stop_https_server

OP_PROPERTY = "String {3f5c8a2e-7b1d-4e6f-9a0c-2d4b6e8f1a3c} Name OperationId"
SIGNED_CONNECTION = "signed.contoso.test"
SIGNING_SECRET = "test-signing-secret-0123456789"
MAX_DEQUEUE = 3
# The fast devhost's timing (app settings below): tests derive their waits from these.
CLAIM_SECONDS = 15
LEASE_SECONDS = 4
GRAPH_TIMEOUT_SECONDS = 10
GRAPH_RETRY_BUDGET_SECONDS = 2
HOST_JSON = {
    "version": "2.0",
    "extensions": {
        "http": {"routePrefix": "api"},
        "queues": {
            "batchSize": 16,
            "newBatchThreshold": 8,
            "maxDequeueCount": MAX_DEQUEUE,
            "visibilityTimeout": "00:00:01",
            "maxPollingInterval": "00:00:00.2",
            "messageEncoding": "base64",
        },
    },
}
APP_ENTRIES = (
    "function_app.py",
    "send_mail",
    "move_mail",
    "create_draft",
    "reply_mail",
    "forward_mail",
    "export_mail",
    "api_meta",
    "shared",
)


class FastDevhost(Devhost):
    """The e2e Devhost, hosting the app from a temp root with a fast host.json."""

    root: Path = ROOT

    def start(self) -> FastDevhost:
        if self.service and self.service.proc.poll() is None:
            return self
        if self.service:
            self._old_output += self.service.output
        env = {
            "DEVHOST_FUNCTION_KEY": self.key,
            "DEVHOST_QUEUE_LEASE_SECONDS": str(LEASE_SECONDS),
            **self.env,
        }
        self.service = start_devhost(
            settings=self.settings, root=self.root, state_dir=self.state, env=env
        )
        return self


def make_root(tmp: Path) -> Path:
    """A folder with host.json and links to the product's function app."""
    root = tmp / "app"
    root.mkdir()
    (root / "host.json").write_text(json.dumps(HOST_JSON), encoding="utf-8")
    for name in (*APP_ENTRIES, "operations_api", "auth_routes", "signin_health"):
        if (ROOT / name).exists():
            os.symlink(ROOT / name, root / name)
    return root


def store_connections(sandbox_url: str, ca: str) -> None:
    """contoso.test (plain) and signed.contoso.test (callbacks + signed requests) in Key Vault."""
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    from devhost.bootstrap import SANDBOX_CLIENT_ID, SANDBOX_TENANT_ID, store_sandbox_connection
    from shared.identity.connections import save_connection

    store_sandbox_connection(sandbox_url, ca)
    credential = ClientSecretCredential(
        SANDBOX_TENANT_ID,
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        authority=sandbox_url,
        disable_instance_discovery=True,
    )
    client = SecretClient(sandbox_url, credential, verify_challenge_resource=False)
    try:
        signed = sandbox_connection(sandbox_url, SIGNED_CONNECTION)
        signed["callbackUrlHosts"] = ["127.0.0.1"]
        signed["requireSignedRequests"] = True
        save_connection(client, signed, SANDBOX_CLIENT_SECRET, signing_key=SIGNING_SECRET)
    finally:
        client.close()
        credential.close()


def start_fast_devhost(
    sandbox, azurite, tmp: Path, extra: dict[str, str] | None = None, env: dict | None = None
) -> FastDevhost:
    """A started FastDevhost against the sandbox (reset, connections stored) and Azurite."""
    settings = tmp / "local.settings.json"
    values = sandbox_values(
        sandbox_url=sandbox.url,
        ca_file=sandbox.ca,
        storage=azurite.connection_string,
        devhost_port=None,
    )
    values.update(
        {
            # Throttling goes back to the queue quickly instead of waiting inside one call.
            "GRAPH_RETRY_BUDGET_SECONDS": str(GRAPH_RETRY_BUDGET_SECONDS),
            "GRAPH_TIMEOUT_SECONDS": str(GRAPH_TIMEOUT_SECONDS),
            "OPERATION_CLAIM_SECONDS": str(CLAIM_SECONDS),
            "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": str(MAX_DEQUEUE),
            # The sandbox's own send rate is the one these tests meet (often lifted); the
            # product's pacing is tested in test_scale_out.py. A killed host's slots free soon.
            "MAILBOX_SENDS_PER_MINUTE": "0",
            "MAILBOX_SLOT_SECONDS": "5",
            **(extra or {}),
        }
    )
    write_local_settings(settings, values, http_port=0)
    sandbox.reset()
    store_connections(sandbox.url, sandbox.ca)
    host = FastDevhost(settings, tmp / "state", sandbox.url, sandbox.ca, env=dict(env or {}))
    host.root = make_root(tmp)
    host.start()
    return host


@pytest.fixture(scope="module", name="bg")
def bg_fixture(sandbox, azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastDevhost]:
    """A devhost with fast queue settings, against the sandbox (reset) and Azurite."""
    host = start_fast_devhost(sandbox, azurite, tmp_path_factory.mktemp("bg-devhost"))
    try:
        yield host
    finally:
        host.stop()
        host.http.close()


def wait_status(
    host: Devhost,
    operation_id: str,
    done: Callable[[dict], bool],
    timeout: float = 60.0,
    *,
    signing_key: str | None = None,
    connection: str | None = None,
) -> dict:
    """Poll GET /api/operations/{id} until `done(status)` (bounded); returns the last status.
    With `signing_key`, each GET is signed for `connection` (a fresh nonce each time)."""
    deadline = time.monotonic() + timeout
    while True:
        kw: dict[str, Any] = {}
        if signing_key:
            from tests.caller_signing import caller_auth

            kw["auth"] = caller_auth(signing_key, connection or SIGNED_CONNECTION)
        resp = host.get(f"/api/operations/{operation_id}", timeout=30, **kw)
        body = resp.json() if resp.status_code == 200 else {}
        if body and done(body):
            return body
        if time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def finished(body: dict) -> bool:
    return body.get("status") in {"succeeded", "failed", "parked", "poisoned"}


def sent_copies(boxes: Mailboxes, mailbox: str) -> dict[str, int]:
    """Operation id → number of messages in `mailbox`'s Sent Items carrying it, once nothing
    of `mailbox` is in transit any more (so the counts are final)."""
    boxes.settle(mailbox)
    counts: dict[str, int] = {}
    url = f"users/{mailbox}/mailFolders/sentitems/messages"
    params = {
        "$top": "1000",
        "$select": "id",
        "$expand": f"singleValueExtendedProperties($filter=id eq '{OP_PROPERTY}')",
    }
    data = boxes.get(url, **params)
    while True:
        for item in data.get("value", []):
            for prop in item.get("singleValueExtendedProperties") or []:
                counts[prop["value"]] = counts.get(prop["value"], 0) + 1
        link = data.get("@odata.nextLink")
        if not link:
            return counts
        data = boxes.get(link.split("/v1.0/", 1)[1])


def queue_length(connection_string: str, name: str) -> int:
    """Messages in a queue (0 when it does not exist)."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    client = QueueClient.from_connection_string(connection_string, name)
    try:
        return client.get_queue_properties().approximate_message_count
    except ResourceNotFoundError:
        return 0
    finally:
        client.close()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    """An HTTPS server on loopback (certificate from the sandbox CA) recording POSTs."""

    ca_dir: Path
    received: list[Received] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}/docuflow/callback"

    def __enter__(self) -> CallbackReceiver:
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(Received(dict(self.headers.items()), self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = start_https_server(self.ca_dir, Handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.server is not None
        stop_https_server(self.server)
