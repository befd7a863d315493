"""Result rows shared by the benchmarks that compare a per-call overhead with a baseline."""

from __future__ import annotations

from typing import Any


def overhead_row(
    name: str, ours: float, theirs: float, baseline_name: str, goal_ratio: float | None
) -> dict[str, Any]:
    """A per-call overhead (seconds) against a baseline's; ``goal_ratio=None`` reports a
    breakdown row without a goal of its own."""
    ratio = ours / theirs
    return {
        "name": name,
        "value": round(ours * 1e6, 1),
        "unit": "µs",
        "baseline_name": baseline_name,
        "baseline_value": round(theirs * 1e6, 1),
        "ratio": round(ratio, 2),
        "goal": "breakdown (reported)" if goal_ratio is None else f"≤ {goal_ratio:g}× baseline",
        "met": None if goal_ratio is None else ratio <= goal_ratio,
    }


def context_row(name: str, seconds: float) -> dict[str, Any]:
    """A figure that only gives context (no baseline, no goal), in µs."""
    return {
        "name": name,
        "value": round(seconds * 1e6, 1),
        "unit": "µs",
        "baseline_name": "",
        "baseline_value": None,
        "ratio": None,
        "goal": "context",
        "met": True,
    }
