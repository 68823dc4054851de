"""Request counters shared by every worker process.

Created in the server's master process before it forks (gunicorn ``preload_app``), so
all workers increment the same shared memory. They serve two purposes: the rate-limit
fault (a fixed one-second window across all workers) and ``GET /_emulator/stats``,
which lets tests prove a client never exceeded its request budget.
"""
from __future__ import annotations

import multiprocessing
import time

WINDOW = 600  # seconds of per-second history kept

# per second slot: [epoch second, requests, 429s, 5xx]
_slots = multiprocessing.Array("q", WINDOW * 4, lock=True)
_totals = multiprocessing.Array("q", 3, lock=True)  # requests, 429s, 5xx


def record(status: int | None = None, *, second: int | None = None) -> int:
    """Count one API request (status None = not yet answered). Returns how many
    requests this second has seen, this one included."""
    second = int(time.time()) if second is None else second
    base = (second % WINDOW) * 4
    with _slots.get_lock():
        if _slots[base] != second:
            _slots[base], _slots[base + 1], _slots[base + 2], _slots[base + 3] = second, 0, 0, 0
        if status is None:
            _slots[base + 1] += 1
            _totals[0] += 1
        elif status == 429:
            _slots[base + 2] += 1
            _totals[1] += 1
        elif status >= 500:
            _slots[base + 3] += 1
            _totals[2] += 1
        return _slots[base + 1]


def snapshot() -> dict:
    now = int(time.time())
    with _slots.get_lock():
        per_second = [
            {"second": _slots[i * 4], "requests": _slots[i * 4 + 1], "throttled": _slots[i * 4 + 2], "errors": _slots[i * 4 + 3]}
            for i in range(WINDOW)
            if _slots[i * 4] and now - _slots[i * 4] < WINDOW
        ]
        totals = list(_totals)
    per_second.sort(key=lambda s: s["second"])
    return {
        "requests": totals[0],
        "throttled": totals[1],
        "errors": totals[2],
        "maxPerSecond": max((s["requests"] for s in per_second), default=0),
        "perSecond": per_second,
    }


def reset() -> None:
    with _slots.get_lock():
        for i in range(len(_slots)):
            _slots[i] = 0
        for i in range(len(_totals)):
            _totals[i] = 0
