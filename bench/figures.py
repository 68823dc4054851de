"""What every benchmark here prints with: a flushed line, and a nearest-rank percentile.
(Waiting for a condition: tests.full_stack.wait_until.)"""
from __future__ import annotations


def say(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` by nearest rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

