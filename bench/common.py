"""Helpers the benchmarks share: percentiles and the one line format for figure vs baseline.

Bench scripts are not tests: they print each figure next to a baseline measured in the same
run on the same machine, the ratio, and the issue's target, and they never fail a build.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def line(
    name: str, figure: float, baseline: float, unit: str, target: str, ok: bool | None = None
) -> str:
    """`name: figure unit (baseline ...; ratio x) target ...` printed and returned."""
    ratio = figure / baseline if baseline else float("inf")
    verdict = "" if ok is None else (" MET" if ok else " MISSED")
    text = (
        f"{name}: {figure:,.2f} {unit} | baseline {baseline:,.2f} {unit} | "
        f"ratio {ratio:,.2f}x | target {target}{verdict}"
    )
    print(text, flush=True)
    return text
