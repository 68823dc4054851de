"""Request counters shared by every worker process.

Created in the server's master process before it forks (gunicorn ``preload_app``), so
all workers increment the same shared memory. They serve two purposes: the rate-limit
fault (a fixed one-second window across all workers, counting every request) and
``GET /_emulator/stats``, which lets tests prove a client never exceeded its request
budget. Requests marked ``X-Emulator-Uncounted: true`` (a test harness setting up its
world or injecting changes) are rate limited like any other but left out of the stats,
so the stats show only what the client under test sent.
"""
from __future__ import annotations

import multiprocessing
import time

WINDOW = 600  # seconds of per-second history kept
FIELDS = 5  # per second slot: [epoch second, counted requests, counted 429s, counted 5xx, all requests]

_slots = multiprocessing.Array("q", WINDOW * FIELDS, lock=True)
_totals = multiprocessing.Array("q", 3, lock=True)  # counted requests, 429s, 5xx


def record(status: int | None = None, *, counted: bool = True, second: int | None = None) -> int:
    """Count one API request (status None = not yet answered) or its 429/5xx answer.
    Returns how many requests this second has seen, counted or not, this one included."""
    second = int(time.time()) if second is None else second
    base = (second % WINDOW) * FIELDS
    with _slots.get_lock():
        if _slots[base] != second:
            for i in range(FIELDS):
                _slots[base + i] = 0
            _slots[base] = second
        if status is None:
            _slots[base + 4] += 1
            if counted:
                _slots[base + 1] += 1
                _totals[0] += 1
        elif counted and status == 429:
            _slots[base + 2] += 1
            _totals[1] += 1
        elif counted and status >= 500:
            _slots[base + 3] += 1
            _totals[2] += 1
        return _slots[base + 4]


def snapshot() -> dict:
    now = int(time.time())
    with _slots.get_lock():
        per_second = [
            {"second": _slots[i * FIELDS], "requests": _slots[i * FIELDS + 1], "throttled": _slots[i * FIELDS + 2],
             "errors": _slots[i * FIELDS + 3]}
            for i in range(WINDOW)
            if _slots[i * FIELDS] and now - _slots[i * FIELDS] < WINDOW and _slots[i * FIELDS + 1]
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
