"""`make run`: Azurite, the sandbox and the devhost with a ready connection, until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from pathlib import Path

from devhost.local_settings import SANDBOX_CONNECTION, sandbox_values, write_local_settings
from devhost.run_state import PidFile, RecordedProcess, free_port_near, port_is_free
from devhost.services import (
    ROOT,
    ServiceError,
    StartInterrupted,
    StepFailed,
    azurite_connection_string,
    spawn_azurite,
    spawn_connection_store,
    spawn_devhost,
    spawn_sandbox,
)
from devhost.stop_signals import StopSignals
from devhost.supervisor import Supervisor

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
    # After SIGHUP the terminal may be gone: stopping in order matters more than the output.
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)


def _fail(text: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)
    return 1


def _port(text: str) -> int:
    """A TCP port number (0: any free one) from the command line or SANDBOX_/DEVHOST_PORT."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def busy_ports_message(
    wanted: dict[str, int], leftovers: list[RecordedProcess], prog: str = "make run"
) -> str | None:
    """One line naming the wanted ports that are in use, who holds them, and what to do.

    `wanted` maps a service (sandbox, devhost) to its port (0: any, never busy). Holders are
    named when the pid file of this checkout lists them. None if every port is free.
    """
    busy = {name: port for name, port in wanted.items() if port and not port_is_free(port)}
    if not busy:
        return None
    parts, ours = [], False
    for name, port in busy.items():
        holder = next((p for p in leftovers if port in p.ports), None)
        if holder is not None:
            ours = True
            parts.append(
                f"port {port} ({name}) is held by the {holder.name} of an earlier run of this "
                f"checkout (pid {holder.pid})"
            )
        else:
            parts.append(f"port {port} ({name}) is in use by another program")
    taken = set(wanted.values())
    suggestion = []
    for name, port in wanted.items():
        if name in busy:
            port = free_port_near(port, avoid=taken) or 0
            taken.add(port)
        suggestion.append(f"{name.upper()}_PORT={port}")
    action = "end it with `make stop`" if ours else "stop that program"
    ports = " ".join(suggestion)
    return f"{prog}: {'; '.join(parts)}: {action}, or use other ports: {ports} make run"


def leftovers_message(leftovers: list[RecordedProcess], prog: str = "make run") -> str:
    """One line for processes of an earlier run that still run (they share the state dir)."""
    names = ", ".join(p.describe() for p in leftovers)
    return (
        f"{prog}: an earlier run of this checkout is still running ({names}) and uses its "
        "state; end it with `make stop`"
    )


def main(argv: list[str] | None = None) -> int:
    """Start everything, print where to look and what to paste, stop everything on a signal."""
    # First of all: from here on a stop signal ends the run in order, whenever it comes.
    with StopSignals() as stop:
        parser = argparse.ArgumentParser(prog="python -m devhost.run_all", description=__doc__)
        # String defaults go through `type` too: a bad SANDBOX_PORT is an argparse error.
        sandbox_port = os.environ.get("SANDBOX_PORT") or "8443"
        devhost_port = os.environ.get("DEVHOST_PORT") or "7071"
        parser.add_argument("--sandbox-port", type=_port, default=sandbox_port)
        parser.add_argument("--devhost-port", type=_port, default=devhost_port)
        parser.add_argument("--state-dir", type=Path, default=ROOT / ".state")
        parser.add_argument("--settings", type=Path, default=ROOT / "local.settings.json")
        args = parser.parse_args(argv)
        if args.sandbox_port and args.sandbox_port == args.devhost_port:
            parser.error("the sandbox and the devhost need different ports")
        return run(args, stop)


def run(args: argparse.Namespace, stop: StopSignals) -> int:
    """The run itself: preflight, start, banner, watch, stop. Returns the exit status."""
    state: Path = args.state_dir.resolve()
    pid_file = PidFile.in_state_dir(state)
    wanted = {"sandbox": args.sandbox_port, "devhost": args.devhost_port}
    leftovers = pid_file.running()
    problem = busy_ports_message(wanted, leftovers)
    if problem is None and leftovers:
        problem = leftovers_message(leftovers)
    if problem is not None:
        return _fail(problem)
    pid_file.start(os.getpid())

    children = Supervisor(stop, pid_file)
    try:
        banner = _start_all(args, state, children)
    except StartInterrupted:
        _say(f"stopping ({stop.name}) ...")
        children.stop_all()
        _say("stopped.")
        return 0
    except StepFailed as exc:
        # Key Vault refusing the connection, for instance: say what and stop cleanly.
        children.stop_all()
        return _fail(f"make run: could not prepare the sandbox: {exc}")
    except (ServiceError, OSError) as exc:
        children.stop_all()
        return _fail(busy_ports_message(wanted, []) or f"make run: {exc}")
    except Exception as exc:
        # Whatever else goes wrong while preparing: say what and stop cleanly.
        children.stop_all()
        return _fail(f"make run: could not prepare the sandbox: {type(exc).__name__}: {exc}")

    for line in banner:
        _say(line)
    dead = children.watch()
    if dead is not None:
        _say(f"{dead.name} exited with status {dead.proc.returncode}; stopping the rest")
        _say("".join(dead.output[-20:]))
        children.stop_all()
        return 1
    _say(f"stopping ({stop.name}) ...")
    children.stop_all()
    _say("stopped.")
    return 0


def _start_all(args: argparse.Namespace, state: Path, children: Supervisor) -> list[str]:
    """Start Azurite and the sandbox side by side, store the connection, start the devhost;
    returns the banner.

    Raises StartInterrupted when a stop signal arrives, ServiceError when a service fails.
    """
    _say(f"==> Azurite (queues, tables; data in {state / 'azurite'})")
    azurite = children.add(spawn_azurite(location=state / "azurite"))
    _say(f"==> sandbox on port {args.sandbox_port} (mailboxes kept in {state / 'sandbox'})")
    sandbox = children.add(
        spawn_sandbox(port=args.sandbox_port, state_dir=state / "sandbox"),
        ports=[args.sandbox_port] if args.sandbox_port else None,
    )
    children.wait_ready(sandbox)
    sandbox_url, ca = sandbox.info["url"], sandbox.info["ca"]

    # While Azurite still starts; and before the devhost does: work left in its queues may need
    # the connection at once (which names the sandbox's URL: it may differ from the last run).
    _say(f"==> connection {SANDBOX_CONNECTION!r} in the sandbox Key Vault")
    children.run_step(spawn_connection_store(sandbox_url=sandbox_url, ca_file=ca))

    children.wait_ready(azurite)
    _say(f"==> {args.settings.name} (settings for the sandbox and Azurite)")
    values = sandbox_values(
        sandbox_url=sandbox_url,
        ca_file=ca,
        storage=azurite_connection_string(azurite),
        devhost_port=args.devhost_port or None,
    )
    write_local_settings(args.settings, values, http_port=args.devhost_port)
    if children.stop.requested:
        raise StartInterrupted("stopped before the devhost started")

    _say(f"==> devhost on port {args.devhost_port}")
    devhost = children.add(
        spawn_devhost(
            settings=args.settings,
            root=ROOT,
            port=args.devhost_port,
            state_dir=state,
            echo=True,
            # DEVHOST_INSTANCES=3 make run: two more workers on the same queues (scale-out).
            extra_args=["--instances", os.environ.get("DEVHOST_INSTANCES") or "1"],
        ),
        ports=[args.devhost_port] if args.devhost_port else None,
        tier=1,
    )
    children.wait_ready(devhost)

    key = _function_key(state)
    return [
        "",
        "exchange-processor is running.",
        f"  Sandbox web view (mailboxes): {sandbox_url}/",
        f"    (trust its CA to avoid the browser warning: {ca})",
        f"  Function app (devhost):       {devhost.info['url']}/api/",
        f"  Function key:                 {key}  (kept in {state / 'devhost-keys.json'})",
        "",
        f"Connection {SANDBOX_CONNECTION!r} accepts UNSIGNED requests (local convenience): the "
        "function key alone sends. Connections made with `python -m admin connections add` "
        "require RFC 9421 signed requests (docs/security.md).",
        "",
        f"Send a mail from {SENDER} to {RECIPIENT}:",
        "",
        example_curl(devhost.info["url"], key),
        "",
        f"then open {sandbox_url}/ui/mailboxes/contoso.test/{RECIPIENT}",
        "Ctrl-C stops everything (so does `make stop` in another terminal).",
    ]


def _function_key(state: Path) -> str:
    """The key the devhost uses: $DEVHOST_FUNCTION_KEY or the one it keeps in the state dir."""
    from devhost.keys import load_keys

    return load_keys(state / "devhost-keys.json").function_key


if __name__ == "__main__":
    sys.exit(main())
