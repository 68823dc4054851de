"""The demo company, built only through the emulator's public REST API: the orchestration.

"Tessellate AI" sells an AI developer platform to ~200 B2B customers: one product,
features of every shape, four plans with parent inheritance, two add-ons (catalog.py),
varied subscriptions, promotions, and Governance hierarchies for the largest customers
(company.py), with usage spread so that some customers and entities sit near or over
their limits (usage.py), and dated over the past weeks so that usage history climbs day
by day and drops at resets (history.py). Each governed customer's budgets were set up
days ago: the seed sets the emulator's clock back to create them, then back to where it
was, so their windows are part way through and the dashboard can project them.

Everything goes over HTTP (httpx, one pooled client, a few threads), so the demo is
exactly what a real integration would have produced, and it doubles as a smoke test
of every write endpoint. Randomness is ``random.Random(seed)``: the same seed builds
the same company (ids, names, limits, current usage), only timestamps and server ids
differ (usage history is laid out backwards from the day the seed runs).
"""
from __future__ import annotations

import random
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from .catalog import catalog_calls
from .company import CustomerSpec, Hierarchy, budgets_set_up_ago, build_customers, build_hierarchy
from .history import Governance, date_usage, read_timeline
from .rest import (
    MAX_EVENTS_PER_CALL, MAX_GOVERNANCE_ITEMS, MAX_USAGES_PER_CALL, RequestRejected, RestClient, ServiceUnavailable,
    chunks, clock_back, iso, parse_time, quiet_http_logs,
)
from .usage import plan_usage

Log = Callable[[str], None]

DEFAULT_SEED = 20261121
THREADS = 6
# How many days ago each kind of demo promotion was granted (uniform in the range).
PROMO_GRANTED_DAYS_AGO = {"tokens": (3.0, 26.0), "sso": (10.0, 200.0), "seats": (0.0, 4.0),
                          "support": (20.0, 170.0), "runs": (0.0, 5.0)}
# Expired promotions are granted with an end date this far ahead and simply left to
# lapse: Stigg only grants future end dates, and the demo moves the clock only to create
# budgets in the past.
EXPIRING_PROMO_SECONDS = 4.0


def _subscription_body(spec: CustomerSpec, plan: str, addons: list[dict[str, Any]], trial: bool,
                       start: datetime, now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"customerId": spec.id, "planId": plan, "billingPeriod": "MONTHLY",
                            "startDate": iso(start), "metadata": {"source": "demo-seed"}}
    if addons:
        body["addons"] = addons
    if trial:
        body["trialOverrideConfiguration"] = {"isTrial": True, "trialEndBehavior": "CONVERT_TO_PAID",
                                              "trialEndDate": iso(start + timedelta(days=14))}
    return body


def _emulator_now(api: RestClient) -> datetime:
    """The emulator's clock (it may have been moved), else ours."""
    try:
        state = api.get("/_emulator/state")
        return datetime.fromisoformat(state["now"].replace("Z", "+00:00"))
    except (RequestRejected, ServiceUnavailable, KeyError, TypeError, ValueError):
        return datetime.now(timezone.utc)


class _Runner:
    """Runs independent calls on a few threads and collects failures per step, so one
    broken endpoint leaves a partial demo and a clear log line instead of nothing."""

    def __init__(self, api: RestClient, log: Log):
        self.api, self.log = api, log
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="seed")
        self.one = ThreadPoolExecutor(1, thread_name_prefix="seed-serial")
        self.errors: list[str] = []

    def run(self, step: str, jobs: Iterable[Callable[[], Any]], *, one_at_a_time: bool = False) -> list[Any]:
        started = time.monotonic()
        pool = self.one if one_at_a_time else self.pool
        futures = [pool.submit(job) for job in jobs]
        results, failed = [], []
        for fut in futures:
            try:
                results.append(fut.result())
            except (RequestRejected, ServiceUnavailable) as exc:
                failed.append(str(exc))
        if failed:
            self.errors.extend(f"{step}: {msg}" for msg in failed)
            self.log(f"  ! {step}: {len(failed)} call(s) failed, first: {failed[0]}")
        self.log(f"  {step}: {len(futures) - len(failed)}/{len(futures)} calls in {time.monotonic() - started:.1f}s")
        return results


def seed_demo_if_empty(base_url: str, api_key: str, log: Log = print) -> dict[str, Any] | None:
    """Build the demo unless customers already exist (a restart keeps its data)."""
    quiet_http_logs()
    api = RestClient(base_url, api_key)
    try:
        page = api.get("/api/v1/customers", limit=1)
    finally:
        api.close()
    if page:
        log("Demo seed skipped: the emulator already has customers")
        return None
    return seed_demo(base_url, api_key, log)


def seed_demo(base_url: str, api_key: str, log: Log = print, *, customers: int = 200,
              governed: int = 20, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    started = time.monotonic()
    rng = random.Random(seed)
    api = RestClient(base_url, api_key, rng=random.Random(seed + 1))
    runner = _Runner(api, log)
    now = _emulator_now(api)
    log(f"Seeding the demo company into {base_url} ...")
    try:
        specs = build_customers(rng, customers)

        for i, stage in enumerate(catalog_calls()):
            runner.run(f"catalog stage {i + 1}", [
                (lambda m=m, p=p, b=b: api.request(m, p, json=b)) for m, p, b in stage])

        runner.run("customers", [
            (lambda s=s: api.post("/api/v1/customers", {
                "id": s.id, "name": s.name, "email": s.email, "metadata": s.metadata,
                "billingCurrency": s.currency, "timezone": s.timezone, "language": "en",
                "billingId": f"cus_{zlib.crc32(s.id.encode()):010d}"})) for s in specs])

        # Expiring promotions first, so they have lapsed by the time the seed ends.
        expiring = rng.sample([s for s in specs if s.history and not s.archived], 6)
        expire_at = now + timedelta(seconds=EXPIRING_PROMO_SECONDS)

        # when each customer's current subscription started: its usage history begins there
        subscribed_at: dict[str, datetime] = {}

        def subscribe(spec: CustomerSpec) -> None:
            for plan, addons, trial, days_ago in spec.history:
                start = now - timedelta(days=days_ago, minutes=rng_offset(spec.id))
                body = _subscription_body(spec, plan, addons, trial, start, now)
                try:
                    result = api.post("/api/v1/subscriptions", body)
                except RequestRejected as exc:
                    if exc.status != 400:
                        raise
                    # an emulator that refuses a back-dated start still gets a demo
                    body.pop("startDate", None)
                    result = api.post("/api/v1/subscriptions", body)
                started = (result.get("subscription") or result).get("startDate")
                subscribed_at[spec.id] = parse_time(started) or start
            if spec.cancel_last and spec.history:
                sub_id = (result.get("subscription") or {}).get("id") or result.get("id")
                api.post(f"/api/v1/subscriptions/{sub_id}/cancel",
                         {"cancellationTime": "IMMEDIATE", "cancellationAction": "DEFAULT"})

        runner.run("subscriptions", [(lambda s=s: subscribe(s)) for s in specs])

        def grant(customer_id: str, items: list[dict[str, Any]]) -> Any:
            full = [{"period": "1 month", "customEndDate": None, "usageLimit": None, "hasUnlimitedUsage": None,
                     "hasSoftLimit": None, "isVisible": True, "enumValues": None, "resetPeriod": None,
                     "monthlyResetPeriodConfiguration": None, "weeklyResetPeriodConfiguration": None,
                     "yearlyResetPeriodConfiguration": None, **item} for item in items]
            return api.post(f"/api/v1/customers/{customer_id}/promotional-entitlements",
                            {"promotionalEntitlements": full})

        promo_jobs: list[Callable[[], Any]] = []
        for spec in expiring:
            promo_jobs.append(lambda s=spec: grant(s.id, [
                {"featureId": "ai-tokens", "period": "custom", "customEndDate": iso(expire_at),
                 "usageLimit": 20_000_000, "resetPeriod": "MONTH",
                 "monthlyResetPeriodConfiguration": {"accordingTo": "SubscriptionStart"}}]))
        active_candidates = [s for s in specs if s.plan in ("free", "starter", "pro") and s not in expiring]
        for spec in rng.sample(active_candidates, 24):
            kind = rng.choice(["tokens", "sso", "seats", "support", "runs"])
            item: dict[str, Any]
            # Granted some days ago (the clock set back meanwhile), as a customer-success team
            # would have over the past weeks: some of them now end within the next fortnight.
            ago = timedelta(days=rng.uniform(*PROMO_GRANTED_DAYS_AGO[kind]))
            if kind == "tokens":
                item = {"featureId": "ai-tokens", "period": "1 month", "usageLimit": 25_000_000,
                        "resetPeriod": "MONTH", "monthlyResetPeriodConfiguration": {"accordingTo": "SubscriptionStart"}}
            elif kind == "sso":
                item = {"featureId": "sso", "period": "lifetime"}
            elif kind == "seats":
                item = {"featureId": "seats", "period": "custom", "usageLimit": 75,
                        "customEndDate": iso(now + timedelta(days=rng.randint(5, 60)))}
            elif kind == "support":
                item = {"featureId": "support-tier", "period": "6 month", "enumValues": ["priority", "dedicated"]}
            else:
                item = {"featureId": "agent-runs", "period": "1 week", "hasUnlimitedUsage": True}
            items = [item]
            if rng.random() < 0.3:
                items.append({"featureId": "audit-log", "period": "1 year"})

            def back_dated(s: CustomerSpec = spec, items: list[dict[str, Any]] = items, ago: timedelta = ago) -> Any:
                since = subscribed_at.get(s.id)
                if since is not None:  # never before the customer's subscription began
                    ago = max(timedelta(0), min(ago, now - since - timedelta(hours=1)))
                with clock_back(api, ago):
                    return grant(s.id, items)

            promo_jobs.append(back_dated)
        # one at a time: the back-dated grants move the whole emulator's clock
        runner.run("promotional entitlements", promo_jobs, one_at_a_time=True)

        # Governance for the largest customers with a live subscription.
        largest = sorted([s for s in specs if s.plan in ("enterprise", "pro") and not s.archived],
                         key=lambda s: -s.employees)[:governed]
        hierarchies = [build_hierarchy(rng, s) for s in largest]

        set_up_at: dict[str, datetime] = {}

        def place(h: Hierarchy) -> None:
            # the whole hierarchy at one moment in the past: every budget's window is anchored there
            since = subscribed_at.get(h.customer_id)
            ago = budgets_set_up_ago(random.Random(f"{seed}:set-up:{h.customer_id}"), now - since if since else None)
            created: list[dict[str, Any]] = []
            with clock_back(api, ago):
                for batch in chunks(h.entities, MAX_GOVERNANCE_ITEMS):
                    api.put(f"/api/v1-beta/customers/{h.customer_id}/entities", {"entities": list(batch)})
                for level in h.assignments:
                    for batch in chunks(level, MAX_GOVERNANCE_ITEMS):
                        created += api.put(f"/api/v1-beta/customers/{h.customer_id}/assignments",
                                           {"assignments": list(batch)})
            set_up = max(filter(None, (parse_time(a.get("createdAt")) for a in created)), default=None)
            if set_up is not None:
                set_up_at[h.customer_id] = set_up

        # one customer at a time: the clock they are set up at is the whole emulator's
        runner.run("governance hierarchies", [(lambda h=h: place(h)) for h in hierarchies], one_at_a_time=True)

        # Each customer's reset periods as the emulator computes them (plan, add-ons and
        # promotions decide the winner, and so the anchor), so usage can be dated inside them.
        using = [s for s in specs if s.plan is not None and not s.archived and s.id in subscribed_at]
        found = runner.run("usage periods", [
            (lambda s=s: (s.id, read_timeline(api, s.id, subscribed_at[s.id]))) for s in using])
        timelines = dict(found)
        for spec in expiring:
            # The expiring promotion wins ai-tokens now but lapses before the seed ends; then
            # the plan's period applies, which every plan shares with agent-runs.
            periods = timelines[spec.id].periods if spec.id in timelines else {}
            if "ai-tokens" in periods and "agent-runs" in periods:
                periods["ai-tokens"] = periods["agent-runs"]

        usages, events = plan_usage(rng, specs, hierarchies, now)
        governance = {h.customer_id: Governance(set_up_at[h.customer_id], h.overrun)
                      for h in hierarchies if h.customer_id in set_up_at}
        usages, events = date_usage(usages, events, timelines, now, seed, governance)
        runner.run("usage reports", [
            (lambda b=b: api.post("/api/v1/usage", {"usages": list(b)})) for b in _usage_batches(usages)])
        runner.run("events", [
            (lambda b=b: api.post("/api/v1/events", {"events": list(b)})) for b in chunks(events, MAX_EVENTS_PER_CALL)])

        # archive last: an archived customer keeps its history but blocks new subscriptions
        runner.run("archive customers", [
            (lambda s=s: api.post(f"/api/v1/customers/{s.id}/archive")) for s in specs if s.archived])

        # Let the short promotions lapse naturally (the clock is never moved forward).
        remaining = min((expire_at - _emulator_now(api)).total_seconds(), EXPIRING_PROMO_SECONDS)
        if remaining > 0:
            time.sleep(remaining + 0.2)
        summary = {
            "customers": len(specs), "governed": [h.customer_id for h in hierarchies],
            "entities": sum(len(h.entities) for h in hierarchies),
            "assignments": sum(len(level) for h in hierarchies for level in h.assignments),
            "budgetsSetUpDaysAgo": {c: round((now - g.set_up) / timedelta(days=1), 1) for c, g in governance.items()},
            "usages": len(usages), "events": len(events), "expiredPromotions": [s.id for s in expiring],
            "requests": api.requests, "retries": api.retries, "errors": runner.errors,
            "seconds": round(time.monotonic() - started, 1),
        }
        log(f"Demo seed done in {summary['seconds']}s: {len(specs)} customers, {summary['entities']} governance "
            f"entities, {summary['assignments']} budgets, {len(usages)} usage reports, {len(events)} events, "
            f"{api.requests} requests, {len(runner.errors)} errors")
        return summary
    finally:
        runner.pool.shutdown(wait=True)
        runner.one.shutdown(wait=True)
        api.close()


def rng_offset(customer_id: str) -> int:
    """A stable per-customer minute offset so start dates are not all on the hour."""
    return sum(map(ord, customer_id)) % 600


def _usage_batches(usages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Batches of at most MAX_USAGES_PER_CALL that never split one customer's run of seat
    counts (SET): batches go out in parallel, and those must be applied in order."""
    groups: list[list[dict[str, Any]]] = []
    for item in usages:
        previous = groups[-1][-1] if groups else None
        if (previous is not None and item.get("updateBehavior") == "SET" == previous.get("updateBehavior")
                and (item["customerId"], item["featureId"]) == (previous["customerId"], previous["featureId"])):
            groups[-1].append(item)
        else:
            groups.append([item])
    batches: list[list[dict[str, Any]]] = []
    for group in groups:
        if not batches or len(batches[-1]) + len(group) > MAX_USAGES_PER_CALL:
            batches.append([])
        batches[-1].extend(group)
    return batches
