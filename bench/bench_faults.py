"""Fault benchmark (issue 11): the whole stack under faults, load and a worker's death.

Bulk-seeds the emulator (2,000 customers by default), starts the product as the Procfile
runs it — the web under gunicorn, a hot and a sweep Celery worker, one beat, the read
model's Redis and the broker's own Redis — fills the read model with a first sweep, then
runs one scenario after another (bench/fault_scenarios.py):

1. Stigg outage: pages render from the read model with their age, webhooks that arrive
   meanwhile are not lost, the sync catches up within one sweep after recovery;
2. a 429 storm, then slow answers: the request rate stays within STIGG_MAX_RPS, the
   queues stay bounded, pages stay fast;
3. the read model's Redis restarted empty under load: the 503 page meanwhile, never a
   traceback, the next sweep fills it again;
4. the broker down while webhooks arrive: every event ends answered 2xx and refreshed;
5. the sweep worker SIGKILLed mid-sweep: never a half-written customer, its pages redone
   within minutes;
6. 50 signed-in clients browsing every kind of page while a sweep runs: zero errors; the
   time each client waited (p50/p95) beside the web's own time per page, read from its
   /metrics request histograms before and after (with the token when METRICS_TOKEN is set).

Every scenario also expects that no process (web, workers, beat) logs a traceback and
none exits; the first traceback found is printed under its figures. Each prints its
figures; a summary table ends the run, which exits 1 if any expectation failed.
Everything runs on 127.0.0.1 and stops by itself.

Options of the load (scenario 6), beside its length (--load-seconds) and --clients:
  --think-seconds S  each client pauses S seconds between pages (default 0: the next page
                     as soon as the last one answered, a closed loop that measures the most
                     the web serves; a pause of a few seconds is closer to people reading);
  --web-workers N    gunicorn workers of the web under test (4 threads each; default 2),
                     for every scenario: the web is started once.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stiggadmin.settings")

from tests.servers import with_secret_key  # noqa: E402

with_secret_key(os.environ)

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)

from bench import fault_scenarios as scenarios  # noqa: E402
from bench.fault_load import stop_all, world_of  # noqa: E402
from bench.figures import say  # noqa: E402
from bench.harness import bulk_emulator  # noqa: E402
from tests.full_stack import FullStack, StackSettings, wait_until  # noqa: E402

NAMES = ("outage", "storm", "redis", "broker", "kill", "load")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def fill(stack: FullStack, customers: int, label: str, timeout: float) -> float:
    """Start a sweep and wait until every customer was read after it started."""
    t0 = time.time()
    stack.sweep_now()
    if not wait_until(lambda: stack.rm.customer_count() >= customers
                      and not stack.rm.stale_customers(older_than=time.time() - t0), timeout, 1.0):
        raise SystemExit(f"{label} did not finish within {timeout:.0f} s")
    took = time.time() - t0
    say(f"{label}: {took:.1f} s")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=20_000, help="governance nodes across the fleet")
    parser.add_argument("--max-rps", type=float, default=100.0, help="STIGG_MAX_RPS")
    parser.add_argument("--sweep-interval", type=float, default=60.0, help="SYNC_SWEEP_INTERVAL_SECONDS")
    parser.add_argument("--outage-seconds", type=float, default=180.0)
    parser.add_argument("--storm-seconds", type=float, default=60.0, help="each of the two phases")
    parser.add_argument("--storm-rps", type=float, default=None, help="Stigg's rate limit in the storm "
                        "(default: 30%% of --max-rps)")
    parser.add_argument("--latency-ms", type=float, default=2000.0, help="every answer this late in the slow phase")
    parser.add_argument("--redis-down-seconds", type=float, default=30.0)
    parser.add_argument("--broker-down-seconds", type=float, default=60.0)
    parser.add_argument("--load-seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--think-seconds", type=float, default=0.0,
                        help="each load client's pause between pages (default 0: a closed loop)")
    parser.add_argument("--web-workers", type=int, default=StackSettings.web_workers,
                        help="gunicorn workers of the web (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="shorter faults and load (outage 45 s, storm 20 s, Redis 10 s, broker 20 s, load 30 s)")
    parser.add_argument("--keep-logs", default="", help="copy each process's log into this folder at the end")
    parser.add_argument("--only", default=",".join(NAMES), help=f"comma-separated, of {', '.join(NAMES)}")
    args = parser.parse_args()
    if args.quick:
        args.outage_seconds, args.storm_seconds, args.redis_down_seconds = 45.0, 20.0, 10.0
        args.broker_down_seconds, args.load_seconds = 20.0, 30.0
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if args.think_seconds < 0 or args.web_workers < 1:
        parser.error("--think-seconds is 0 or more, --web-workers 1 or more")

    say(f"start: {uptime()}")
    tmp = tempfile.mkdtemp(prefix="bench-faults-")
    emulator = stack = None
    outcomes: list[scenarios.Outcome] = []
    try:
        emulator = bulk_emulator(tmp, args.customers, args.nodes)
        stack = FullStack(emulator, StackSettings(max_rps=args.max_rps, sweep_interval=args.sweep_interval,
                                                    web_workers=args.web_workers))
        stack.send_webhooks_to_us()
        say(f"stack: web (gunicorn, {stack.settings.web_workers} workers), workers hot ({stack.settings.hot_threads} "
            f"threads) and sweep ({stack.settings.sweep_threads}), beat, read-model Redis, broker Redis; "
            f"STIGG_MAX_RPS {args.max_rps:g}, sweep every {args.sweep_interval:g} s, visibility timeout "
            f"{stack.settings.visibility_timeout} s")
        discovery = fill(stack, args.customers, "first (discovery) sweep", 900)
        steady = fill(stack, args.customers, "steady sweep", 600)
        timing = scenarios.Timing(sweep_interval=args.sweep_interval, steady_sweep=steady, discovery_sweep=discovery)
        world = world_of(stack.rm)
        say(f"fleet: {len(world.customers)} customers, {len(world.governed)} with a hierarchy")
        runs = {
            "outage": lambda: scenarios.stigg_outage(stack, world, timing, args.outage_seconds),
            "storm": lambda: scenarios.storm_and_slow(stack, world, timing, args.storm_seconds,
                                                      args.storm_rps or round(args.max_rps * 0.3),
                                                      args.latency_ms),
            "redis": lambda: scenarios.redis_restart(stack, world, timing, args.redis_down_seconds),
            "broker": lambda: scenarios.broker_down(stack, world, timing, args.broker_down_seconds),
            "kill": lambda: scenarios.worker_killed(stack, world, timing),
            "load": lambda: scenarios.load(stack, world, timing, args.load_seconds, args.clients,
                                           args.think_seconds),
        }
        for name in NAMES:
            if name not in chosen:
                continue
            say(f"\n-- {name} ({uptime()}) --")
            t = time.monotonic()
            try:
                outcome = runs[name]()
            except Exception as exc:  # this scenario's bench failed: say so, and go on with the next
                traceback.print_exc()
                stop_all()
                emulator.clear_faults()
                outcome = scenarios.Outcome(name, failures=[f"the scenario raised {exc!r}"], headline="raised")
            outcomes.append(outcome)
            report(outcome, time.monotonic() - t)
    finally:
        if stack is not None:
            if args.keep_logs:
                Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
                for name, process in stack.processes().items():
                    shutil.copy(process.log_path, Path(args.keep_logs) / f"{name}.log")
            stack.stop()
        if emulator is not None:
            emulator.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    summary(outcomes)
    say(f"end: {uptime()}")
    if any(o.failures for o in outcomes):
        sys.exit(1)


def report(outcome: scenarios.Outcome, seconds: float) -> None:
    say(f"{outcome.name} ({seconds:.0f} s)")
    for what, value in outcome.figures:
        say(f"  {what:<58} {value}")
    for failure in outcome.failures:
        say(f"  FAILED: {failure}")
    if outcome.first_traceback:
        say("  the first traceback:\n    " + outcome.first_traceback.replace("\n", "\n    "))


def summary(outcomes: list[scenarios.Outcome]) -> None:
    say("\n| scenario | result | figures |\n|---|---|---|")
    for o in outcomes:
        say(f"| {o.name} | {'FAILED' if o.failures else 'ok'} | {o.headline} |")


if __name__ == "__main__":
    main()
