"""Bulk seeding: thousands of customers and ~100,000 Governance nodes in one go.

The world is first described as a deterministic plan of REST writes (``BulkPlan``):
the catalog, customer bodies, subscription bodies, entities, assignments by depth and
a few events. That plan can be applied two ways that must read back identically:

* ``apply_direct`` writes straight into the SQLite store in ONE transaction. Rows
  whose shape is simple and exported by the domain modules are written with
  ``executemany`` (customers via ``domain.customers.new_customer``; entities and
  assignments via ``domain.governance.entity_doc``/``entity_row``/``assignment_doc``/
  ``assignment_row``, created when the customer set its budgets up, days ago).
  Everything whose document is built inside an endpoint (catalog, subscriptions,
  events with their meters and attribution) is applied by calling that endpoint's
  handler in-process, without HTTP, so it is the same code by construction. Inside the
  outer transaction ``store.write()`` nests as a SAVEPOINT, so each handler keeps its
  all-or-nothing behaviour while everything commits once.
* ``apply_via_api`` sends the very same plan over HTTP, call by call, with the emulator's
  clock set back while it creates a customer's budgets. The tests use it to prove that
  the bulk path is indistinguishable from the API path.
"""
from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator

from .catalog import PLAN_IDS, catalog_calls
from .company import (
    ACCOUNT_OWNERS, AGENT_KINDS, DEPARTMENTS, FIRST_NAMES, LAST_NAMES, MODELS, NAME_HEADS, NAME_KINDS, NAME_TAILS,
    TEAMS, budgets_set_up_ago,
)
from .rest import MAX_EVENTS_PER_CALL, MAX_GOVERNANCE_ITEMS, RestClient, chunks, clock_back

log = logging.getLogger(__name__)

Log = Callable[[str], None]
DEFAULT_SEED = 424242
GOVERNED_SHARE = 0.05  # 500 of 10,000 customers carry hierarchies, like a real fleet's largest accounts
MAX_TEAMS_PER_DEPT = 6
EVENTS_PER_GOVERNED_CUSTOMER = 40


@dataclass
class GovernedCustomer:
    customer_id: str
    # entity upsert bodies, plus each entity's parent (set through its first assignment)
    entities: list[dict[str, Any]] = field(default_factory=list)
    parents: dict[str, str | None] = field(default_factory=dict)
    # assignment upsert bodies by depth (roots first), so parents are placed first
    levels: list[list[dict[str, Any]]] = field(default_factory=lambda: [[], [], [], [], []])
    users: list[str] = field(default_factory=list)
    # when its entities and budgets were created, before the plan is applied: their windows' anchor
    set_up_ago: timedelta = timedelta(0)


@dataclass
class BulkPlan:
    customers: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    governed: list[GovernedCustomer]
    events: list[dict[str, Any]]

    @property
    def node_count(self) -> int:
        return sum(len(g.entities) for g in self.governed)

    @property
    def assignment_count(self) -> int:
        return sum(len(level) for g in self.governed for level in g.levels)


def build_plan(customers: int = 10_000, nodes: int = 100_000, *, governed: int | None = None,
               seed: int = DEFAULT_SEED) -> BulkPlan:
    """A deterministic fleet: ``customers`` customers, ``nodes`` entities spread over
    the ``governed`` largest ones (default 5 % of the fleet, at least 1)."""
    rng = random.Random(seed)
    governed = governed if governed is not None else max(1, min(customers, round(customers * GOVERNED_SHARE)))
    if nodes and governed < 1:
        raise ValueError("nodes need at least one governed customer")
    bodies, subs = [], []
    for i in range(customers):
        name = f"{rng.choice(NAME_HEADS)}{rng.choice(NAME_TAILS)} {rng.choice(NAME_KINDS)}"
        cid = f"cust-{i:05d}"
        bodies.append({"id": cid, "name": name, "email": f"admin@{cid}.example.com",
                       "billingCurrency": rng.choice(["usd", "usd", "eur", "gbp"]),
                       "metadata": {"segment": "enterprise" if i < governed else rng.choice(["smb", "mid-market"]),
                                    "bulk": "true",
                                    # the demo's team, in turn (no draw: the rest of the fleet is unchanged)
                                    "accountOwner": ACCOUNT_OWNERS[i % len(ACCOUNT_OWNERS)]}})
        # the governed customers are the big ones: enterprise plans with add-ons
        plan = "enterprise" if i < governed else rng.choice(PLAN_IDS[:3])
        sub: dict[str, Any] = {"customerId": cid, "planId": plan, "billingPeriod": "MONTHLY"}
        if plan != "free" and rng.random() < 0.2:
            sub["addons"] = [{"id": "extra-seats", "quantity": rng.randint(1, 5)}]
        subs.append(sub)
    plan_out = BulkPlan(bodies, subs, [], [])
    if nodes <= 0:
        return plan_out
    per_customer = [nodes // governed + (1 if k < nodes % governed else 0) for k in range(governed)]
    key = 0
    for k in range(governed):
        g = _hierarchy(rng, bodies[k]["id"], per_customer[k])
        # a generator of its own, so the rest of the fleet is drawn as before
        g.set_up_ago = budgets_set_up_ago(random.Random(f"{seed}:set-up:{g.customer_id}"))
        plan_out.governed.append(g)
        for _ in range(EVENTS_PER_GOVERNED_CUSTOMER if g.users else 0):
            key += 1
            plan_out.events.append({
                "customerId": g.customer_id, "eventName": "llm_completion", "idempotencyKey": f"bulk-{key}",
                "dimensions": {"userId": rng.choice(g.users), "model": rng.choice(MODELS),
                               "tokens": rng.choice([2_000, 20_000, 80_000, 150_000])}})
    return plan_out


def _hierarchy(rng: random.Random, customer_id: str, size: int) -> GovernedCustomer:
    """``size`` entities: models, an org root, departments, teams, then users and
    agents filling the remaining budget (depth 4)."""
    g = GovernedCustomer(customer_id)

    def add(entity_id: str, type_id: str, name: str, parent: str | None, depth: int,
            budget: dict[str, Any]) -> bool:
        if len(g.entities) >= size:
            return False
        g.entities.append({"id": entity_id, "entityTypeId": type_id, "displayName": name,
                           "metadata": {"tier": type_id}})
        g.parents[entity_id] = parent
        g.levels[depth].append({"entityId": entity_id, "parentId": parent, **budget})
        return True

    for model in MODELS:
        add(model, "model", model, None, 0, {"featureId": "ai-tokens", "usageLimit": 50_000_000, "cadence": "P1M"})
    org = f"org-{customer_id}"
    if not add(org, "org", customer_id, None, 1, {"featureId": "ai-tokens", "usageLimit": 40_000_000,
                                                  "cadence": "P1M"}):
        return g
    if len(g.entities) < size:
        g.levels[1].append({"entityId": org, "featureId": "ai-tokens", "scopeEntityIds": [MODELS[0]],
                            "usageLimit": 10_000_000, "cadence": "P1W"})
    remaining = size - len(g.entities)
    # shape: ~4 departments x ~4 teams, users filling the rest
    n_depts = max(1, min(len(DEPARTMENTS), remaining // 50 or 1))
    n_teams = max(1, min(MAX_TEAMS_PER_DEPT, remaining // (n_depts * 12) or 1))
    teams: list[str] = []
    for d in range(n_depts):
        dept = f"dept-{DEPARTMENTS[d]}"
        if not add(dept, "department", DEPARTMENTS[d].title(), org, 2,
                   {"featureId": "ai-tokens", "usageLimit": 8_000_000, "cadence": "P1M"}):
            break
        for t in range(n_teams):
            team = f"team-{DEPARTMENTS[d]}-{t + 1}"
            if not add(team, "team", f"{TEAMS[DEPARTMENTS[d]][t % len(TEAMS[DEPARTMENTS[d]])].title()} {t + 1}", dept, 3,
                       {"featureId": "ai-tokens", "usageLimit": float(rng.choice([1_000_000, 2_000_000])),
                        "cadence": "P1M"}):
                break
            teams.append(team)
    n = 0
    while teams and len(g.entities) < size:
        team = teams[n % len(teams)]
        n += 1
        if n % 9 == 0:
            agent = f"agent-{rng.choice(AGENT_KINDS)}-{n}"
            add(agent, "agent", agent[6:], team, 4, {"featureId": "agent-runs", "usageLimit": 100, "cadence": "P1D"})
        else:
            user = f"user-{n:05d}"
            if add(user, "user", f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", team, 4,
                   {"featureId": "ai-tokens", "usageLimit": float(rng.choice([100_000, 250_000, 500_000])),
                    "cadence": rng.choice(["P1M", "P1M", "P1W", "P1D"])}):
                g.users.append(user)
    return g


# --- applying the plan over HTTP (the reference) -----------------------------------------


def apply_via_api(plan: BulkPlan, base_url: str, api_key: str, log: Log = print) -> None:
    """The same world built call by call through the public API."""
    api = RestClient(base_url, api_key)
    try:
        for stage in catalog_calls():
            for method, path, body in stage:
                api.request(method, path, json=body)
        for body in plan.customers:
            api.post("/api/v1/customers", body)
        for body in plan.subscriptions:
            api.post("/api/v1/subscriptions", body)
        for g in plan.governed:
            with clock_back(api, g.set_up_ago):
                for batch in chunks(g.entities, MAX_GOVERNANCE_ITEMS):
                    api.put(f"/api/v1-beta/customers/{g.customer_id}/entities", {"entities": list(batch)})
                for level in g.levels:
                    for batch in chunks(level, MAX_GOVERNANCE_ITEMS):
                        api.put(f"/api/v1-beta/customers/{g.customer_id}/assignments", {"assignments": list(batch)})
        for batch in chunks(plan.events, MAX_EVENTS_PER_CALL):
            api.post("/api/v1/events", {"events": list(batch)})
        log(f"bulk plan applied over HTTP: {api.requests} requests")
    finally:
        api.close()


# --- applying the plan straight into SQLite -----------------------------------------------


@contextmanager
def _one_transaction(c: sqlite3.Connection) -> Iterator[None]:
    """Run everything in one transaction; the endpoint handlers' own ``store.write()``
    blocks nest inside it as savepoints (same rollback-on-error, one commit)."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        c.execute("ROLLBACK")
        raise
    else:
        c.execute("COMMIT")


def _dispatch(method: str, path: str, body: Any) -> Any:
    """Call an endpoint's handler in-process: the same code a REST call reaches, minus
    HTTP, authentication and fault injection."""
    from .. import app, clock, store  # noqa: F401  (app registers every route)
    from ..http import ApiError, Request, resolve

    state = store.get_control()
    clock.set_request_offset(float(state.get("clockOffsetSeconds") or 0))
    req = Request(method=method, path=path, query=[], headers={"content-type": "application/json"},
                  raw_body=json.dumps(body).encode(), api_key="bulk")
    handler, req.params = resolve(method, path)
    req.control = state  # type: ignore[attr-defined]
    try:
        resp = handler(req)
    except ApiError as exc:
        raise RuntimeError(f"{method} {path} -> {exc.status} {exc.code}: {exc.message}") from None
    if not 200 <= resp.status < 300:
        raise RuntimeError(f"{method} {path} -> {resp.status}: {resp.body}")
    return resp.body.get("data")


def apply_direct(plan: BulkPlan, db_path: str, log: Log = print, *, id_seed: int = DEFAULT_SEED) -> dict[str, float]:
    """Write the plan into the SQLite file at ``db_path`` (created if needed). Refuses
    a store that already has customers, so it never mixes with another world."""
    os.environ["EMULATOR_DB_PATH"] = db_path
    from .. import clock, store
    from ..domain import customers, governance

    store.init_db(db_path)
    c = store.conn()
    if c.execute("SELECT 1 FROM customers LIMIT 1").fetchone():
        raise RuntimeError(f"{db_path} already has customers; bulk seeding needs an empty store")
    ids = random.Random(id_seed)
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        log(f"  {name}: {timings[name]}s")

    with _one_transaction(c):
        clock.set_request_offset(float(store.get_control(c).get("clockOffsetSeconds") or 0))
        for stage in catalog_calls():
            for method, path, body in stage:
                _dispatch(method, path, body)
        lap("catalog")
        now = clock.iso(clock.now())
        docs = [customers.new_customer(body, now) for body in plan.customers]
        c.executemany(
            "INSERT INTO customers (id, name, email, created_at, archived_at, doc) VALUES (?, ?, ?, ?, ?, ?)",
            [(d["id"], d.get("name"), d.get("email"), d["createdAt"], d.get("archivedAt"), store.dumps(d))
             for d in docs])
        lap(f"{len(docs)} customers")
        for body in plan.subscriptions:
            _dispatch("POST", "/api/v1/subscriptions", body)
        lap(f"{len(plan.subscriptions)} subscriptions")
        entity_rows, assignment_rows = [], []
        for g in plan.governed:
            created = clock.iso(clock.now() - g.set_up_ago)
            for item in g.entities:
                doc = governance.entity_doc(item["id"], item["entityTypeId"], item.get("displayName") or None,
                                            {k: v for k, v in (item.get("metadata") or {}).items() if v != ""},
                                            created, created)
                entity_rows.append(governance.entity_row(g.customer_id, doc, g.parents[item["id"]]))
            for level in g.levels:
                for item in level:
                    doc = governance.assignment_doc(
                        str(uuid.UUID(int=ids.getrandbits(128), version=4)), item["entityId"], item.get("featureId"),
                        item.get("currencyId"), item.get("scopeEntityIds") or [], item["usageLimit"], item["cadence"],
                        created, created)
                    assignment_rows.append(governance.assignment_row(g.customer_id, doc))
        c.executemany(governance.ENTITY_INSERT, entity_rows)
        c.executemany(governance.ASSIGNMENT_INSERT, assignment_rows)
        lap(f"{len(entity_rows)} entities and {len(assignment_rows)} assignments")
        for batch in chunks(plan.events, MAX_EVENTS_PER_CALL):
            _dispatch("POST", "/api/v1/events", {"events": list(batch)})
        lap(f"{len(plan.events)} events")
    c.execute("PRAGMA optimize")
    return timings


def seed_bulk(db_path: str, *, customers: int = 10_000, nodes: int = 100_000, governed: int | None = None,
              seed: int = DEFAULT_SEED, log: Log = print) -> dict[str, Any]:
    started = time.monotonic()
    plan = build_plan(customers, nodes, governed=governed, seed=seed)
    log(f"Bulk seed into {db_path}: {len(plan.customers)} customers, {plan.node_count} governance nodes "
        f"over {len(plan.governed)} customers, {plan.assignment_count} budgets")
    timings = apply_direct(plan, db_path, log, id_seed=seed)
    total = round(time.monotonic() - started, 2)
    log(f"Bulk seed done in {total}s")
    return {"seconds": total, "timings": timings, "customers": len(plan.customers), "nodes": plan.node_count,
            "assignments": plan.assignment_count, "governed": [g.customer_id for g in plan.governed]}
