"""`python -m devhost`: host function_app locally like `func start` (HTTP + queue triggers)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from devhost.app_index import AppIndexError
from devhost.host import start_devhost
from devhost.host_config import HostConfigError
from devhost.local_settings import LocalSettingsError
from devhost.ncrontab import ScheduleError
from devhost.queue_host import QueueSetupError
from devhost.routes import RouteError


def _default_port(settings: Path | None) -> int:
    """Host.LocalHttpPort from local.settings.json, else 7071 (as Core Tools does)."""
    if settings and settings.exists():
        try:
            return int(json.loads(settings.read_text(encoding="utf-8"))["Host"]["LocalHttpPort"])
        except (KeyError, TypeError, ValueError):
            pass
    return 7071


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status."""
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
        OSError,
    ) as exc:
        print(f"devhost: {exc}", file=sys.stderr, flush=True)
        return 2

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
    print(f"devhost ready {host.url}", flush=True)

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    print("devhost stopping", flush=True)
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
