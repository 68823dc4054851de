"""The demo seed, the bulk seeder and the traffic simulator, checked through the API."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from dashboard.rules.governance import Budget, capability_key, time_to_limit
from emulator import periods
from emulator.demo import bulk, company, history, seed
from emulator.demo.catalog import METERED_EVENTS
from emulator.demo.simulator import Target, TrafficSimulator
from emulator.demo.usage import GOVERNED_PER, plan_usage

from .servers import ROOT, Emulator

SEED_TIMEOUT = 120
METERED = ("seats", "api-calls", "ai-tokens", "monthly-active-users", "agent-runs")


@pytest.fixture(scope="module")
def demo() -> Iterator[Emulator]:
    server = Emulator(seed="demo")
    deadline = time.time() + SEED_TIMEOUT
    while "Demo seed done" not in server.log():
        if time.time() > deadline:
            pytest.fail(f"demo seed did not finish:\n{server.log()}")
        time.sleep(0.2)
    yield server
    server.stop()


def walk(server: Emulator, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list, following pagination.next."""
    items, after = [], None
    while True:
        query = {"limit": 100, **params, **({"after": after} if after else {})}
        body = server.call("GET", path, params=query).json()
        items += body["data"]
        after = body["pagination"]["next"]
        if not after:
            return items


@pytest.fixture(scope="module")
def demo_customers(demo: Emulator) -> list[dict[str, Any]]:
    return walk(demo, "/api/v1/customers")


@pytest.fixture(scope="module")
def governed(demo: Emulator, demo_customers: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in demo_customers
            if demo.data("GET", f"/api/v1-beta/customers/{c['id']}/entities", params={"limit": 1})]


@pytest.fixture(scope="module")
def budget_rows(demo: Emulator, governed: list[str]) -> list[dict[str, Any]]:
    """Every governed customer's budgets as the hydrated tree has them, after the seed."""
    return [r for customer in governed for r in walk(demo, f"/api/v1-beta/customers/{customer}/governance",
                                                      featureIds="ai-tokens,agent-runs,api-calls")]


def test_it_seeds_the_demo_without_errors(demo: Emulator) -> None:
    log = demo.log()
    assert " 0 errors" in log.split("Demo seed done", 1)[1].splitlines()[0], log


def test_it_builds_every_feature_shape(demo: Emulator) -> None:
    features = {f["id"]: f for f in walk(demo, "/api/v1/features")}
    assert len(features) >= 8
    assert sum(f["featureType"] == "BOOLEAN" for f in features.values()) >= 2
    assert any(f["featureType"] == "NUMBER" and f["meterType"] == "None" for f in features.values())
    assert any(f["featureType"] == "ENUM" and len(f["enumConfiguration"] or []) >= 3 for f in features.values())
    assert any(f["meterType"] == "FLUCTUATING" and f["meter"] is None for f in features.values())
    meters = {(f["meter"]["aggregation"]["function"], f["meter"]["aggregation"].get("field"),
               f["meter"]["filters"][0]["conditions"][0]["value"]) for f in features.values() if f["meter"]}
    assert ("COUNT", None, "api_call") in meters
    assert ("SUM", "tokens", "llm_completion") in meters
    assert ("UNIQUE", "userId", "user_active") in meters


def test_it_builds_plans_with_inheritance_and_two_addons(demo: Emulator) -> None:
    plans = walk(demo, "/api/v1/plans")
    assert len(plans) >= 3
    by_id = {p["id"]: p for p in plans}
    inherited = [p for p in plans if p["parentPlanId"]]
    assert inherited and all(p["parentPlanId"] in by_id for p in inherited)
    addons = walk(demo, "/api/v1/addons")
    assert len(addons) == 2
    for addon in addons:
        assert demo.data("GET", f"/api/v1/addons/{addon['id']}/entitlements")


def test_it_builds_about_200_customers_with_varied_subscriptions(demo: Emulator,
                                                                 demo_customers: list[dict[str, Any]]) -> None:
    assert 190 <= len(demo_customers) <= 210
    assert all(c["name"] and "@" in c["email"] for c in demo_customers)
    assert sum(bool(c["archivedAt"]) for c in demo_customers) >= 5
    subs = walk(demo, "/api/v1/subscriptions")
    statuses = {s["status"] for s in subs}
    assert {"ACTIVE", "IN_TRIAL", "CANCELED"} <= statuses
    assert len({s["planId"] for s in subs}) >= 3
    assert any(a["quantity"] > 1 for s in subs for a in s.get("addons") or [])
    denied = {demo.data("GET", f"/api/v1/customers/{c['id']}/entitlements")["accessDeniedReason"]
              for c in demo_customers}
    assert {None, "NoActiveSubscription", "CustomerIsArchived"} <= denied


def test_its_customers_are_owned_by_a_small_customer_success_team(demo: Emulator,
                                                                   demo_customers: list[dict[str, Any]]) -> None:
    books = Counter(c["metadata"]["accountOwner"] for c in demo_customers)
    assert set(books) == set(company.ACCOUNT_OWNERS) and 6 <= len(books) <= 10
    assert all(10 <= n <= 45 for n in books.values()), books  # a book of business each, none empty
    from scripts.run import DEMO_USERS  # the demo login owns one of them; the lead and the viewer none

    assert {name: owner for name, *_, owner in DEMO_USERS} == {"demo": "Jonas Andersson", "viewer": "", "lead": ""}
    assert books["Jonas Andersson"] >= 10


def test_the_team_takes_the_draws_a_random_owner_name_took(monkeypatch) -> None:
    """Owners from the team, drawn as random first and last names were, so every other draw
    of the seed (names, plans, usage) is what it was before the team."""
    team = company.build_customers(random.Random(seed.DEFAULT_SEED), 200)
    after_team = random.Random(seed.DEFAULT_SEED)
    company.build_customers(after_team, 200)
    monkeypatch.setattr(company, "account_owner", lambda first, last: f"{first} {last}")  # the old owners
    names = random.Random(seed.DEFAULT_SEED)
    before = company.build_customers(names, 200)
    assert len({s.metadata["accountOwner"] for s in before}) > 100  # a name per customer, near enough
    for with_team, with_names in zip(team, before):
        assert with_team.metadata.pop("accountOwner") in company.ACCOUNT_OWNERS
        with_names.metadata.pop("accountOwner")
        assert with_team == with_names
    assert after_team.random() == names.random()


def test_it_grants_active_and_expired_promotions(demo: Emulator, demo_customers: list[dict[str, Any]]) -> None:
    statuses = [p["status"] for c in demo_customers
                for p in demo.data("GET", f"/api/v1/customers/{c['id']}/promotional-entitlements")]
    assert statuses.count("Active") >= 10
    assert statuses.count("Expired") >= 3


def test_it_builds_deep_governance_trees_with_scoped_budgets(demo: Emulator, governed: list[str]) -> None:
    assert len(governed) >= 15
    customer = governed[0]
    nodes = walk(demo, f"/api/v1-beta/customers/{customer}/governance")
    parents = {n["entityId"]: n["parentId"] for n in nodes}

    def depth(entity: str) -> int:
        return 1 if parents.get(entity) is None else 1 + depth(parents[entity])

    assert max(depth(e) for e in parents) >= 4
    types = {n["entityTypeId"] for n in nodes}
    assert {"org", "department", "team", "user", "agent", "model"} <= types
    assignments = walk(demo, f"/api/v1-beta/customers/{customer}/assignments")
    scoped = [a for a in assignments if a["scopeEntityIds"]]
    assert scoped and all(parents.get(s) is None for a in scoped for s in a["scopeEntityIds"])  # models are roots
    assert {"P1M", "P1W", "P1D"} <= {a["cadence"] for a in assignments}


def test_it_puts_customers_and_entities_near_and_over_limits(demo: Emulator, demo_customers: list[dict[str, Any]],
                                                             governed: list[str]) -> None:
    ratios = []
    for c in demo_customers:
        for e in demo.data("GET", f"/api/v1/customers/{c['id']}/entitlements")["entitlements"]:
            if e["feature"]["id"] in METERED and e.get("usageLimit"):
                ratios.append(e["currentUsage"] / e["usageLimit"])
    assert sum(0.8 <= r <= 1.0 for r in ratios) >= 5
    assert sum(r > 1.0 for r in ratios) >= 3
    utilizations = []
    for customer in governed:
        rows = demo.data("GET", f"/api/v1-beta/customers/{customer}/governance",
                         params={"featureIds": "ai-tokens,agent-runs,api-calls", "minUtilization": 0.8, "limit": 100})
        utilizations += [r["utilization"] for r in rows]
    assert sum(0.8 <= u <= 1.0 for u in utilizations) >= 5
    assert sum(u > 1.0 for u in utilizations) >= 5


def test_it_keeps_seeded_budgets_within_their_limits_but_a_few_overruns(governed: list[str],
                                                                        budget_rows: list[dict[str, Any]]) -> None:
    """The seed reports governed usage the way an app that checks governance would: hard
    budgets stop at their limit; only the few deliberate overruns (about one user per
    customer, and what that adds up its chain) read above it."""
    rows = budget_rows
    over = [r for r in rows if r["utilization"] is not None and r["utilization"] > 1.0]
    assert len(rows) > 1000
    assert 5 <= len(over) <= 2 * len(governed), [(r["entityId"], r["utilization"]) for r in over]
    assert all(r["entityTypeId"] == "user" for r in over if r["utilization"] > 1.05), over


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_it_sets_budgets_up_days_ago_and_puts_the_clock_back(demo: Emulator,
                                                              budget_rows: list[dict[str, Any]]) -> None:
    """Each governed customer's budgets were created with the emulator's clock set back,
    on a day of its own: monthly windows began days ago, weekly ones a day or more ago,
    daily ones hours ago. Then the seed put the clock back to real time."""
    state = demo.data("GET", "/_emulator/state")
    assert state["clockOffsetSeconds"] == 0
    now = _when(state["now"])
    assert abs(now - datetime.now(timezone.utc)) < timedelta(seconds=10)
    behind: dict[str, list[float]] = {}  # cadence -> days each window has run
    for r in budget_rows:
        behind.setdefault(r["cadence"], []).append((now - _when(r["usagePeriodStart"])) / timedelta(days=1))
    monthly, weekly, daily = behind["P1M"], behind["P1W"], behind["P1D"]
    assert sum(days >= 1 for days in monthly) >= 0.9 * len(monthly)
    assert max(monthly) < 27 and max(monthly) - min(monthly) >= 10
    assert len({round(days) for days in monthly}) >= 8  # set up on different days
    assert sum(1 <= days < 7 for days in weekly) >= 0.9 * len(weekly)
    assert all(0 < days < 1 for days in daily) and max(daily) - min(daily) >= 0.25


def test_it_puts_the_clock_back_when_setting_budgets_up_fails() -> None:
    """With governance off every budget write fails while the clock is set back; the seed
    goes on and leaves the clock at real time."""
    server = Emulator()
    try:
        server.data("PUT", "/_emulator/settings", json={"governanceEnabled": False})
        summary = seed.seed_demo(server.url, server.key, log=lambda m: None, customers=60, governed=3)
        assert [e for e in summary["errors"] if e.startswith("governance hierarchies")]
        assert server.data("GET", "/_emulator/state")["clockOffsetSeconds"] == 0
    finally:
        server.stop()


def test_it_gives_the_governance_page_budgets_it_can_project(demo: Emulator,
                                                              budget_rows: list[dict[str, Any]]) -> None:
    """The page's time to limit (usage so far over time so far) over the seeded budgets:
    most will not reach their limit this window, some will before the reset, a few
    already have; hardly any are too young or too idle to project."""
    now = _when(demo.data("GET", "/_emulator/state")["now"])
    states = Counter(time_to_limit(Budget(
        r["entityId"], capability_key(r["featureId"], None), tuple(r["scopeEntityIds"]), r["usageLimit"],
        r["currentUsage"], r["cadence"], _when(r["usagePeriodStart"]), _when(r["usagePeriodEnd"])), now).state
        for r in budget_rows)
    assert states["not_this_window"] > len(budget_rows) / 2, states
    assert states["before_reset"] >= 50, states
    assert 5 <= states["exhausted"] < states["before_reset"], states
    assert states["unknown"] < len(budget_rows) / 10, states


def _entitlement(server: Emulator, customer: str, feature: str) -> dict[str, Any] | None:
    ents = server.data("GET", f"/api/v1/customers/{customer}/entitlements")["entitlements"]
    return next((e for e in ents if e["feature"]["id"] == feature), None)


def _history(server: Emulator, customer: str, feature: str, start: datetime) -> list[dict[str, Any]]:
    data = server.data("GET", f"/api/v1/usage/{customer}/history/{feature}",
                       params={"startDate": start.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return data["series"][0]["points"]


def test_it_spreads_seeded_usage_over_the_days_of_each_period(demo: Emulator,
                                                              demo_customers: list[dict[str, Any]]) -> None:
    now = datetime.now(timezone.utc)  # the demo leaves the emulator's clock at real time
    start = (now - timedelta(days=history.HISTORY_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    subscribed = {s["customerId"]: _when(s["startDate"]) for s in walk(demo, "/api/v1/subscriptions")
                  if s["status"] == "ACTIVE"}
    checked = 0
    for customer in demo_customers:
        since = subscribed.get(customer["id"])
        ent = _entitlement(demo, customer["id"], "ai-tokens") if since else None
        # long-standing customers whose tokens reset with their subscription (no promotion
        # won the limit) and sit at a tenth of it or more: their history spans three periods
        if (ent is None or since > start - timedelta(days=40) or not ent["usageLimit"]
                or _when(ent["usagePeriodAnchor"]) != since or _when(ent["usagePeriodStart"]) > now - timedelta(days=2)
                or ent["currentUsage"] < 0.1 * ent["usageLimit"]):
            continue
        points = _history(demo, customer["id"], "ai-tokens", start)
        values = [p["value"] for p in points]
        assert values[-1] == ent["currentUsage"]
        # used day by day: many different daily totals, and some before today in this period
        assert len({v for v in values if v}) >= 10, (customer["id"], values)
        period_start = _when(ent["usagePeriodStart"])
        yesterday = now - timedelta(days=1)
        before_today = [p["value"] for p in points[:-1] if period_start < _when(p["timestamp"]) < yesterday]
        assert any(before_today), (customer["id"], values)
        # and a drop at every reset: the earlier periods had usage of their own
        resets = [i for i, p in enumerate(points) if p["isResetPoint"] and i > 0]
        assert len(resets) >= 2 and all(values[i] < values[i - 1] for i in resets), (customer["id"], values)
        checked += 1
    assert checked >= 20


def _small_company(now: datetime) -> tuple[list[company.Hierarchy], list[dict[str, Any]], list[dict[str, Any]],
                                          dict[str, history.Timeline]]:
    """60 customers, two of them governed, their planned usage (undated) and the reset
    periods the emulator would report for them at ``now``."""
    rng = random.Random(seed.DEFAULT_SEED)
    specs = company.build_customers(rng, 60)
    hierarchies = [company.build_hierarchy(rng, s) for s in specs if s.plan == "enterprise"][:2]
    usages, events = plan_usage(rng, specs, hierarchies, now)
    month = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
    timelines = {}
    for spec in specs:
        if spec.plan and not spec.archived:
            since = now - timedelta(days=spec.history[-1][3], minutes=seed.rng_offset(spec.id))
            subscription_month = history.Period(periods.reset_window("MONTH", "SubscriptionStart", since, now)[0],
                                                "MONTH", since)
            timelines[spec.id] = history.Timeline(since, {
                "ai-tokens": subscription_month, "agent-runs": subscription_month,
                "api-calls": history.Period(month, "MONTH", month),
                "monthly-active-users": history.Period(month, "MONTH", month),
                "seats": history.Period(None, None, None)})
    return hierarchies, usages, events, timelines


def _dated_at(item: dict[str, Any], now: datetime) -> datetime:
    """Undated usage (a period that began moments ago) goes at server time."""
    when = item.get("timestamp") or item.get("createdAt")
    return _when(when) if when else now


def _feature_of(item: dict[str, Any]) -> str:
    return METERED_EVENTS[item["eventName"]]["id"] if "eventName" in item else item["featureId"]


def test_it_dates_seeded_usage_without_changing_current_period_totals() -> None:
    now = datetime(2026, 11, 21, 10, 30, tzinfo=timezone.utc)
    _, usages, events, timelines = _small_company(now)
    dated = history.date_usage(usages, events, timelines, now, seed.DEFAULT_SEED)
    assert dated == history.date_usage(usages, events, timelines, now, seed.DEFAULT_SEED)  # deterministic
    dated_usages, dated_events = dated
    assert len(dated_events) > len(events) and len(dated_usages) > len(usages)

    def totals(items: list[dict[str, Any]], current_only: bool) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], Any] = {}
        for item in sorted(items, key=lambda item: _dated_at(item, now)):
            customer, feature = item["customerId"], _feature_of(item)
            period = timelines[customer].periods[feature]
            if current_only and period.start is not None and _dated_at(item, now) < period.start:
                continue
            if item.get("eventName") == "user_active":
                out.setdefault((customer, feature), set()).add(item["dimensions"]["userId"])
            elif item.get("eventName") == "api_call":
                out[(customer, feature)] = out.get((customer, feature), 0) + 1
            elif item.get("updateBehavior") == "SET":
                out[(customer, feature)] = item["value"]  # the latest count
            else:
                value = item["dimensions"]["tokens"] if "eventName" in item else item["value"]
                out[(customer, feature)] = out.get((customer, feature), 0) + value
        return {k: len(v) if isinstance(v, set) else v for k, v in out.items()}

    assert totals(dated_usages + dated_events, current_only=True) == totals(usages + events, current_only=False)
    for item in dated_usages + dated_events:
        when = _dated_at(item, now)
        timeline = timelines[item["customerId"]]
        assert timeline.since <= when <= now
        period = timeline.periods[_feature_of(item)]
        if period.start is not None and when < period.start:
            # earlier periods' usage carries only what its meter reads, so it reaches no budget
            meter = METERED_EVENTS[item["eventName"]]["meter"]["aggregation"] if "eventName" in item else {}
            assert set(item.get("dimensions") or {}) <= {meter.get("field")}


def test_a_whole_earlier_period_is_measured_against_this_periods_pace() -> None:
    day = timedelta(days=1)
    assert history._whole_period(100, None, 15 * day, 30 * day) == 200  # half way: twice what it has
    assert history._whole_period(100, None, 2 * day, 30 * day) == 100 * history.YOUNG_PERIOD_CAP
    assert history._whole_period(100, None, timedelta(0), 30 * day) == 100 * history.YOUNG_PERIOD_CAP  # just begun
    assert history._whole_period(100, None, None, 30 * day) == 100  # calls and users: the amount so far
    assert history._whole_period(100, 7.0, 2 * day, 30 * day) == 210  # governed: its entities' pace


@pytest.mark.parametrize("day", range(1, 32, 3))
def test_seeded_tokens_drop_at_every_reset_however_young_the_period(day: int) -> None:
    """The daily point after a reset holds the new period's first hours; they must weigh
    less than the point before it (the period before, up to the reset day's midnight), on
    whatever day the seed runs (a period that began three days ago, its first day a busy
    Friday, once made the history climb at a reset)."""
    now = datetime(2026, 12, day, 1, 4, tzinfo=timezone.utc)
    _, usages, events, timelines = _small_company(now)
    _, dated_events = history.date_usage(usages, events, timelines, now, seed.DEFAULT_SEED)
    checked = 0
    for customer, timeline in timelines.items():
        period = timeline.periods["ai-tokens"]
        if period.start is None or period.start - timeline.since < timedelta(days=40):
            continue  # no whole period before this one
        before = history._period_before(period, period.start)
        midnight = period.start.replace(hour=0, minute=0, second=0, microsecond=0)

        def tokens(lo: datetime, hi: datetime) -> int:
            return sum(e["dimensions"]["tokens"] for e in dated_events if e["customerId"] == customer
                       and e["eventName"] == "llm_completion" and lo <= _dated_at(e, now) < hi)
        head = tokens(period.start, min(midnight + timedelta(days=1), now + timedelta(seconds=1)))
        if head:
            assert tokens(before, midnight) > head, (customer, period.start)
            checked += 1
    assert checked >= 5


def test_a_period_begun_minutes_ago_keeps_its_usage_at_server_time_and_still_drops() -> None:
    now = datetime(2026, 12, 14, 9, 0, tzinfo=timezone.utc)
    _, usages, events, timelines = _small_company(now)
    customer = next(c for c, t in timelines.items() if now - t.since > timedelta(days=120)
                    and any(e["customerId"] == c and e["eventName"] == "llm_completion" for e in events))
    begun = now - timedelta(minutes=10)
    timelines[customer].periods["ai-tokens"] = history.Period(begun, "MONTH", periods.add_months(begun, -18))
    _, dated_events = history.date_usage(usages, events, timelines, now, seed.DEFAULT_SEED)
    mine = [e for e in dated_events if e["customerId"] == customer and e["eventName"] == "llm_completion"]
    current = sum(e["dimensions"]["tokens"] for e in mine if "timestamp" not in e)  # at server time
    before = history._period_before(timelines[customer].periods["ai-tokens"], begun)
    earlier = sum(e["dimensions"]["tokens"] for e in mine if "timestamp" in e and before <= _when(e["timestamp"]) < begun)
    assert current and earlier > current


def test_it_dates_governed_usage_in_its_budgets_windows_at_each_entitys_pace() -> None:
    """Budgets set up 10 days ago: attributed usage is dated inside the window of the
    budgets it reaches (a day's for runs), and is the share of the planned amount that
    an entity at its own pace has used by now; the user left over its budget keeps all of
    it. Usage before the window reaches no entity."""
    now = datetime(2026, 11, 21, 10, 30, tzinfo=timezone.utc)
    hierarchies, usages, events, timelines = _small_company(now)
    set_up = now - timedelta(days=10, hours=5)
    governance = {h.customer_id: history.Governance(set_up, h.overrun) for h in hierarchies}
    dated = history.date_usage(usages, events, timelines, now, seed.DEFAULT_SEED, governance)
    assert dated == history.date_usage(usages, events, timelines, now, seed.DEFAULT_SEED, governance)
    windows = {f: periods.cadence_window(cadence, set_up, now) for f, cadence in GOVERNED_PER.items()}
    assert windows["ai-tokens"][0] == set_up and windows["agent-runs"][0] > now - timedelta(days=1)

    def attributed_to(item: dict[str, Any]) -> str | None:
        dims = item.get("dimensions") or {}
        return dims.get("userId") or dims.get("agentId")

    def tokens(items: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for item in items:
            if item.get("eventName") == "llm_completion" and item["customerId"] in governance:
                key = (item["customerId"], attributed_to(item) or "")
                out[key] = out.get(key, 0) + item["dimensions"]["tokens"]
        return out

    checked = 0
    for item in dated[0] + dated[1]:
        feature = _feature_of(item)
        if item["customerId"] not in governance or feature not in GOVERNED_PER:
            continue
        start, _ = windows[feature]
        if attributed_to(item) is not None:
            assert start <= _dated_at(item, now) <= now, item
            checked += 1
        else:
            assert _dated_at(item, now) < start, item
    assert checked > 1000

    planned, got = tokens(events), tokens(dated[1])
    assert all(got.get(key, 0) <= amount for key, amount in planned.items())
    overruns = {(h.customer_id, h.overrun) for h in hierarchies}
    assert overruns and all(got[key] == planned[key] for key in overruns)
    behind = (now - history.MARGIN - set_up) / (windows["ai-tokens"][1] - set_up)
    paced = sum(got.get(key, 0) for key in planned if key not in overruns and key[1])
    aimed = sum(amount for key, amount in planned.items() if key not in overruns and key[1])
    assert history.PACE[0] * behind * 0.99 <= paced / aimed <= history.PACE[1] * behind * 1.01


def _normalize(value: Any) -> Any:
    """Drop what legitimately differs between two builds of the same world: timestamps
    and server-generated ids (assignment and subscription ids)."""
    if isinstance(value, dict):
        generated_id = "entityId" in value or "planId" in value and "customerId" in value
        return {k: _normalize(v) for k, v in value.items()
                if not (k.endswith(("At", "Date", "Start", "End", "Anchor")) or k == "validUntil"
                        or k == "id" and generated_id)}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def test_it_reads_back_a_bulk_seed_like_an_api_built_one() -> None:
    customers, nodes = 200, 2000
    plan = bulk.build_plan(customers, nodes)
    by_api = Emulator()
    tmp = tempfile.mkdtemp(prefix="test-bulk-")
    db_path = os.path.join(tmp, "bulk.sqlite3")
    by_bulk = None
    try:
        bulk.apply_via_api(plan, by_api.url, by_api.key, log=lambda m: None)
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "seed_emulator", "--bulk", "--customers",
                        str(customers), "--nodes", str(nodes), "--db", db_path], cwd=ROOT, check=True,
                       capture_output=True, timeout=120)
        by_bulk = Emulator(db_path=db_path)
        governed = plan.governed[0].customer_id
        plain = plan.customers[-1]["id"]
        some_entity = plan.governed[0].users[0]
        paths = [
            "/api/v1/customers?limit=100",
            f"/api/v1/customers/{plain}",
            f"/api/v1/customers/{plain}/entitlements",
            f"/api/v1/customers/{governed}/entitlements",
            f"/api/v1/subscriptions?customerId={governed}",
            "/api/v1/plans",
            "/api/v1-beta/entity-types",
            f"/api/v1-beta/customers/{governed}/entities?limit=100",
            f"/api/v1-beta/customers/{governed}/entities/{some_entity}",
            f"/api/v1-beta/customers/{governed}/assignments?limit=100",
            f"/api/v1-beta/customers/{governed}/governance?limit=50",
            f"/api/v1-beta/customers/{governed}/governance?featureIds=ai-tokens&sortBy=utilization&limit=50",
            f"/api/v1-beta/customers/{governed}/governance?featureIds=ai-tokens&sortBy=currentUsage&scope=scoped",
        ]
        for path in paths:
            a, b = by_api.call("GET", path), by_bulk.call("GET", path)
            assert a.status_code == b.status_code == 200, (path, a.text, b.text)
            assert _normalize(a.json()["data"]) == _normalize(b.json()["data"]), path
            # cursors may embed generated ids (tie-breakers), so follow each one instead
            next_a, next_b = (r.json().get("pagination", {}).get("next") for r in (a, b))
            assert (next_a is None) == (next_b is None), path
            if next_a:
                sep = "&" if "?" in path else "?"
                a2, b2 = by_api.call("GET", f"{path}{sep}after={next_a}"), by_bulk.call("GET", f"{path}{sep}after={next_b}")
                assert _normalize(a2.json()["data"]) == _normalize(b2.json()["data"]), path + " page 2"
        # both worlds' budgets were set up days ago, each customer's on a day of its own
        starts = [{(g.customer_id, r["entityId"], *r["scopeEntityIds"]): _when(r["usagePeriodStart"])
                   for g in plan.governed
                   for r in walk(server, f"/api/v1-beta/customers/{g.customer_id}/governance", featureIds="ai-tokens")
                   if r["cadence"] == "P1M"} for server in (by_api, by_bulk)]
        assert starts[0].keys() == starts[1].keys() and len(starts[0]) > 1000
        assert all(abs(starts[1][key] - began) < timedelta(minutes=2) for key, began in starts[0].items())
        days_ago = {round((datetime.now(timezone.utc) - began) / timedelta(days=1)) for began in starts[1].values()}
        assert min(days_ago) >= 2 and len(days_ago) >= 5
        tree = by_bulk.data("GET", f"/api/v1-beta/customers/{governed}/governance",
                            params={"featureIds": "ai-tokens", "sortBy": "utilization", "limit": 50})
        assert len(tree) == 50 and any(row["currentUsage"] for row in tree)
        total = sum(len(walk(by_bulk, f"/api/v1-beta/customers/{g.customer_id}/entities")) for g in plan.governed)
        assert total == nodes
    finally:
        by_api.stop()
        if by_bulk is not None:
            by_bulk.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _api_calls_usage(server: Emulator, customers: list[dict[str, Any]]) -> float:
    total = 0.0
    for c in customers:
        for e in server.data("GET", f"/api/v1/customers/{c['id']}/entitlements")["entitlements"]:
            if e["feature"]["id"] == "api-calls":
                total += e["currentUsage"] or 0
    return total


def _tree_usage(server: Emulator, customer: str) -> float:
    rows = walk(server, f"/api/v1-beta/customers/{customer}/governance", featureIds="ai-tokens,api-calls")
    return sum(r["currentUsage"] or 0 for r in rows)


def test_it_moves_usage_with_the_traffic_simulator_despite_faults(demo: Emulator,
                                                                 demo_customers: list[dict[str, Any]],
                                                                 governed: list[str]) -> None:
    before = _api_calls_usage(demo, demo_customers)
    tree_before = sum(_tree_usage(demo, g) for g in governed[:5])
    sim = TrafficSimulator(demo.url, demo.key, rate=400, log=lambda m: None)
    sim.discover()
    # An outage for the first second: the first batch is certain to fail and be retried.
    demo.faults(outage=True)
    recovery = threading.Timer(1.0, demo.clear_faults)
    recovery.start()
    try:
        totals = sim.run(duration=4, discover=False)
    finally:
        recovery.join()
        demo.clear_faults()
        sim.close()
    # Not a speed check: however slow the machine, the first one-second tick (400 events)
    # always completes, its 503s retried rather than lost: each event is reported, or left
    # out because governance denied it.
    assert totals.events + totals.denied >= 400 and totals.dropped_batches == 0
    assert sim.api.retries > 0
    assert _api_calls_usage(demo, demo_customers) > before
    assert sum(_tree_usage(demo, g) for g in governed[:5]) > tree_before


def test_it_keeps_seeded_seats_near_where_the_seed_put_them(demo: Emulator) -> None:
    sim = TrafficSimulator(demo.url, demo.key, rate=1, log=lambda m: None)
    try:
        sim.discover()
        free = [t for t in sim.targets if t.seats is not None
                and (_entitlement(demo, t.customer_id, "seats") or {}).get("usageLimit") == 3][:5]
        assert len(free) == 5
        before = {t.customer_id: _entitlement(demo, t.customer_id, "seats")["currentUsage"] for t in free}
        sim.targets = free  # every usage tick now sets each of their seat counts
        for _ in range(40):
            sim.tick(0)
        assert sim.totals.usages >= 5 * 40
    finally:
        sim.close()
    for customer, seats in before.items():
        after = _entitlement(demo, customer, "seats")["currentUsage"]
        assert 1 <= after and abs(after - seats) <= 1 and after <= 2 * 3, (customer, seats, after)


def test_it_stops_the_simulate_traffic_command_cleanly_on_ctrl_c(demo: Emulator) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "simulate_traffic", "--url", demo.url, "--key", demo.key,
         "--rate", "50"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert "simulate_traffic:" in out and "events" in out


def _budget_usage(server: Emulator, customer: str) -> dict[str, float]:
    rows = server.data("GET", f"/api/v1-beta/customers/{customer}/governance", params={"featureIds": "ai-tokens"})
    return {r["entityId"]: r["currentUsage"] for r in rows}


def test_it_reports_governed_usage_only_when_the_check_grants_it(demo: Emulator) -> None:
    """The simulator asks the entitlement check with the usage's dimensions first: a user
    whose budget is spent gets no more usage, while a user with an unlimited budget does."""
    customer = f"governed-sim-{int(time.time() * 1000)}"
    demo.data("POST", "/api/v1/customers", json={"id": customer, "name": "Governed Sim"})
    demo.data("POST", "/api/v1/subscriptions", json={"customerId": customer, "planId": "enterprise"})
    demo.data("PUT", f"/api/v1-beta/customers/{customer}/entities", json={"entities": [
        {"id": "spent-user", "entityTypeId": "user"}, {"id": "free-user", "entityTypeId": "user"}]})
    demo.data("PUT", f"/api/v1-beta/customers/{customer}/assignments", json={"assignments": [
        {"entityId": "spent-user", "featureId": "ai-tokens", "usageLimit": 1000, "cadence": "P1M"},
        {"entityId": "free-user", "featureId": "ai-tokens", "usageLimit": None, "cadence": "P1M"}]})
    demo.data("POST", "/api/v1/events", json={"events": [
        {"customerId": customer, "eventName": "llm_completion", "idempotencyKey": f"{customer}-spend",
         "dimensions": {"userId": "spent-user", "tokens": 1000}}]})
    assert _budget_usage(demo, customer) == {"spent-user": 1000, "free-user": 0}

    sim = TrafficSimulator(demo.url, demo.key, rate=40, log=lambda m: None)
    try:
        sim.targets = [Target(customer, users=["spent-user", "free-user"])]
        for tick in range(10):
            sim.tick(tick)
    finally:
        sim.close()
    after = _budget_usage(demo, customer)
    assert after["spent-user"] == 1000
    assert after["free-user"] > 0
    assert sim.totals.denied > 0 and sim.totals.events > 0
