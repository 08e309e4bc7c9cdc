"""Command line: `python -m sandbox serve` (port, state dir, seed, timing) and `ca-path`."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import signal
import sys
import tempfile
import threading
from pathlib import Path

from sandbox import app, certs, seed
from sandbox.graph.limits import INSTANT
from sandbox.server import SandboxServer


def _stop_pipe() -> int:
    """Handle SIGINT, SIGTERM and SIGHUP by writing to a pipe; returns its read end.

    The handler takes no lock (starting a thread or setting an Event would), so it cannot
    deadlock with the main thread it interrupts.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def wake(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.write(write_fd, b"\0")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, wake)
    return read_fd


def load_seed(args: argparse.Namespace) -> dict:
    """The seed to serve: --seed (or the default), with --timing instant applied."""
    data = seed.load(Path(args.seed) if args.seed else None)
    if args.timing == "instant":
        data.setdefault("limits", {}).update(INSTANT)
    return data


def serve(args: argparse.Namespace) -> int:
    """Start the server, print the ready line, serve until SIGTERM, SIGHUP or Ctrl-C."""
    stop_fd = _stop_pipe()
    temp = None
    if args.state:
        state_dir = Path(args.state).resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
    else:
        temp = tempfile.TemporaryDirectory(prefix="sandbox-")
        state_dir = Path(temp.name)
    try:
        seed_data = load_seed(args)
        ca = certs.load_or_create_ca(state_dir)
        try:
            server = SandboxServer((args.host, args.port), certs.server_context(ca, args.host))
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"failed: {exc.strerror}"
            print(f"sandbox: port {args.port} on {args.host} {reason}", file=sys.stderr)
            return 2
        host = f"[{args.host}]" if ":" in args.host else args.host
        base_url = f"https://{host}:{server.port}"
        server.ctx = app.build(seed_data, state_dir, base_url, persist=bool(args.state))
        # The main thread only waits for a stop signal; the server runs on its own thread.
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="sandbox-http",
            daemon=True,
        )
        thread.start()
        try:
            # Raises if the parent is gone already (closed pipe): then stop, too.
            print(f"sandbox ready {base_url} ca={state_dir / certs.CA_FILE}", flush=True)
            while thread.is_alive() and not select.select([stop_fd], [], [], 1.0)[0]:
                pass
        finally:
            server.shutdown()
            thread.join()
            server.server_close()
            server.ctx.db.close()
        with contextlib.suppress(OSError):
            print("sandbox stopped", flush=True)
        return 0
    finally:
        if temp is not None:
            temp.cleanup()


def ca_path(args: argparse.Namespace) -> int:
    """Print the CA bundle path of a state dir (creating the CA if it does not exist yet)."""
    state_dir = Path(args.state).resolve()
    certs.load_or_create_ca(state_dir)
    print(state_dir / certs.CA_FILE)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the sandbox (Entra ID, Key Vault, Graph)")
    p_serve.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    p_serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p_serve.add_argument("--state", help="directory for the SQLite state and the CA")
    p_serve.add_argument("--seed", help="seed JSON (default: sandbox/default_seed.json)")
    p_serve.add_argument(
        "--timing",
        choices=("realistic", "instant"),
        default="realistic",
        help="realistic (default): sent mail takes a moment, 30 mails a minute per mailbox; "
        "instant: sent copies filed at once, no sending rate",
    )
    p_serve.set_defaults(func=serve)
    p_ca = sub.add_parser("ca-path", help="print the CA bundle path of a state dir")
    p_ca.add_argument("--state", required=True)
    p_ca.set_defaults(func=ca_path)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except seed.SeedError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
