"""`make stop`: end what an earlier `make run` of this checkout left running (its pid file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devhost.run_state import PidFile, stop_processes
from devhost.services import ROOT


def main(argv: list[str] | None = None) -> int:
    """Stop the processes the pid file in the state dir names; 0 also when none was running."""
    parser = argparse.ArgumentParser(prog="python -m devhost.stop", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".state")
    args = parser.parse_args(argv)
    pid_file = PidFile.in_state_dir(args.state_dir.resolve())
    running = pid_file.running()
    if not running:
        pid_file.remove()
        print("make stop: nothing to stop (no run of this checkout is running)")
        return 0
    stopped = stop_processes(running)
    left = [p for p in stopped if p.is_running()]
    if left:
        names = ", ".join(p.describe() for p in left)
        print(f"make stop: could not end {names}", file=sys.stderr)
        return 1
    pid_file.remove()
    print(f"make stop: stopped {', '.join(p.describe() for p in stopped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
