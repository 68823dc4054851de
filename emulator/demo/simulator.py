"""Live traffic for the demo: what a real app would send Stigg while people use it.

Every second the simulator reports raw events (``api_call``, ``llm_completion``,
``user_active``) in batches of at most 1000, with dimensions that name the customers'
Governance users, agents, teams and models, so the budgets in the tree move too; now
and then it reports seat counts (usage SET, drifting a little around the seats each
customer had when first seen, so utilizations stay where the seed put them) and agent
runs (usage DELTA). It only uses the public REST API, and survives fault injection:
429/5xx/connection errors are retried with backoff (honouring Retry-After), and a batch
that still fails is kept and sent again on the next tick (idempotency keys make the
replay safe).

It behaves like an application with governance: before it reports governed usage (an
event or usage report whose dimensions name the customer's Governance entities, so the
emulator would count it in their budgets), it asks the entitlement check with those
dimensions (stigg-api.md §9.6) and drops what is denied, so hard budgets stop at their
limit. One check per customer, feature and set of dimensions per tick, for the group's
whole amount; a check that cannot be answered denies (the app does not spend a budget
it cannot see).
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .catalog import ATTRIBUTION_KEYS, attributed
from .company import MODELS
from .rest import MAX_EVENTS_PER_CALL, MAX_USAGES_PER_CALL, RequestRejected, RestClient, ServiceUnavailable

log = logging.getLogger(__name__)

DEFAULT_PORT = 8700
DISCOVERY_RETRY_SECONDS = 2.0
REDISCOVER_EVERY_SECONDS = 30.0
STATUS_EVERY_SECONDS = 5.0
DISCOVER_CUSTOMERS = 400  # enough to find every governed customer of the demo
MAX_PENDING_BATCHES = 50  # a longer outage drops the oldest traffic instead of growing forever
DISCOVERY_THREADS = 4
# Seats drift a step at a time within this far of where a customer started: a share of
# its seats, at least one seat and at most SEAT_DRIFT_MAX.
SEAT_DRIFT_SHARE = 0.2
SEAT_DRIFT_MAX = 3
EVENT_MIX = (("api_call", 0.6), ("llm_completion", 0.25), ("user_active", 0.15))
Group = tuple[str, str, tuple[tuple[str, str], ...]]  # (customer, feature, governance dimensions) of one check


def default_url() -> str:
    return f"http://127.0.0.1:{int(os.environ.get('EMULATOR_PORT', DEFAULT_PORT))}"


def default_key() -> str:
    from ..config import DEFAULT_SERVER_KEY

    return os.environ.get("STIGG_API_KEY") or DEFAULT_SERVER_KEY


@dataclass
class Target:
    """One customer the simulator sends traffic for, with its Governance ids."""

    customer_id: str
    users: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    # Seats in use when first seen (None: unknown, so no seat counts are reported yet),
    # and the count last reported.
    seat_base: int | None = None
    seats: int | None = None

    def governed(self, dims: dict[str, Any]) -> dict[str, str]:
        """The dimensions that name one of this customer's Governance entities."""
        entities = {*self.users, *self.agents, *self.teams, *self.models}
        return {k: v for k, v in dims.items() if k in ATTRIBUTION_KEYS and v in entities}

    def drift_seats(self, step: int) -> int | None:
        """The next seat count: one step from the last, kept within the drift band
        around the starting count and never below one seat."""
        if self.seat_base is None or self.seats is None:
            return None
        spread = max(1, min(SEAT_DRIFT_MAX, round(self.seat_base * SEAT_DRIFT_SHARE)))
        low, high = max(1, self.seat_base - spread), self.seat_base + spread
        self.seats = min(high, max(low, self.seats + step))
        return self.seats


@dataclass
class Totals:
    events: int = 0
    usages: int = 0
    batches: int = 0
    failed_batches: int = 0
    dropped_batches: int = 0
    denied: int = 0  # governed events and usage reports left out: the check did not grant them
    started: float = field(default_factory=time.monotonic)


class TrafficSimulator:
    def __init__(self, base_url: str, api_key: str, *, rate: float = 200.0, seed: int = 7,
                 log: Callable[[str], None] = print, stop: threading.Event | None = None):
        self.stop = stop or threading.Event()
        self.api = RestClient(base_url, api_key, stop=self.stop, max_retries=6, timeout=20.0)
        self.rate = max(1.0, rate)
        self.rng = random.Random(seed)
        self.log = log
        self.totals = Totals()
        self.targets: list[Target] = []
        self.pending: list[tuple[str, dict[str, Any]]] = []
        # keys must differ between runs (dedupe window 7 days), but not between retries
        self._run_id = f"{int(time.time() * 1000):x}"
        self._counter = 0

    # -- discovery ---------------------------------------------------------------------
    def discover(self) -> None:
        """Active customers and, for each, its Governance users/agents/teams/models."""
        customers: list[str] = []
        after: str | None = None
        while len(customers) < DISCOVER_CUSTOMERS:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            body = self.api.request("GET", "/api/v1/customers", params=params, envelope=True)
            customers += [c["id"] for c in body["data"] if not c.get("archivedAt")]
            after = body["pagination"]["next"]
            if not after:
                break
        # a customer seen before keeps its seat band: re-reading would let the band wander
        previous = {t.customer_id: t for t in self.targets}
        self.targets = [Target(cid) for cid in customers]
        for target in self.targets:
            seen = previous.get(target.customer_id)
            if seen is not None:
                target.seat_base, target.seats = seen.seat_base, seen.seats

        def entities_of(target: Target) -> list[dict[str, Any]]:
            if target.seat_base is None:
                target.seat_base = target.seats = self._seats_in_use(target.customer_id)
            try:
                return self.api.get(f"/api/v1-beta/customers/{target.customer_id}/entities", limit=100) or []
            except (RequestRejected, ServiceUnavailable):  # governance off, or stopping: plain traffic
                return []

        # a few threads: discovery is a call or two per customer and should not delay traffic
        with ThreadPoolExecutor(DISCOVERY_THREADS) as pool:
            found = list(pool.map(entities_of, self.targets))
        governed = 0
        for target, entities in zip(self.targets, found):
            for entity in entities:
                bucket = {"user": target.users, "agent": target.agents, "team": target.teams,
                          "model": target.models}.get(entity["entityTypeId"])
                if bucket is not None:
                    bucket.append(entity["id"])
            governed += bool(entities)
        self.log(f"simulate_traffic: {len(self.targets)} customers, {governed} with governance entities")

    def _seats_in_use(self, customer_id: str) -> int | None:
        """The customer's seats usage, so drift starts where the seed (or the app) left
        it. None when there is none yet (the seed still running, or no subscription):
        no seat counts are reported for it until a later discovery finds some."""
        try:
            data = self.api.get(f"/api/v1/customers/{customer_id}/entitlements") or {}
        except (RequestRejected, ServiceUnavailable):
            return None
        for ent in data.get("entitlements") or []:
            if (ent.get("feature") or {}).get("id") == "seats":
                usage = ent.get("currentUsage")
                return round(usage) if usage and usage >= 1 else None
        return None

    # -- traffic -------------------------------------------------------------------------
    def _key(self) -> str:
        self._counter += 1
        return f"sim-{self._run_id}-{self._counter}"

    def _event(self) -> dict[str, Any]:
        target = self.rng.choice(self.targets)
        name = self.rng.choices([n for n, _ in EVENT_MIX], [w for _, w in EVENT_MIX])[0]
        dims: dict[str, Any] = {}
        actor_is_agent = bool(target.agents) and self.rng.random() < 0.2
        if actor_is_agent:
            dims["agentId"] = self.rng.choice(target.agents)
        else:
            dims["userId"] = self.rng.choice(target.users) if target.users else f"user-{self.rng.randint(0, 60):04d}"
        if name == "llm_completion":
            dims["model"] = self.rng.choice(target.models or MODELS)
            dims["tokens"] = int(self.rng.lognormvariate(7.5, 1.0))  # median ~1,800 tokens
        elif name == "api_call":
            dims["endpoint"] = self.rng.choice(["/v1/search", "/v1/chat", "/v1/embed", "/v1/projects"])
            if target.teams and self.rng.random() < 0.3:
                dims["teamId"] = self.rng.choice(target.teams)
        if name == "user_active":
            dims = {"userId": dims.get("userId") or f"user-{self.rng.randint(0, 60):04d}"}
        return {"customerId": target.customer_id, "eventName": name, "idempotencyKey": self._key(),
                "dimensions": dims}

    def _usages(self) -> list[dict[str, Any]]:
        """Seat counts drift (SET), agents run (DELTA, attributed)."""
        out = []
        for target in self.rng.sample(self.targets, min(len(self.targets), 5)):
            seats = target.drift_seats(self.rng.choice([-1, 0, 1]))
            if seats is not None:
                out.append({"customerId": target.customer_id, "featureId": "seats", "value": seats,
                            "updateBehavior": "SET", "idempotencyKey": self._key()})
            if target.agents:
                out.append({"customerId": target.customer_id, "featureId": "agent-runs",
                            "value": self.rng.randint(1, 5), "updateBehavior": "DELTA",
                            "idempotencyKey": self._key(), "dimensions": {"agentId": self.rng.choice(target.agents)}})
        return out[:MAX_USAGES_PER_CALL]

    def _granted(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items without the governed usage that the entitlement check denies."""
        targets = {t.customer_id: t for t in self.targets}
        groups: dict[Group, list[int]] = {}
        amounts: dict[Group, float] = {}
        for i, item in enumerate(items):
            counted = attributed(item)
            target = targets.get(item["customerId"])
            dims = target.governed(item.get("dimensions") or {}) if counted and target else {}
            if not dims:
                continue  # reaches no budget: nothing to ask
            feature_id, _, amount = counted
            group = (item["customerId"], feature_id, tuple(sorted(dims.items())))
            groups.setdefault(group, []).append(i)
            amounts[group] = amounts.get(group, 0) + amount
        denied: set[int] = set()
        for group, members in groups.items():
            if self.stop.is_set():
                return []
            if not self._check(*group, amounts[group]):
                denied.update(members)
        self.totals.denied += len(denied)
        return [item for i, item in enumerate(items) if i not in denied]

    def _check(self, customer_id: str, feature_id: str, dims: tuple[tuple[str, str], ...], requested: float) -> bool:
        """Whether the entitlement check with these dimensions grants ``requested`` more."""
        params = {"featureId": feature_id, "requestedUsage": requested, **{f"dimensions[{k}]": v for k, v in dims}}
        try:
            answer = self.api.get(f"/api/v1-beta/customers/{customer_id}/entitlements/check", **params) or {}
        except ServiceUnavailable:
            return False
        except RequestRejected as exc:
            self.log(f"simulate_traffic: entitlement check rejected: {exc}")
            return False
        return bool(answer.get("isGranted"))

    def _send(self, path: str, body: dict[str, Any]) -> bool:
        try:
            self.api.post(path, body)
        except ServiceUnavailable:
            if self.stop.is_set():
                return False
            self.totals.failed_batches += 1
            self.pending.append((path, body))
            if len(self.pending) > MAX_PENDING_BATCHES:
                self.pending.pop(0)
                self.totals.dropped_batches += 1
            return False
        except RequestRejected as exc:
            # a rejected batch will never succeed; report it and move on
            self.totals.failed_batches += 1
            self.log(f"simulate_traffic: batch rejected: {exc}")
            return False
        self.totals.batches += 1
        if path.endswith("/events"):
            self.totals.events += len(body["events"])
        else:
            self.totals.usages += len(body["usages"])
        return True

    def tick(self, tick_no: int) -> None:
        retry, self.pending = self.pending, []
        for path, body in retry:
            if self.stop.is_set() or not self._send(path, body):
                break
        events = self._granted([self._event() for _ in range(int(self.rate))])
        for i in range(0, len(events), MAX_EVENTS_PER_CALL):
            if self.stop.is_set():
                return
            self._send("/api/v1/events", {"events": events[i:i + MAX_EVENTS_PER_CALL]})
        if tick_no % 3 == 0:
            usages = self._granted(self._usages())
            if usages:
                self._send("/api/v1/usage", {"usages": usages})

    def status(self) -> str:
        elapsed = max(0.001, time.monotonic() - self.totals.started)
        t = self.totals
        return (f"simulate_traffic: {elapsed:6.0f}s  events {t.events} ({t.events / elapsed:.0f}/s)  "
                f"usage reports {t.usages}  batches {t.batches}  retries {self.api.retries}  "
                f"failed {t.failed_batches}  pending {len(self.pending)}  dropped {t.dropped_batches}  "
                f"denied {t.denied}")

    def _discover_until_found(self, deadline: float | None) -> None:
        """`make run` starts the simulator while the demo seed is still running: wait for
        customers to exist instead of giving up."""
        waiting_said = False
        while not self.stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                self.discover()
            except ServiceUnavailable:
                if self.stop.is_set():
                    return
                raise
            if self.targets:
                return
            if not waiting_said:
                self.log("simulate_traffic: no customers yet; waiting for the emulator to be seeded")
                waiting_said = True
            self.stop.wait(DISCOVERY_RETRY_SECONDS)

    def _rediscover(self) -> None:
        """Pick up customers and entities created since the last look (a seed still
        running, or a real app adding customers); keep the old world if this fails."""
        try:
            self.discover()
        except (RequestRejected, ServiceUnavailable) as exc:
            self.log(f"simulate_traffic: rediscovery failed ({exc}); keeping {len(self.targets)} customers")

    def run(self, duration: float | None = None, *, discover: bool = True) -> Totals:
        """Send traffic until ``duration`` seconds pass or ``stop`` is set."""
        deadline = None if duration is None else time.monotonic() + duration
        if discover:
            self._discover_until_found(deadline)
        if self.stop.is_set() or not self.targets:
            return self.totals
        self.totals.started = time.monotonic()
        next_status = self.totals.started + STATUS_EVERY_SECONDS
        next_discovery = self.totals.started + REDISCOVER_EVERY_SECONDS
        tick_no = 0
        while not self.stop.is_set():
            tick_started = time.monotonic()
            if deadline is not None and tick_started >= deadline:
                break
            self.tick(tick_no)
            tick_no += 1
            now = time.monotonic()
            if now >= next_status:
                self.log(self.status())
                next_status = now + STATUS_EVERY_SECONDS
            if discover and now >= next_discovery:
                self._rediscover()
                next_discovery = time.monotonic() + REDISCOVER_EVERY_SECONDS
            # one tick per second; a slow tick (retries) simply starts the next at once
            self.stop.wait(max(0.0, 1.0 - (now - tick_started)))
        self.log(self.status())
        return self.totals

    def close(self) -> None:
        self.api.close()


def simulate(base_url: str, api_key: str, *, rate: float = 200.0, duration: float | None = None,
             log: Callable[[str], None] = print, stop: threading.Event | None = None) -> Totals:
    sim = TrafficSimulator(base_url, api_key, rate=rate, log=log, stop=stop)
    try:
        return sim.run(duration)
    finally:
        sim.close()
