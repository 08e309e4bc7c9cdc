"""`python -m devhost`: host function_app locally like `func start` (HTTP + queue triggers).

`--instances N` adds N-1 worker processes that serve the same queue triggers on the same
storage, as a scaled-out Flex Consumption app's instances do (HTTP and timers stay here).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import sys
import threading
from pathlib import Path

from devhost.app_index import AppIndexError
from devhost.host import Devhost, start_devhost
from devhost.host_config import HostConfigError
from devhost.local_settings import LocalSettingsError
from devhost.ncrontab import ScheduleError
from devhost.queue_host import QueueSetupError
from devhost.routes import RouteError
from devhost.services import ServiceError, StartInterrupted, spawn_devhost_worker
from devhost.stop_signals import StopSignals
from devhost.streams_mode import StreamsModeError
from devhost.supervisor import Supervisor

# Running functions get this long to finish on a stop; the process ends at the deadline anyway.
STOP_GRACE_SECONDS = 5.0
STOP_DEADLINE_SECONDS = 7.0


def _default_port(settings: Path | None) -> int:
    """Host.LocalHttpPort from local.settings.json, else 7071 (as Core Tools does)."""
    if settings and settings.exists():
        try:
            return int(json.loads(settings.read_text(encoding="utf-8"))["Host"]["LocalHttpPort"])
        except (KeyError, TypeError, ValueError):
            pass
    return 7071


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT, SIGTERM or SIGHUP; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--port", type=int, help="HTTP port (0 = any free one; default 7071)")
    parser.add_argument("--settings", type=Path, help="local.settings.json (default: under --root)")
    parser.add_argument("--root", type=Path, default=Path("."), help="folder with function_app.py")
    parser.add_argument("--state-dir", type=Path, default=Path(".state"), help="keys live here")
    parser.add_argument("--queue-lease", type=float, help="seconds a fetched message stays hidden")
    parser.add_argument(
        "--instances",
        type=_instances,
        default=1,
        help="instances in all: N-1 worker processes drain the same queues (default 1)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker and args.instances != 1:
        parser.error("a worker is one instance")

    logging.basicConfig(
        level=os.environ.get("DEVHOST_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    # The storage SDK logs every request at INFO; that drowns the function's own lines.
    logging.getLogger("azure").setLevel(logging.WARNING)
    settings = args.settings
    if settings is None and (args.root / "local.settings.json").exists():
        settings = args.root / "local.settings.json"
    port = args.port if args.port is not None else _default_port(settings)
    # Start-up keeps the default signal actions: a stop signal ends it at once, also while it
    # waits on storage retries (nothing to clean up yet; Ctrl-C is a KeyboardInterrupt).
    try:
        host = start_devhost(
            root=args.root,
            settings=settings,
            port=port,
            state_dir=args.state_dir,
            lease_seconds=args.queue_lease,
            queue_only=args.worker,
        )
    except (
        AppIndexError,
        HostConfigError,
        LocalSettingsError,
        QueueSetupError,
        RouteError,
        ScheduleError,
        StreamsModeError,
    ) as exc:
        print(f"devhost: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"devhost: port {port} on 127.0.0.1 is in use", file=sys.stderr, flush=True)
        else:
            print(f"devhost: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("devhost: stopped while starting", file=sys.stderr, flush=True)
        return 130
    with StopSignals() as stop:
        if args.worker:
            return _serve_worker(host, stop)
        workers = Supervisor(stop)
        try:
            _start_workers(args, settings, workers)
        except (ServiceError, StartInterrupted) as exc:
            workers.stop_all()
            host.stop(STOP_GRACE_SECONDS)
            print(f"devhost: a worker instance did not start: {exc}", file=sys.stderr, flush=True)
            return 2
        return _serve(host, stop, workers)


def _instances(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 32:
        raise argparse.ArgumentTypeError(f"{text!r}: instances are 1 to 32")
    return int(text)


def _start_workers(args: argparse.Namespace, settings: Path | None, workers: Supervisor) -> None:
    """Spawn instances 2..N (queue triggers only) and wait until each is ready."""
    extra = ["--worker"]
    if args.queue_lease is not None:
        extra += ["--queue-lease", str(args.queue_lease)]
    for number in range(2, args.instances + 1):
        workers.add(
            spawn_devhost_worker(
                number,
                settings=settings.resolve() if settings else None,
                root=args.root.resolve(),
                state_dir=args.state_dir.resolve(),
                extra_args=extra,
            )
        )
    workers.wait_ready(*workers.services)


def _serve(host: Devhost, stop: StopSignals, workers: Supervisor) -> int:
    """Print the functions and the ready line; on a stop signal, stop in bounded time."""
    try:
        # Raises if the parent is gone already (closed pipe): the host stops then, too.
        _print_functions(host)
        for number, worker in enumerate(workers.services, start=2):
            print(f"  instance {number}: pid {worker.pid} (queue triggers)")
        print(f"devhost ready {host.url}", flush=True)
        stop.wait()
        with contextlib.suppress(OSError):
            print("devhost stopping", flush=True)
    finally:
        # Whatever a function is stuck in, the process ends in bounded time (a supervisor, or
        # the parent-death signal, may be waiting for it).
        watchdog = threading.Timer(STOP_DEADLINE_SECONDS, os._exit, args=(3,))
        watchdog.daemon = True
        watchdog.start()
        # The workers first (all at once): they stop within their own grace, like this one.
        stopping = threading.Thread(target=workers.stop_all, args=(STOP_DEADLINE_SECONDS - 1,))
        stopping.start()
        host.stop(STOP_GRACE_SECONDS)
        stopping.join()
    return 0


def _serve_worker(host: Devhost, stop: StopSignals) -> int:
    """A worker instance: queue triggers until a stop signal (or its parent's death)."""
    try:
        print(f"devhost worker ready pid={os.getpid()}", flush=True)
        stop.wait()
    finally:
        watchdog = threading.Timer(STOP_DEADLINE_SECONDS, os._exit, args=(3,))
        watchdog.daemon = True
        watchdog.start()
        host.stop(STOP_GRACE_SECONDS)
    return 0


def _print_functions(host: Devhost) -> None:
    """One line per function, as `func start` prints them."""
    if host.http is not None and host.index.http:
        mode = "HTTP streams" if host.http.worker is not None else "classic"
        print(f"  HTTP functions: {mode} (as the Python worker runs them)")
    for f in host.index.http:
        methods = ",".join(f.methods) or "ALL"
        assert f.route is not None
        print(
            f"  {f.name}: [{methods}] {host.url}/{host.config.route_prefix}/{f.route.template}"
            f" ({f.auth_level})"
        )
    for f in host.index.queue:
        print(f"  {f.name}: queueTrigger {f.queue_name} ({f.connection})")
    for f in host.index.timer:
        startup = ", runOnStartup" if f.run_on_startup else ""
        print(f"  {f.name}: timerTrigger {f.schedule!r} (UTC{startup})")
    for name in host.index.skipped:
        print(f"  {name}: not hosted by the devhost")
    print(f"devhost function key: see {host.keys.source}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
