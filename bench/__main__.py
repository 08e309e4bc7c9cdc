"""`python -m bench [NAME ...]`: run every benchmark (or the named ones, e.g. `scale_out`), print
a table, write bench/results.json (a partial run replaces only its own rows) and the plot."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.stats import unavailable

# Benchmark modules in running order; run() returns rows {name, value, unit, baseline, ratio,
# goal, met}. A module that fails yields a "not available" row instead of stopping the rest.
MODULES = (
    ("bench.cold_start", "cold start and import cost"),
    ("bench.warm_cpu", "warm CPU per send"),
    ("bench.throughput", "throttled throughput"),
    ("bench.scale_out", "scale-out: shared mailbox limits"),
    ("bench.memory", "memory"),
    ("bench.sandbox_send", "sandbox headroom"),
)
BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.json"
PLOT = BENCH_DIR.parent / "docs" / "performance-cold-cpu.png"


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if value is True:
        return "yes"
    if value is False:
        return "NO"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned plain-text table."""
    headers = ("name", "value", "unit", "baseline", "ratio", "goal", "met")
    cells = [headers, *[tuple(_fmt(r.get(h)) for h in headers) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    """A one-line description of where the figures came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    wanted = set(sys.argv[1:] if argv is None else argv)
    unknown = wanted - {m.removeprefix("bench.") for m, _ in MODULES}
    if unknown:
        print(f"unknown benchmarks {sorted(unknown)}; known: {[m for m, _ in MODULES]}")
        return 2
    chosen = [(m, t) for m, t in MODULES if not wanted or m.removeprefix("bench.") in wanted]
    rows: list[dict[str, Any]] = []
    for module, title in chosen:
        print(f"==> {title} ({module})", flush=True)
        t0 = time.monotonic()
        try:
            produced = importlib.import_module(module).run()
        except Exception as exc:
            traceback.print_exc()
            produced = [unavailable(title, f"{type(exc).__name__}: {str(exc)[:200]}")]
        rows.extend({**r, "module": module} for r in produced)
        print(f"    {time.monotonic() - t0:.0f} s", flush=True)
    if wanted and RESULTS.exists():
        # A partial run: the other modules' rows stay as the last run left them.
        ran = {m for m, _ in chosen}
        kept = [r for r in json.loads(RESULTS.read_text()) if r.get("module") not in ran]
        rows = kept + rows
    RESULTS.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    try:
        from bench import cold_start, plot, warm_cpu

        if cold_start.samples.get("send") and warm_cpu.samples:
            plot.plot(cold_start.samples["send"], warm_cpu.samples, PLOT)
            print(f"plot: {PLOT}")
    except Exception:
        traceback.print_exc()
    print()
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}")
    print(table(rows))
    print(f"\nwritten: {RESULTS} ({time.monotonic() - started:.0f} s in all)")
    missed = [r["name"] for r in rows if r.get("met") is False]
    if missed:
        print(f"goals missed ({len(missed)}): see docs/performance.md for why")
    # Missed goals are findings, not failures of the benchmark: exit 0 unless nothing ran.
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
