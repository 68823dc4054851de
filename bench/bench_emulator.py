"""Benchmark the emulator on a realistic fleet.

    .venv/bin/python bench/bench_emulator.py [--customers 10000] [--nodes 100000] [--seconds 15]
                                             [--clients 8] [--workers 2] [--threads 8]

Bulk-seeds a fresh store (timed), starts its own emulator on a free 127.0.0.1 port
(tests.servers.Emulator), then measures two read paths with N concurrent clients for a
bounded time each:

* GET /api/v1/customers/{id}/entitlements over random customers;
* GET /api/v1-beta/customers/{id}/governance?featureIds=ai-tokens&sortBy=utilization&limit=50
  over random customers that carry a hierarchy.

The clients are Python threads sharing the machine with the server, so on a 2-core box
the figures are a floor: the load generator takes CPU the server could have used.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.demo import bulk  # noqa: E402
from tests.servers import Emulator  # noqa: E402


def measure(url: str, key: str, paths: Callable[[random.Random], str], *, clients: int,
            seconds: float) -> dict[str, float]:
    """Closed-loop load: each client sends its next request as soon as the last answers."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=url, headers={"X-API-KEY": key}, timeout=30) as http:
            while time.perf_counter() < deadline:
                path = paths(rng)
                t0 = time.perf_counter()
                try:
                    ok = http.get(path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies[n].append(time.perf_counter() - t0)
                errors[n] += not ok

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = sorted(x for per in latencies for x in per)
    if not flat:
        return {"requests": 0, "rps": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "errors": sum(errors)}
    return {
        "requests": len(flat),
        "rps": round(len(flat) / elapsed, 1),
        "p50_ms": round(statistics.median(flat) * 1000, 2),
        "p95_ms": round(flat[min(len(flat) - 1, int(len(flat) * 0.95))] * 1000, 2),
        "errors": sum(errors),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="per measurement")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="bench-emulator-")
    db_path = os.path.join(tmp, "emulator.sqlite3")
    print(f"Bulk seeding {args.customers} customers / {args.nodes} nodes ...", flush=True)
    summary = bulk.seed_bulk(db_path, customers=args.customers, nodes=args.nodes, log=lambda m: print(m, flush=True))
    customers = [f"cust-{i:05d}" for i in range(summary["customers"])]
    governed = summary["governed"]
    emulator = Emulator(db_path=db_path, workers=args.workers, threads=args.threads)
    results: dict = {"bulkSeedSeconds": summary["seconds"], "bulkTimings": summary["timings"],
                     "customers": summary["customers"], "nodes": summary["nodes"],
                     "clients": args.clients, "workers": args.workers, "threads": args.threads}
    try:
        runs = {
            "entitlements": lambda rng: f"/api/v1/customers/{rng.choice(customers)}/entitlements",
        }
        if governed:
            runs["governanceTree"] = lambda rng: (
                f"/api/v1-beta/customers/{rng.choice(governed)}/governance"
                "?featureIds=ai-tokens&sortBy=utilization&limit=50")
        for name, paths in runs.items():
            measure(emulator.url, emulator.key, paths, clients=args.clients, seconds=min(2.0, args.seconds))  # warm-up
            result = measure(emulator.url, emulator.key, paths, clients=args.clients, seconds=args.seconds)
            results[name] = result
            print(f"{name:16s} {result['rps']:8.1f} req/s   p50 {result['p50_ms']:7.2f} ms   "
                  f"p95 {result['p95_ms']:7.2f} ms   {result['requests']} requests, {result['errors']} errors",
                  flush=True)
    finally:
        emulator.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"bulk seed: {summary['seconds']} s ({summary['customers']} customers, {summary['nodes']} nodes)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
