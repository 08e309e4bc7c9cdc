"""`python -m devhost`: host function_app locally like `func start` (HTTP + queue triggers)."""

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
from devhost.stop_signals import StopSignals

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
    args = parser.parse_args(argv)

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
        )
    except (
        AppIndexError,
        HostConfigError,
        LocalSettingsError,
        QueueSetupError,
        RouteError,
        ScheduleError,
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
        return _serve(host, stop)


def _serve(host: Devhost, stop: StopSignals) -> int:
    """Print the functions and the ready line; on a stop signal, stop in bounded time."""
    try:
        # Raises if the parent is gone already (closed pipe): the host stops then, too.
        _print_functions(host)
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
        host.stop(STOP_GRACE_SECONDS)
    return 0


def _print_functions(host: Devhost) -> None:
    """One line per function, as `func start` prints them."""
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
