"""`make run` stops on every signal, at every point, and never leaves a service behind.

Twenty runs of `python -m devhost.run_all` on one temp state dir, each stopped by SIGINT,
SIGTERM (to its process group), SIGHUP (to its group) or SIGKILL (to run_all alone), right
after the banner or at a random moment of a start-up phase. After each: run_all exited, every
process it started is gone within 10 s and the ports are free again.
"""

from __future__ import annotations

import random
import signal
import socket
import time

import pytest

from devhost.run_state import port_is_free
from tests.e2e.run_all_kit import READY_LINE, RunAll
from tests.processes import marked_processes, wait_until_gone

pytestmark = pytest.mark.slow

GONE_WITHIN = 10.0  # seconds from the signal until every child is gone
EXIT_WITHIN = 15.0  # seconds for run_all itself to exit after SIGINT/SIGTERM/SIGHUP

# (what the signal goes to, the signal): a terminal's Ctrl-C, `timeout`/an IDE's stop
# button/a CI runner, a closed terminal, and the kernel's OOM killer or `kill -9`.
STOPS = (
    ("run_all", signal.SIGINT),
    ("group", signal.SIGTERM),
    ("group", signal.SIGHUP),
    ("run_all", signal.SIGKILL),
)
# (the line after which to stop, the shortest and longest random wait after it): points in
# each phase of start-up, and right after the banner.
POINTS = (
    ("==> Azurite", 0.0, 1.0),  # spawning Azurite and the sandbox, their interpreters starting
    ("==> sandbox on port", 0.3, 1.5),  # both starting side by side
    ("==> connection", 0.0, 0.8),  # the connection going into the sandbox Key Vault
    ("==> devhost on port", 0.0, 1.2),  # the devhost importing the app and binding its port
    (READY_LINE, 0.0, 0.0),  # right after the banner
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_twenty_runs_stopped_by_every_signal_at_every_point_leave_nothing_behind(tmp_path):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    plan = [(target, sig, *point) for target, sig in STOPS for point in POINTS]
    rng.shuffle(plan)
    assert len(plan) == 20
    state = tmp_path / "state"

    for number, (target, sig, line, shortest, longest) in enumerate(plan, 1):
        delay = rng.uniform(shortest, longest)
        about = f"run {number} (seed {seed}): {sig.name} to {target} {delay:.2f}s after {line!r}"
        sandbox_port, devhost_port = _free_port(), _free_port()
        with RunAll(state, sandbox_port, devhost_port) as run:
            run.wait_for(line)
            time.sleep(delay)
            children = set(marked_processes(run.marker)) - {run.proc.pid}
            run.signal(sig, group=target == "group")
            signalled = time.monotonic()

            status = run.finish(EXIT_WITHIN)
            left = wait_until_gone(run.marker, max(0.0, GONE_WITHIN - time.monotonic() + signalled))

            assert status is not None, f"{about}: run_all hung\n{run.output()}"
            assert not left, f"{about}: still running {left}\n{run.output()}"
            assert port_is_free(sandbox_port) and port_is_free(devhost_port), about
            if sig is not signal.SIGKILL:
                assert status == 0, f"{about}: exit status {status}\n{run.output()}"
                assert "Traceback" not in run.output(), f"{about}\n{run.output()}"
            if line == READY_LINE:
                assert len(children) >= 3, f"{about}: Azurite, sandbox, devhost {children}"
