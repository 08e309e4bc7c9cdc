"""Row 3: warm CPU per send in one long-lived process each for ours, the floor and the peer."""

from __future__ import annotations

import json
import math
import queue
import subprocess
import threading
from typing import Any

from bench import harness
from bench.stats import RUNS, median, percentile, row

VARIANTS = ("ours", "floor", "peer", "ours-sendmail")
TOTAL_SENDS = 1000
BATCH = math.ceil(TOTAL_SENDS / RUNS)  # 7 interleaved batches of 143: 1,001 sends each
READY_TIMEOUT = 120.0
BATCH_TIMEOUT = 300.0

samples: dict[str, Any] = {}


class Worker:
    """A warm_worker.py child and a thread that forwards its stdout lines into a queue."""

    def __init__(self, env: dict[str, str], variant: str) -> None:
        self.variant = variant
        self.proc = subprocess.Popen(
            harness.child_command("warm_worker.py", variant),
            env=env,
            cwd=harness.ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _next(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.stop()
            err = self.proc.stderr.read()[-3000:] if self.proc.stderr else ""
            raise harness.ChildFailed(f"warm worker {self.variant} gave no answer:\n{err}")
        return line

    def ready(self) -> None:
        if self._next(READY_TIMEOUT) != "ready":
            raise harness.ChildFailed(f"warm worker {self.variant} did not say ready")

    def batch(self, count: int) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        return json.loads(self._next(BATCH_TIMEOUT))

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def measure(box: harness.Sandbox) -> dict[str, dict[str, list[float]]]:
    """Interleaved batches; per variant: CPU ms/op and wall ms/op per batch, added latencies."""
    workers = [Worker(box.env, v) for v in VARIANTS]
    out = {v: {"cpu": [], "wall": [], "added": [], "latency": [], "sandbox": []} for v in VARIANTS}
    try:
        for w in workers:
            w.ready()
        for _ in range(RUNS):
            for w in workers:
                since = box.last_seq()
                result = w.batch(BATCH)
                entries, _ = box.graph_entries(since)
                # The sandbox's own time per send: its Graph request durations, averaged.
                sandbox_ms = sum(e["durationMs"] for e in entries) / BATCH
                res = out[w.variant]
                res["cpu"].append(result["cpuSeconds"] * 1000 / BATCH)
                res["wall"].append(result["seconds"] * 1000 / BATCH)
                res["sandbox"].append(sandbox_ms)
                res["latency"].extend(x * 1000 for x in result["latencies"])
                res["added"].extend(x * 1000 - sandbox_ms for x in result["latencies"])
    finally:
        for w in workers:
            w.stop()
    return out


def run() -> list[dict[str, Any]]:
    """Rows: CPU ms per send vs floor and peer; p50/p99 latency added over the sandbox's time."""
    with harness.sandbox() as box:
        data = measure(box)
    samples.update(data)
    cpu = {v: median(data[v]["cpu"]) for v in VARIANTS}
    name = f"warm CPU per send ({BATCH * RUNS} sends through the pipeline, one process)"
    rows = [
        row(
            f"{name} vs floor",
            cpu["ours"],
            "ms CPU/op",
            baseline=cpu["floor"],
            goal="≤ 2×",
            limit=2,
        ),
        row(
            f"{name} vs peer",
            cpu["ours"],
            "ms CPU/op",
            baseline=cpu["peer"],
            goal="≤ 0.75×",
            limit=0.75,
        ),
        row(
            "warm CPU per send, saveToSentItems=false (one sendMail call) vs floor",
            cpu["ours-sendmail"],
            "ms CPU/op",
            baseline=cpu["floor"],
        ),
    ]
    for v in ("ours", "floor", "peer"):
        added = data[v]["added"]
        sandbox_ms = median(data[v]["sandbox"])
        rows.append(
            row(
                f"{v}: latency added over the sandbox's own {sandbox_ms:.1f} ms/op, p50",
                percentile(added, 50),
                "ms",
            )
        )
        rows.append(
            row(f"{v}: latency added over the sandbox's time, p99", percentile(added, 99), "ms")
        )
    return rows
