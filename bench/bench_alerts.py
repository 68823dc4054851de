"""Alert evaluation benchmark: what evaluating alerts costs after one sync write, and a full
pass over the fleet, from a read model of 10,000 customers and ~100,600 budgets
(bench_read_model.governed_fleet, as bench_near_limit.py fills it) into a throwaway SQLite
database.

1. Per sync write (``evaluate_customer``): a governed customer with ~200 budgets and a small
   one without any, p50 / p95 over ``--calls`` calls: the first call opens its alerts, the
   rest find nothing changed (the steady state after every poll of a customer).
2. A full pass (``evaluate_fleet``): the first opens every alert of the fleet; the second
   finds nothing changed (each pass of the beat afterwards); the third runs a month later,
   when every window has reset, so every alert closes (each customer's rows are then read
   in full to tell reset from cleared from gone: the worst case).

The world's numbers are as of its T0, so evaluation runs at T0 (and T0 + 31 days).

    .venv/bin/python bench/bench_alerts.py [--calls N]

Prints figures; asserts nothing. Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import pct, say  # noqa: E402
from bench.harness import django_here  # noqa: E402
from tests.servers import RedisServer  # noqa: E402


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per customer case")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-alerts-")
    redis_server = RedisServer()
    try:
        django_here(redis_server.url, tmp, prefix="bench:rm:")
        from bench.bench_read_model import fill_governed
        from dashboard import tasks
        from dashboard.alerts import evaluate, subjects
        from dashboard.models import Alert
        from tests.test_read_model import T0

        rm = tasks.read_model()
        say(fill_governed(rm))
        levels = subjects.thresholds()

        say(f"\n{'per sync write: evaluate_customer':<52} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8}   "
            f"(n={args.calls})")
        for label, cid in (("a governed customer (cust-00007)", "cust-00007"), ("a small customer (cust-05005)",
                                                                                "cust-05005")):
            out, ms, cpu = timed(lambda: evaluate.evaluate_customer(rm, cid, T0, levels))
            say(f"  {label}: first call {ms:.1f} ms (cpu {cpu:.1f}): read {out.read_rows} rows, "
                f"opened {out.opened}")
            walls, cpus = [], []
            for _ in range(args.calls):
                out, ms, cpu = timed(lambda: evaluate.evaluate_customer(rm, cid, T0, levels))
                walls.append(ms)
                cpus.append(cpu)
            say(f"  {label + ', nothing changed':<50} {statistics.median(walls):>8.1f} {pct(walls, .95):>8.1f} "
                f"{statistics.median(cpus):>8.1f}")
        Alert.objects.all().delete()

        say("\nfull pass: evaluate_fleet")
        rows_at = rm.near_limit_page(subjects.NearLimitQuery(min_utilization=levels.clear)).total
        say(f"  rows at >= {levels.clear:.0%}: {rows_at:,}")
        for label, when in (("first pass (opens every alert)", T0), ("second pass (nothing changed)", T0),
                            ("a month later (every window reset: all close)", T0 + timedelta(days=31))):
            out, ms, cpu = timed(lambda: evaluate.evaluate_fleet(rm, when, levels))
            say(f"  {label:<48} {ms / 1000:>6.2f} s (cpu {cpu / 1000:.2f} s): read {out.read_rows:,} rows; "
                f"opened {out.opened:,}, closed {sum(out.closed.values()):,}, updated {out.updated:,}")
            if label.startswith("first"):
                by_level = {lv: Alert.objects.filter(level=lv).count() for lv in ("warning", "runout", "limit")}
                say(f"    open alerts by level: {by_level}")
    finally:
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
