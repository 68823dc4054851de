"""What every benchmark here prints with: a flushed line, a nearest-rank percentile, and
how fast this machine runs Python. (Waiting for a condition: tests.full_stack.wait_until.)"""
from __future__ import annotations

import functools
import time


def say(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` by nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


@functools.lru_cache(maxsize=None)
def reference_loop_ms() -> float:
    """This machine's time for a fixed pure-Python loop (best of five), printed beside page
    times: the same code's figures differ between the machines benches run on (2026-11-29:
    ~90 ms on a 2.1 GHz Xeon where the 100,000-customer bulk seed took 271 s and pages ran
    ~1.8x slower than on the earlier session's machine, where the seed took 156 s)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000
