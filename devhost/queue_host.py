"""Run the app's queue triggers on Azurite with host.json's extensions.queues semantics.

Per queue-trigger function, one poller thread fetches up to batchSize messages (made invisible
for a lease that a keep-alive renews while the function runs, like the host's 10-minute
visibility renewal), hands each to a worker thread, and fetches again once no more than
newBatchThreshold are still running. An empty queue backs the poller off exponentially (with
jitter) up to maxPollingInterval. Success deletes the message; failure makes it visible again
after visibilityTimeout; the maxDequeueCount-th failure moves it to `<queue>-poison`. A killed
devhost renews nothing, so its messages reappear once their lease runs out, as in Azure.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import random
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# The worker's own message class: func.QueueMessage plus dequeue_count and the timestamps.
from azure.functions.queue import QueueMessage

from devhost.app_index import IndexedFunction, QueueOutput
from devhost.host_config import QueueOptions
from devhost.invoke import invoke

log = logging.getLogger("devhost.queues")

# The host's first wait after an empty poll; it doubles from here up to maxPollingInterval.
MIN_POLL_INTERVAL = 0.1
# The host keeps a fetched message invisible for 10 minutes and renews that while it runs.
DEFAULT_LEASE_SECONDS = 600.0
LEASE_ENV = "DEVHOST_QUEUE_LEASE_SECONDS"
POISON_SUFFIX = "-poison"


class QueueSetupError(RuntimeError):
    """A queue trigger's connection setting is missing or unusable."""


def encode_message(data: str | bytes, encoding: str) -> str:
    """A queue message's text as the host writes it (base64 unless messageEncoding is none)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")


def decode_message(content: str, encoding: str) -> bytes:
    """A message's body bytes; raises ValueError if base64 is expected and it is not base64."""
    if encoding == "base64":
        try:
            return base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError(
                "queue message is not valid base64 (host.json messageEncoding)"
            ) from exc
    return content.encode("utf-8")


def lease_seconds_from_env() -> float:
    """The fetch lease: DEVHOST_QUEUE_LEASE_SECONDS (tests shorten it) or the host's 10 minutes."""
    raw = os.environ.get(LEASE_ENV, "")
    return float(raw) if raw else DEFAULT_LEASE_SECONDS


class StorageQueues:
    """QueueClients per (connection setting, queue), created on first use from os.environ."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, connection: str, queue_name: str, *, create: bool = True) -> Any:
        """The QueueClient for `queue_name`; creates the queue once if `create`."""
        key = (connection, queue_name)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        conn_str = os.environ.get(connection)
        if not conn_str:
            raise QueueSetupError(
                f"setting {connection!r} is not set: the queue trigger needs a storage "
                "connection string (local.settings.json Values)"
            )
        # Imported here: HTTP-only apps and the devhost's start-up do not pay for it.
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueClient

        client = QueueClient.from_connection_string(conn_str, queue_name)
        if create:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
        with self._lock:
            return self._clients.setdefault(key, client)

    def send(self, connection: str, queue_name: str, content: str) -> None:
        """Add an already encoded message."""
        self.client(connection, queue_name).send_message(content)

    def deliver_outputs(self, outputs: Iterable[tuple[QueueOutput, Any]]) -> None:
        """Enqueue the values a function set on its queue output bindings."""
        for binding, value in outputs:
            items = value if isinstance(value, list) else [value]
            for item in items:
                content = encode_message(item, self.encoding)
                self.send(binding.connection, binding.queue_name, content)


class _Lease:
    """Keeps a fetched message invisible while its function runs, tracking the pop receipt."""

    def __init__(self, client: Any, message: Any, seconds: float) -> None:
        self.client = client
        self.message_id = message.id
        self.pop_receipt = message.pop_receipt
        self.seconds = seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._renew, name="queue-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 2):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    updated = self.client.update_message(
                        self.message_id, self.pop_receipt, visibility_timeout=int(self.seconds)
                    )
                    self.pop_receipt = updated.pop_receipt
                except Exception as exc:  # a lost lease only means a redelivery
                    log.warning("could not renew the lease on message %s: %s", self.message_id, exc)

    def release(self) -> str:
        """Stop renewing; the current pop receipt, for delete or update."""
        with self._lock:
            self._stop.set()
            return self.pop_receipt


class QueueListener:
    """Polls one queue for one queue-trigger function until stopped."""

    def __init__(
        self,
        function: IndexedFunction,
        options: QueueOptions,
        queues: StorageQueues,
        root: Path,
        lease_seconds: float,
    ) -> None:
        self.function = function
        self.options = options
        self.queues = queues
        self.root = root
        self.lease_seconds = max(1.0, lease_seconds)
        self.poison_name = function.queue_name + POISON_SUFFIX
        self._stop = threading.Event()
        self._in_flight = 0
        self._cond = threading.Condition()
        workers = options.batch_size + options.new_batch_threshold
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"queue-{function.name}")
        self._thread = threading.Thread(target=self._poll, name=f"poll-{function.queue_name}")
        self._thread.daemon = True
        self.client = queues.client(function.connection, function.queue_name)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait up to `timeout` for running functions."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
        # Unfinished messages stay invisible until their lease ends, then come back.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _poll(self) -> None:
        delay = MIN_POLL_INTERVAL
        failing = False
        while not self._stop.is_set():
            with self._cond:
                while (
                    self._in_flight > self.options.new_batch_threshold and not self._stop.is_set()
                ):
                    self._cond.wait(0.5)
            if self._stop.is_set():
                return
            try:
                messages = list(
                    self.client.receive_messages(
                        messages_per_page=self.options.batch_size,
                        max_messages=self.options.batch_size,
                        visibility_timeout=int(self.lease_seconds),
                    )
                )
                if failing:
                    log.info("queue %s reachable again", self.function.queue_name)
                failing = False
            except Exception as exc:  # storage down: keep polling, say so once
                if not failing:
                    log.warning("cannot poll queue %s: %s", self.function.queue_name, exc)
                failing = True
                messages = []
            if messages:
                delay = MIN_POLL_INTERVAL
                for message in messages:
                    with self._cond:
                        self._in_flight += 1
                    self._pool.submit(self._process, message)
                continue
            # Random exponential back-off, as the host's queue listener does when a queue is empty.
            self._stop.wait(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, self.options.max_polling_interval)

    def _process(self, message: Any) -> None:
        try:
            self._handle(message)
        except Exception:
            log.exception("queue message %s: unexpected devhost error", message.id)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _handle(self, message: Any) -> None:
        name, queue = self.function.name, self.function.queue_name
        if message.dequeue_count > self.options.max_dequeue_count:
            # Delivered more often than allowed without a recorded failure (a host died
            # mid-run): the host poisons it before running the function again.
            self._poison(message, message.pop_receipt)
            return
        lease = _Lease(self.client, message, self.lease_seconds)
        try:
            body = decode_message(message.content, self.options.message_encoding)
            msg = QueueMessage(
                id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                expiration_time=message.expires_on,
                insertion_time=message.inserted_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            outcome = invoke(self.function, msg, self.root)
            if outcome.outputs:
                self.queues.deliver_outputs(outcome.outputs)
        except Exception:
            receipt = lease.release()
            log.exception(
                "Executed 'Functions.%s' (Failed, message %s, dequeue count %d)",
                name,
                message.id,
                message.dequeue_count,
            )
            if message.dequeue_count >= self.options.max_dequeue_count:
                self._poison(message, receipt)
            else:
                self.client.update_message(
                    message.id, receipt, visibility_timeout=int(self.options.visibility_timeout)
                )
            return
        receipt = lease.release()
        self.client.delete_message(message.id, receipt)
        log.info(
            "Executed 'Functions.%s' (Succeeded, queue %s, message %s, dequeue count %d)",
            name,
            queue,
            message.id,
            message.dequeue_count,
        )

    def _poison(self, message: Any, receipt: str) -> None:
        # The message text goes over unchanged, so its encoding stays what the sender chose.
        self.queues.send(self.function.connection, self.poison_name, message.content)
        self.client.delete_message(message.id, receipt)
        log.warning(
            "message %s of queue %s moved to %s after %d attempts",
            message.id,
            self.function.queue_name,
            self.poison_name,
            message.dequeue_count,
        )
