"""Putting work on the mail queues: the envelope, base64 encoding, and delayed re-scheduling.

Messages are `{"v": 1, "operationId", "request"}` as base64 text, which is what the Functions
host expects by default (`TextBase64EncodePolicy`). Locally `AzureWebJobsStorage` is a
connection string (Azurite); in Azure it is identity-based (`AzureWebJobsStorage__queueServiceUri`
+ `__credential=managedidentity` + `__clientId`). A re-scheduled attempt is a NEW message with a
visibility delay, so throttling never counts towards the original's maxDequeueCount.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Any

import msgspec

from shared.errors import PayloadTooLarge, StorageUnavailable
from shared.kinds import KINDS
from shared.settings import Settings

ENVELOPE_VERSION = 1
POISON_SUFFIX = "-poison"
# A queue message holds at most 64 KiB; base64 makes 4 bytes of every 3.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_ENVELOPE_BYTES = MAX_MESSAGE_BYTES * 3 // 4
# Storage refuses a visibility timeout over 7 days.
MAX_DELAY_SECONDS = 7 * 24 * 3600


class StorageNotConfigured(RuntimeError):
    """Neither a connection string nor a queue service URI is set."""


class Envelope(msgspec.Struct, forbid_unknown_fields=False):
    """The queue message (DESIGN §4); `request` is the HTTP body as JSON."""

    operationId: str
    request: dict[str, Any]
    v: int = ENVELOPE_VERSION


def encode_envelope(operation_id: str, request: dict[str, Any]) -> bytes:
    """The envelope as JSON bytes; raises PayloadTooLarge when it cannot fit one message."""
    data = msgspec.json.encode(
        {"v": ENVELOPE_VERSION, "operationId": operation_id, "request": request}
    )
    if len(data) > MAX_ENVELOPE_BYTES:
        raise PayloadTooLarge(
            f"Queued requests are limited to {MAX_ENVELOPE_BYTES} bytes of JSON (a queue "
            "message holds 64 KiB); send large attachments by `url`, or use mode sync."
        )
    return data


def decode_envelope(body: bytes | str) -> Envelope:
    """Parse a message body; raises msgspec.DecodeError / ValidationError when malformed."""
    return msgspec.json.decode(body, type=Envelope)


def storage_credential(settings: Settings) -> Any:
    """The managed identity for identity-based storage connections (AzureWebJobsStorage__*)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.storage_client_id:
        return ManagedIdentityCredential(client_id=settings.storage_client_id)
    return DefaultAzureCredential()


class Queues:
    """QueueClients for the mail queues, created (with their queue) on first use."""

    def __init__(self, settings: Settings, **client_options: Any) -> None:
        """`client_options` go to every QueueClient (e.g. `retry_total=0` in tests)."""
        self.settings = settings
        self.client_options = client_options
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, queue_name: str) -> Any:
        with self._lock:
            if queue_name in self._clients:
                return self._clients[queue_name]
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        policy = {"message_encode_policy": TextBase64EncodePolicy(), **self.client_options}
        conn = self.settings.storage_connection
        if conn:
            client = QueueClient.from_connection_string(conn, queue_name, **policy)
        elif self.settings.storage_queue_service_uri:
            client = QueueClient(
                self.settings.storage_queue_service_uri,
                queue_name,
                credential=storage_credential(self.settings),
                **policy,
            )
        else:
            raise StorageNotConfigured(
                "No storage is configured: set AzureWebJobsStorage (a connection string) or "
                "AzureWebJobsStorage__queueServiceUri with a managed identity."
            )
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        with self._lock:
            return self._clients.setdefault(queue_name, client)

    def to_poison(self, kind: str, body: bytes) -> None:
        """Put a message that is not ours to run on `<queue>-poison` as it came (an operator
        looks at it); raises StorageUnavailable."""
        from azure.core.exceptions import AzureError

        try:
            self.client(KINDS[kind].queue + POISON_SUFFIX).send_message(
                body.decode("utf-8", errors="replace")
            )
        except (AzureError, StorageNotConfigured) as exc:
            raise StorageUnavailable(
                f"Queue storage is unavailable ({type(exc).__name__}); retry later.",
                retry_after=5.0,
            ) from exc

    def enqueue(self, kind: str, envelope: bytes, delay: float = 0.0) -> None:
        """Add one message for `kind` (send/move/draft), visible after `delay` seconds.

        Raises StorageUnavailable (503 + Retry-After to callers) when the queue cannot take it.
        """
        from azure.core.exceptions import AzureError

        visibility = min(MAX_DELAY_SECONDS, max(0, math.ceil(delay)))
        try:
            self.client(KINDS[kind].queue).send_message(
                envelope.decode("utf-8"), visibility_timeout=visibility or None
            )
        except (AzureError, StorageNotConfigured) as exc:
            raise StorageUnavailable(
                f"Queue storage is unavailable ({type(exc).__name__}); retry later.",
                retry_after=5.0,
            ) from exc
