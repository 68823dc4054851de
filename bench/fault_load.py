"""What the fault scenarios (bench/fault_scenarios.py) watch while they run: signed-in
people browsing every kind of page, the Celery queues' lengths from /metrics, and
customers read back whole to check that no half-written one is ever visible."""
from __future__ import annotations

import json
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import redis

from bench.figures import pct
from dashboard.readmodel import ReadModel
from dashboard.readmodel.nearlimit import entitlement_member, split_members
from dashboard.readmodel.packed import unpack
from dashboard.readmodel.values import epoch, parse_time
from tests.full_stack import FullStack

PAGE_KINDS = ("overview", "customers", "customer", "governance", "near-limit", "expiring", "alerts", "audit")
# Every page that reads the read model shows when its numbers were read (the frame's sync
# pill, a customer's "Data from ..."): <time class="age" ...> (templatetags/ui.py age).
AGE_MARK = 'class="age'
UNAVAILABLE_MARK = "data store is unreachable"  # templates/dashboard/unavailable.html


@dataclass
class World:
    """The fleet as the scenarios use it: every customer id, those with a hierarchy, and
    customers not yet changed by any scenario (each change takes fresh ones)."""

    customers: list[str]
    governed: list[str]
    unchanged: list[str]
    metered_feature: str = "api-calls"
    next_limit: int = 100_000

    def take(self, n: int) -> list[str]:
        taken, self.unchanged = self.unchanged[:n], self.unchanged[n:]
        return taken

    def page(self, kind: str, rng: random.Random) -> str:
        if kind == "customer":
            return f"/customers/{quote(rng.choice(self.customers), safe='')}"
        if kind == "governance":
            return f"/customers/{quote(rng.choice(self.governed or self.customers), safe='')}/governance"
        return {"overview": "/", "customers": "/customers/", "near-limit": "/near-limit/",
                "expiring": "/promotions/expiring", "alerts": "/alerts/", "audit": "/audit/"}[kind]


def world_of(rm: ReadModel, seed: int = 5) -> World:
    ids = sorted(rm.customer_ids())
    governed = [cid for cid in ids if ((rm.customer(cid) or {}).get("governance") or {}).get("entities")]
    unchanged = list(ids)
    random.Random(seed).shuffle(unchanged)
    return World(customers=ids, governed=governed, unchanged=unchanged)


_running: list[Any] = []  # watchers not yet stopped (stop_all ends them after a scenario failed)


def stop_all() -> None:
    """Stop every watcher still running: a scenario raised before it stopped its own."""
    for watcher in list(_running):
        watcher.stop()


@dataclass(frozen=True)
class Sample:
    at: float  # when the request was sent (time.time())
    kind: str
    status: int  # 0: no answer (connection error, timeout)
    ms: float
    aged: bool  # the page shows its numbers' age
    unavailable_page: bool  # the clear 503 page of a read model that is unreachable
    error: str = ""


class Browsing:
    """``clients`` signed-in people opening page after page (every kind in turn, random
    customers), each ``pause`` seconds apart, until ``stop``; every answer is a Sample."""

    def __init__(self, stack: FullStack, world: World, clients: int, pause: float = 0.0,
                 signed_in: list[httpx.Client] | None = None) -> None:
        self.stack, self.world, self.pause = stack, world, pause
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.clients = signed_in if signed_in is not None else sign_in_all(stack, clients)
        self.threads = [threading.Thread(target=self._browse, args=(c, i), daemon=True)
                        for i, c in enumerate(self.clients)]
        for t in self.threads:
            t.start()
        _running.append(self)

    def _browse(self, client: httpx.Client, n: int) -> None:
        rng = random.Random(n)
        kinds = list(PAGE_KINDS)
        rng.shuffle(kinds)
        i = 0
        while not self._stop.is_set():
            kind = kinds[i % len(kinds)]
            i += 1
            url = self.world.page(kind, rng)
            t0, status, text, error = time.time(), 0, "", ""
            c0 = time.perf_counter()
            try:
                answer = client.get(url)
                status, text = answer.status_code, answer.text
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
            except RuntimeError:  # its client closed: the run is over
                return
            sample = Sample(t0, kind, status, (time.perf_counter() - c0) * 1000, AGE_MARK in text,
                            status == 503 and UNAVAILABLE_MARK in text, error)
            with self._lock:
                self.samples.append(sample)
            if self.pause:
                self._stop.wait(self.pause)

    def stop(self, close: bool = True) -> list[Sample]:
        if self in _running:
            _running.remove(self)
        self._stop.set()
        for t in self.threads:
            t.join(timeout=60)
        if close:
            for c in self.clients:
                c.close()
        return list(self.samples)


def sign_in_all(stack: FullStack, n: int, parallel: int = 8) -> list[httpx.Client]:
    """``n`` clients signed in through the sign-in form, ``parallel`` at a time."""
    clients: list[httpx.Client] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            client = stack.sign_in()
        except BaseException as exc:  # reported below, in this thread
            with lock:
                errors.append(exc)
            return
        with lock:
            clients.append(client)

    for start in range(0, n, parallel):
        batch = [threading.Thread(target=one) for _ in range(min(parallel, n - start))]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
    if errors:
        for c in clients:
            c.close()
        raise RuntimeError(f"{len(errors)} of {n} sign-ins failed: {errors[0]}")
    return clients


def page_figures(samples: list[Sample]) -> dict[str, Any]:
    """Requests, errors (no answer, or 5xx), and p50 / p95 / max time of ``samples``."""
    times = [s.ms for s in samples]
    return {"requests": len(samples), "errors": sum(1 for s in samples if s.status == 0 or s.status >= 500),
            "p50": statistics.median(times) if times else 0.0, "p95": pct(times, .95) if times else 0.0,
            "max": max(times, default=0.0)}


def between(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.at < end]


class QueueWatch:
    """The hot and sweep queues' lengths from /metrics every ``interval`` seconds."""

    def __init__(self, stack: FullStack, interval: float = 2.0) -> None:
        self.stack, self.interval = stack, interval
        self.readings: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        _running.append(self)

    def _watch(self) -> None:
        while not self._stop.is_set():
            found = self.stack.queue_lengths()
            if found is not None:
                self.readings.append((time.time(), found))
            self._stop.wait(self.interval)

    def stop(self) -> list[tuple[float, dict[str, int]]]:
        if self in _running:
            _running.remove(self)
        self._stop.set()
        self.thread.join(timeout=30)
        return self.readings

    def max(self, queue: str) -> int:
        return max((r.get(queue, 0) for _, r in self.readings), default=0)


def inconsistency(rm: ReadModel, customer_id: str) -> str | None:
    """Read a customer back whole at one point in time and say what disagrees: a
    half-written customer. One write (readmodel/customers.py write_customer, a MULTI) sets
    the document, its row in the list (with its fetched_at), the freshness index, its
    members of the entitlement rankings and each member's scores. A refresh that found
    nothing changed (touch_customer) moves only the row's and the index's time, so the
    document's own fetched_at may be older than theirs, never newer.

    One point in time: the document and its members are read under WATCH, and the rest in
    a MULTI that fails if either changed meanwhile (then read again)."""
    keys = rm.keys
    with rm.r.pipeline(transaction=True) as pipe:
        for _ in range(50):
            try:
                pipe.watch(keys.customer(customer_id), keys.members(customer_id))
                raw, members_raw = pipe.get(keys.customer(customer_id)), pipe.get(keys.members(customer_id))
                doc = unpack(raw) if raw is not None else None
                metered = {entitlement_member(customer_id, e["feature_id"]): e["utilization"] or 0.0
                           for e in doc["entitlements"]["metered"] if e["utilization"] is not None} if doc else {}
                pipe.multi()
                pipe.hget(keys.rows(), customer_id)
                pipe.zscore(keys.fetched_at(), customer_id)
                if metered:
                    pipe.zmscore(keys.rank_entitlements("utilization"), list(metered))
                row_raw, score, *rest = pipe.execute()
                break
            except redis.WatchError:
                continue
        else:
            return None  # rewritten fifty times while we read: nothing to say
    if doc is None and row_raw is None and score is None:
        return None  # not in the read model at all (yet): nothing half-written
    if doc is None or row_raw is None or score is None:
        return f"document {doc is not None}, row {row_raw is not None}, freshness {score is not None}"
    row = json.loads(row_raw)
    row_at, doc_at = parse_time(row["fetched_at"]), parse_time(doc["fetched_at"])
    if doc_at is None:
        return None if row_at is None and not score else "a document never fetched has a fetch time beside it"
    if row_at is None or abs(epoch(row_at) - score) > 1e-3:
        return f"row fetched_at {row['fetched_at']} but freshness index {score}"
    if epoch(doc_at) > score + 1e-3:
        return f"document fetched_at {doc['fetched_at']} newer than its row's {row['fetched_at']}"
    members = split_members(members_raw)
    if members != set(metered):
        return f"ranking members {sorted(members)} but document entitlements {sorted(metered)}"
    for (member, utilization), found in zip(metered.items(), rest[0] if rest else []):
        if found is None or abs(-found - utilization) > 1e-9:
            return f"{member}: utilization {utilization} in the document, {found} (negated) in the ranking"
    if row["highest_utilization"] != doc["highest_utilization"]:
        return f"row utilization {row['highest_utilization']} but document {doc['highest_utilization']}"
    return None


@dataclass(eq=False)
class ConsistencyWatch:
    """Customers read back whole (``inconsistency``) as fast as one thread can, until stopped."""

    rm: ReadModel
    customers: list[str]
    checked: int = 0
    found: list[str] = field(default_factory=list)
    unreachable: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        _running.append(self)

    def _watch(self) -> None:
        rng = random.Random(9)
        while not self._stop.is_set():
            cid = rng.choice(self.customers)
            try:
                problem = inconsistency(self.rm, cid)
            except redis.RedisError:
                self.unreachable += 1
                self._stop.wait(0.5)
                continue
            self.checked += 1
            if problem:
                self.found.append(f"{cid}: {problem}")
            self._stop.wait(0.002)  # a few hundred reads a second: watching, not loading Redis

    def stop(self) -> None:
        if self in _running:
            _running.remove(self)
        self._stop.set()
        self.thread.join(timeout=30)
