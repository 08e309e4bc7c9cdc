"""`python -m bench`: run every benchmark, print a table, write bench/results.json."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

# Benchmark modules; run() returns rows {name, value, unit, baseline, ratio, goal, met}.
MODULES = ("bench.sandbox_send",)
RESULTS = Path(__file__).resolve().parent / "results.json"


def _fmt(value: object) -> str:
    return "—" if value is None else str(value)


def main() -> int:
    rows = []
    for name in MODULES:
        rows.extend(importlib.import_module(name).run())
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    headers = ("name", "value", "unit", "baseline", "ratio", "goal", "met")
    table = [headers, *[tuple(_fmt(r.get(h)) for h in headers) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nwritten: {RESULTS}")
    return 1 if any(r.get("met") is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
