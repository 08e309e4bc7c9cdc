"""The PNG for docs/performance.md: cold first send and warm CPU per send, ours vs floor vs peer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.stats import median

COLORS = {"ours": "#2b6cb0", "floor": "#a0aec0", "peer": "#dd6b20"}


def plot(
    cold: dict[str, list[dict[str, Any]]], warm: dict[str, dict[str, list[float]]], out: Path
) -> Path:
    """Two bar panels (medians, with every run as a dot); writes `out` and returns it."""
    import matplotlib

    matplotlib.use("Agg")  # no display here; also keeps the plot independent of $DISPLAY
    import matplotlib.pyplot as plt

    variants = ("ours", "floor", "peer")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = (
        (
            left,
            "Cold first send (fresh process)",
            "ms",
            {v: [r["seconds"] * 1000 for r in cold[v]] for v in variants},
        ),
        (
            right,
            "Warm CPU per send (one process)",
            "ms CPU per send",
            {v: warm[v]["cpu"] for v in variants},
        ),
    )
    for axis, title, unit, data in panels:
        xs = range(len(variants))
        medians = [median(data[v]) for v in variants]
        axis.bar(xs, medians, color=[COLORS[v] for v in variants], width=0.6)
        for x, v in zip(xs, variants, strict=True):
            axis.scatter([x] * len(data[v]), data[v], color="black", s=8, zorder=3)
        for x, m in zip(xs, medians, strict=True):
            axis.annotate(
                f"{m:.1f}",
                (x, m),
                ha="center",
                va="bottom",
                xytext=(0, 3),
                textcoords="offset points",
            )
        axis.set_xticks(list(xs), ["ours", "floor\n(msal + requests)", "peer\n(msgraph-sdk)"])
        axis.set_title(title)
        axis.set_ylabel(unit)
    fig.suptitle("exchange-processor vs floor vs peer (medians; dots are single runs)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
