"""Helpers shared by the latency benchmarks (imported as a sibling module of the scripts)."""

from __future__ import annotations

import statistics


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """Latency summary in milliseconds of ``samples_ns`` (nanoseconds per call)."""
    ordered = sorted(samples_ns)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1e6

    return {
        "calls": len(ordered),
        "p50_ms": round(pct(0.50), 4),
        "p90_ms": round(pct(0.90), 4),
        "p99_ms": round(pct(0.99), 4),
        "max_ms": round(ordered[-1] / 1e6, 4),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 4),
    }
