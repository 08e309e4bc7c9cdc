"""Rows 1 and 2: the cold first request and the import cost, against the floor and the peer."""

from __future__ import annotations

from typing import Any

from bench import harness
from bench.footprint import FLOOR_REQUIREMENTS, PEER_REQUIREMENTS, footprint, read_requirements
from bench.stats import RUNS, interleaved, median, row

SEND_VARIANTS = ("ours", "floor", "peer")
IMPORT_VARIANTS = ("ours", "base", "peer")
MB = 1_000_000

# Filled by run() for the plot and the report (sample lists, not just medians).
samples: dict[str, Any] = {}


def _measure(box: harness.Sandbox, mode: str, variants: tuple[str, ...]) -> dict[str, Any]:
    """Interleaved fresh-process runs; {variant: [results]} after one discarded warm-up each."""
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for variant in variants:
        # The first run compiles .pyc files and fills the page cache: not a cold *start* cost.
        harness.run_child(box.env, "cold_child.py", mode, variant)

    def measure(variant: str) -> float:
        result = harness.run_child(box.env, "cold_child.py", mode, variant)
        results[variant].append(result)
        return result["seconds"]

    interleaved(variants, RUNS, measure)
    return results


def _med(results: dict[str, list[dict[str, Any]]], variant: str, key: str) -> float:
    return median([r[key] for r in results[variant]])


def run() -> list[dict[str, Any]]:
    """Rows: cold first send vs floor and vs peer (wall and CPU), import cost, footprint."""
    with harness.sandbox() as box:
        sends = _measure(box, "send", SEND_VARIANTS)
        imports = _measure(box, "import", IMPORT_VARIANTS)
    samples["send"], samples["import"] = sends, imports
    ms = {v: _med(sends, v, "seconds") * 1000 for v in SEND_VARIANTS}
    cpu = {v: _med(sends, v, "cpuSeconds") * 1000 for v in SEND_VARIANTS}
    imp = {v: _med(imports, v, "seconds") * 1000 for v in IMPORT_VARIANTS}
    mods = {v: _med(imports, v, "modules") for v in IMPORT_VARIANTS}
    sent_mods = {v: _med(sends, v, "modules") for v in SEND_VARIANTS}

    ours_size, ours_n = footprint(read_requirements(harness.ROOT / "requirements.txt"))
    peer_size, peer_n = footprint(PEER_REQUIREMENTS)
    floor_size, floor_n = footprint(FLOOR_REQUIREMENTS)
    samples["footprint"] = {
        "ours": (ours_size, ours_n),
        "peer": (peer_size, peer_n),
        "floor": (floor_size, floor_n),
    }
    name = "cold first send (fresh process: imports + Key Vault + token + Graph)"
    return [
        row(f"{name} vs floor", ms["ours"], "ms", baseline=ms["floor"], goal="≤ 1.5×", limit=1.5),
        row(f"{name} vs peer", ms["ours"], "ms", baseline=ms["peer"], goal="≤ 0.75×", limit=0.75),
        row("cold first send, CPU vs floor", cpu["ours"], "ms CPU", baseline=cpu["floor"]),
        row("cold first send, CPU vs peer", cpu["ours"], "ms CPU", baseline=cpu["peer"]),
        row(
            "modules loaded after the cold send vs peer",
            sent_mods["ours"],
            "modules",
            baseline=sent_mods["peer"],
            digits=0,
        ),
        row(
            "import function_app vs import azure.functions, msal, requests",
            imp["ours"],
            "ms",
            baseline=imp["base"],
            goal="≤ 1.25×",
            limit=1.25,
        ),
        row("import cost vs the peer's imports", imp["ours"], "ms", baseline=imp["peer"]),
        row(
            "modules loaded by import function_app vs the base imports",
            mods["ours"],
            "modules",
            baseline=mods["base"],
            digits=0,
        ),
        row(
            f"installed size of requirements.txt ({ours_n} dists) vs peer's ({peer_n} dists)",
            ours_size / MB,
            "MB",
            baseline=peer_size / MB,
            digits=1,
        ),
    ]
