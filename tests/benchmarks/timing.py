"""Timing helpers shared by the CPU benchmarks (ratios in one run, never timed asserts)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_interleaved_seconds(
    actions: dict[str, Callable[[], object]], repeats: int
) -> dict[str, float]:
    """Best-of-``repeats`` wall seconds of each action, run in turns so that every action sees
    the same page-cache, thread-pool and machine-load state (a fair baseline)."""
    best = dict.fromkeys(actions, float("inf"))
    for _ in range(repeats):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
