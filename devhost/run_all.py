"""`make run`: Azurite, the sandbox and the devhost with a ready connection, until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from devhost.bootstrap import SANDBOX_CONNECTION, store_sandbox_connection
from devhost.local_settings import sandbox_values, write_local_settings
from devhost.services import (
    ROOT,
    Service,
    ServiceError,
    azurite_connection_string,
    start_azurite,
    start_devhost,
    start_sandbox,
)

SENDER = "administratie@contoso.test"
RECIPIENT = "anna@contoso.test"


def example_curl(devhost_url: str, key: str) -> str:
    """A ready-to-paste curl that sends a mail from administratie@ to anna@ through the devhost."""
    body = {
        "connection": SANDBOX_CONNECTION,
        "from": SENDER,
        "to": [RECIPIENT],
        "subject": "Hello from exchange-processor",
        "body": {"contentType": "text", "content": "Sent through the devhost to the sandbox."},
    }
    return (
        f"curl -sS -X POST {devhost_url}/api/mail/send \\\n"
        f"  -H {shlex.quote('x-functions-key: ' + key)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body))}"
    )


def _say(text: str) -> None:
    print(text, flush=True)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw else default


def main(argv: list[str] | None = None) -> int:
    """Start everything, print where to look and what to paste, stop everything on a signal."""
    parser = argparse.ArgumentParser(prog="python -m devhost.run_all", description=__doc__)
    parser.add_argument("--sandbox-port", type=int, default=_env_int("SANDBOX_PORT", 8443))
    parser.add_argument("--devhost-port", type=int, default=_env_int("DEVHOST_PORT", 7071))
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".state")
    parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json")
    args = parser.parse_args(argv)
    state: Path = args.state_dir.resolve()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    services: list[Service] = []
    try:
        _say(f"==> Azurite (queues, tables; data in {state / 'azurite'})")
        azurite = start_azurite(location=state / "azurite")
        services.append(azurite)
        _say(f"==> sandbox on port {args.sandbox_port} (mailboxes kept in {state / 'sandbox'})")
        sandbox = start_sandbox(port=args.sandbox_port, state_dir=state / "sandbox")
        services.append(sandbox)
        sandbox_url, ca = sandbox.info["url"], sandbox.info["ca"]

        _say(f"==> {args.settings.name} (settings for the sandbox and Azurite)")
        values = sandbox_values(
            sandbox_url=sandbox_url,
            ca_file=ca,
            storage=azurite_connection_string(azurite),
            devhost_port=args.devhost_port or None,
        )
        write_local_settings(args.settings, values, http_port=args.devhost_port)

        _say(f"==> connection {SANDBOX_CONNECTION!r} in the sandbox Key Vault")
        store_sandbox_connection(sandbox_url, ca)

        _say(f"==> devhost on port {args.devhost_port}")
        devhost = start_devhost(
            settings=args.settings,
            root=ROOT,
            port=args.devhost_port,
            state_dir=state,
            echo=True,
        )
        services.append(devhost)
    except (ServiceError, OSError) as exc:
        _say(f"make run: {exc}")
        _stop_all(services)
        return 1
    except Exception as exc:
        # Key Vault refusing the bootstrap, for instance: say what and stop cleanly.
        _say(f"make run: could not prepare the sandbox: {type(exc).__name__}: {exc}")
        _stop_all(services)
        return 1

    key = _function_key(state)
    _say("")
    _say("exchange-processor is running.")
    _say(f"  Sandbox web view (mailboxes): {sandbox_url}/")
    _say(f"    (trust its CA to avoid the browser warning: {ca})")
    _say(f"  Function app (devhost):       {devhost.info['url']}/api/")
    _say(f"  Function key:                 {key}  (kept in {state / 'devhost-keys.json'})")
    _say("")
    _say(
        f"Connection {SANDBOX_CONNECTION!r} accepts UNSIGNED requests (local convenience): the "
        "function key alone sends. Connections made with `python -m admin connections add` "
        "require RFC 9421 signed requests (docs/security.md)."
    )
    _say("")
    _say(f"Send a mail from {SENDER} to {RECIPIENT}:")
    _say("")
    _say(example_curl(devhost.info["url"], key))
    _say("")
    _say(f"then open {sandbox_url}/ui/mailboxes/contoso.test/{RECIPIENT}")
    _say("Ctrl-C stops everything.")

    while not stop.wait(0.5):
        dead = next((s for s in services if s.proc.poll() is not None), None)
        if dead is not None:
            _say(f"{dead.name} exited with status {dead.proc.returncode}; stopping the rest")
            _say("".join(dead.output[-20:]))
            _stop_all(services)
            return 1
    _say("stopping ...")
    _stop_all(services)
    _say("stopped.")
    return 0


def _function_key(state: Path) -> str:
    """The key the devhost uses: $DEVHOST_FUNCTION_KEY or the one it keeps in the state dir."""
    from devhost.keys import load_keys

    return load_keys(state / "devhost-keys.json").function_key


def _stop_all(services: list[Service]) -> None:
    for service in reversed(services):
        service.stop()


if __name__ == "__main__":
    sys.exit(main())
