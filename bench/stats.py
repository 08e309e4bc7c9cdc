"""Pure helpers for benchmark figures: medians, percentiles, interleaving and result rows."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

RUNS = 7  # the issue asks for the median of at least 7 runs


def median(values: Sequence[float]) -> float:
    """The median; raises ValueError on an empty sequence."""
    if not values:
        raise ValueError("no values to take the median of")
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); raises ValueError on an empty sequence."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def interleaved(
    variants: Sequence[str], runs: int, measure: Callable[[str], float]
) -> dict[str, list[float]]:
    """Run `measure(variant)` `runs` times per variant, alternating A, B, C, A, B, C, ...

    Interleaving spreads slow phases of a shared machine over every variant alike, so their
    ratio stays meaningful when the absolute numbers drift.
    """
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(runs):
        for variant in variants:
            samples[variant].append(measure(variant))
    return samples


def row(
    name: str,
    value: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    goal: str | None = None,
    limit: float | None = None,
    higher_is_better: bool = False,
    digits: int = 2,
) -> dict[str, Any]:
    """One result row {name, value, unit, baseline, ratio, goal, met}.

    With a baseline the goal applies to value/baseline, otherwise to the value itself; `limit`
    is the number the goal compares against (≤ limit, or ≥ limit when higher is better).
    """
    ratio = None
    if value is not None and baseline:
        ratio = round(value / baseline, 3)
    judged = ratio if baseline else value
    met = None
    if limit is not None and judged is not None:
        met = judged >= limit if higher_is_better else judged <= limit
    return {
        "name": name,
        "value": None if value is None else round(value, digits),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, digits),
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }


def unavailable(name: str, reason: str, goal: str | None = None) -> dict[str, Any]:
    """A row for a figure that could not be measured in this run, saying why."""
    return {
        "name": name,
        "value": None,
        "unit": f"not available: {reason}",
        "baseline": None,
        "ratio": None,
        "goal": goal,
        "met": None,
    }
