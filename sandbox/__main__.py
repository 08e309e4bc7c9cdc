"""Command line: `python -m sandbox serve [--port 8443|0] [--state DIR] [--seed FILE]`."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from sandbox import app, certs, seed
from sandbox.server import SandboxServer


def serve(args: argparse.Namespace) -> int:
    """Start the server, print the ready line, serve until SIGTERM or Ctrl-C."""
    temp = None
    if args.state:
        state_dir = Path(args.state).resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
    else:
        temp = tempfile.TemporaryDirectory(prefix="sandbox-")
        state_dir = Path(temp.name)
    try:
        seed_data = seed.load(Path(args.seed) if args.seed else None)
        ca = certs.load_or_create_ca(state_dir)
        server = SandboxServer((args.host, args.port), certs.server_context(ca, args.host))
        host = f"[{args.host}]" if ":" in args.host else args.host
        base_url = f"https://{host}:{server.port}"
        server.ctx = app.build(seed_data, state_dir, base_url, persist=bool(args.state))

        def stop(signum: int, frame: object) -> None:
            # shutdown() blocks until serve_forever returns, so it must run on another thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print(f"sandbox ready {base_url} ca={state_dir / certs.CA_FILE}", flush=True)
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
            server.ctx.db.close()
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
