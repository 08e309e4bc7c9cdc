"""The devhost: load settings, import function_app, serve its HTTP, queue and timer triggers.

A worker instance (`queue_only`) serves the queue triggers alone: several of them on the same
queues are what a scaled-out Flex Consumption app is (one HTTP front, timers on one instance).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devhost.app_index import FunctionIndex, import_app, index_functions
from devhost.host_config import HostConfig, load_host_config
from devhost.http_host import DevhostServer, HttpHost, make_server
from devhost.keys import HostKeys, load_keys
from devhost.local_settings import apply_values, read_local_settings
from devhost.streams_mode import check_http_signature, http_streams_enabled
from devhost.timer_host import TimerListener

log = logging.getLogger("devhost")


@dataclass
class Devhost:
    """A started devhost; stop() ends the HTTP server, the queue listeners and the timers."""

    url: str
    keys: HostKeys
    index: FunctionIndex
    config: HostConfig
    server: DevhostServer | None
    listeners: list = field(default_factory=list)
    _thread: threading.Thread | None = None
    timers: list[TimerListener] = field(default_factory=list)
    http: HttpHost | None = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop timers and queue listeners, giving running functions `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        for part in [*self.timers, *self.listeners]:
            part.stop(max(0.0, deadline - time.monotonic()))
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.http is not None and self.http.worker is not None:
            self.http.worker.stop()


def start_devhost(
    *,
    root: Path,
    settings: Path | None,
    port: int = 7071,
    state_dir: Path = Path(".state"),
    lease_seconds: float | None = None,
    queue_only: bool = False,
) -> Devhost:
    """Apply the settings, import and index the app, then start serving in background threads.

    `queue_only`: a worker instance, no HTTP server and no timers (url is empty).

    Settings go into os.environ BEFORE function_app is imported, because modules may read
    them at import time, exactly as under the Functions host.
    """
    if settings is not None:
        apply_values(read_local_settings(settings).get("Values", {}))
    config = load_host_config(root)
    app = import_app(root)
    index = index_functions(app)
    # As the worker does once it indexed the app: which HTTP types, and does each function
    # declare them (raises StreamsModeError, like a failed function load).
    streams = http_streams_enabled()
    for function in index.http:
        check_http_signature(function.name, function.func, function.trigger_arg, streams)
    keys = load_keys(state_dir / "devhost-keys.json")

    listeners = []
    deliver = None
    if index.queue or any(f.outputs for f in index.http):
        # Imported only when the app uses queues: it pulls in the storage SDK.
        from devhost.queue_host import QueueListener, StorageQueues, lease_seconds_from_env

        queues = StorageQueues(config.queues.message_encoding)
        deliver = queues.deliver_outputs
        lease = lease_seconds if lease_seconds is not None else lease_seconds_from_env()
        listeners = [QueueListener(f, config.queues, queues, root, lease) for f in index.queue]

    # Schedules are parsed before anything starts, so a bad one stops the devhost with its reason.
    timers = [TimerListener(f, root, state_dir) for f in index.timer]
    if queue_only:
        for listener in listeners:
            listener.start()
        return Devhost("", keys, index, config, None, listeners, None, [])
    runners = {t.function.name: t.trigger for t in timers}
    http = HttpHost(index.http, keys, root, config.route_prefix, deliver, runners, streams)
    server = make_server(http, port)
    bound = server.server_address[1]
    # A short poll interval: stop() (which waits for serve_forever to notice) is quick.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="devhost-http", daemon=True
    )
    thread.start()
    for listener in listeners:
        listener.start()
    for timer in timers:
        timer.start()
    url = f"http://127.0.0.1:{bound}"
    return Devhost(url, keys, index, config, server, listeners, thread, timers, http)
