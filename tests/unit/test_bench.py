"""The benchmark's pure logic: medians, percentiles, interleaving, rows, limits, footprints."""

from __future__ import annotations

import pytest

from bench.footprint import closure, read_requirements
from bench.stats import interleaved, median, percentile, row, unavailable
from bench.throughput import minimum_seconds


def test_median_and_nearest_rank_percentiles():
    assert median([5, 1, 3]) == 3
    assert median([4, 1, 3, 2]) == 2.5
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7], 99) == 7
    with pytest.raises(ValueError):
        median([])


def test_runs_alternate_between_variants_so_drift_hits_all_alike():
    order: list[str] = []
    samples = interleaved(("a", "b", "c"), 3, lambda v: order.append(v) or len(order))
    assert order == ["a", "b", "c"] * 3
    assert samples == {"a": [1, 4, 7], "b": [2, 5, 8], "c": [3, 6, 9]}


def test_a_row_judges_the_ratio_when_there_is_a_baseline_and_the_value_otherwise():
    assert row("x", 3.0, "ms", baseline=2.0, goal="≤ 1.5×", limit=1.5)["met"] is True
    assert row("x", 3.1, "ms", baseline=2.0, goal="≤ 1.5×", limit=1.5)["met"] is False
    assert row("x", 41.0, "MB", goal="≤ 40 MB", limit=40)["met"] is False
    assert row("x", 0.95, "", goal="≥ 0.9", limit=0.9, higher_is_better=True)["met"] is True
    informative = row("x", 1.0, "ms", baseline=4.0)
    assert informative["ratio"] == 0.25
    assert informative["met"] is None
    assert unavailable("x", "why")["unit"] == "not available: why"


def test_the_send_window_lets_a_burst_through_then_one_batch_per_minute():
    assert minimum_seconds(30, 30) == 0
    assert minimum_seconds(31, 30) == 60
    assert minimum_seconds(90, 30) == 120


def test_footprint_follows_dependencies_and_the_extras_asked_for(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\nrequests==2.34.2   # why\n-r other.txt\n\n")
    assert read_requirements(reqs) == ["requests==2.34.2"]
    names = closure(["requests"])
    assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= names
    # PyJWT's "crypto" extra brings cryptography; without it, it does not.
    assert "cryptography" in closure(["pyjwt[crypto]"])
    assert "cryptography" not in closure(["pyjwt"])
