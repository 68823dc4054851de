"""The demo company, built only through the emulator's public REST API.

"Tessellate AI" sells an AI developer platform to ~200 B2B customers: one product,
features of every shape (flags, a configuration number, enums, calculated seats,
meters over raw events), four plans with parent inheritance, two add-ons, varied
subscriptions, promotions, and Governance hierarchies for the largest customers, with
usage spread so that some customers and entities sit near or over their limits, and
dated over the past weeks so that usage history climbs day by day and drops at resets.

Everything goes over HTTP (httpx, one pooled client, a few threads), so the demo is
exactly what a real integration would have produced, and it doubles as a smoke test
of every write endpoint. Randomness is ``random.Random(seed)``: the same seed builds
the same company (ids, names, limits, current usage), only timestamps and server ids
differ (usage history is laid out backwards from the day the seed runs).
"""
from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import httpx

from .periods import add_months

log = logging.getLogger(__name__)

Log = Callable[[str], None]

PRODUCT_ID = "tessellate-platform"
DEFAULT_SEED = 20261121
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_USAGES_PER_CALL = 100
MAX_EVENTS_PER_CALL = 1000
MAX_GOVERNANCE_ITEMS = 100
THREADS = 6
# Expired promotions are granted with an end date this far ahead and simply left to
# lapse: Stigg only grants future end dates, and the demo must not move the clock.
EXPIRING_PROMO_SECONDS = 4.0


# --- a small REST client with retries --------------------------------------------------


class RequestRejected(Exception):
    """The emulator said no (4xx other than 429): retrying would not help."""

    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path} -> {status}: {body[:300]}")
        self.status = status


class ServiceUnavailable(Exception):
    """Still 429/5xx/connection errors after every retry."""


def require_local(base_url: str) -> None:
    """The seed and the simulator only ever write to a local emulator, never to a
    real Stigg account reached by a mistyped URL."""
    host = urlsplit(base_url).hostname or ""
    if host not in LOCAL_HOSTS:
        raise ValueError(f"refusing to talk to {base_url!r}: only 127.0.0.1 is allowed")


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Honour retry-after-ms, then Retry-After (seconds or an HTTP date), like the SDK:
    only when > 0 and ≤ 60 s."""
    raw_ms = resp.headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
            if 0 < value <= 60:
                return value
        except ValueError:
            pass
    raw = resp.headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            value = (parsedate_to_datetime(raw) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return None
    return value if 0 < value <= 60 else None


class RestClient:
    """One pooled httpx client (thread-safe) with retry and backoff on 429, 5xx and
    connection errors, so the seed and the simulator survive injected faults."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, max_retries: int = 8,
                 pool: int = 16, stop: threading.Event | None = None, rng: random.Random | None = None):
        require_local(base_url)
        self.max_retries = max_retries
        self.stop = stop or threading.Event()
        self._rng = rng or random.Random(0)
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"X-API-KEY": api_key, "Accept": "application/json"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    def close(self) -> None:
        self._http.close()

    def _backoff(self, attempt: int) -> float:
        with self._lock:
            jitter = self._rng.random()
        # the SDK's curve: 0.5 s·2^n capped at 8 s, with up to 25 % taken off
        return min(8.0, 0.5 * 2 ** attempt) * (1 - 0.25 * jitter)

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                envelope: bool = False) -> Any:
        """The response's ``data`` (or the whole body with ``envelope``, for paging)."""
        for attempt in range(self.max_retries + 1):
            if self.stop.is_set():
                raise ServiceUnavailable("stopped")
            with self._lock:
                self.requests += 1
            wait: float | None
            try:
                resp = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                wait, reason = self._backoff(attempt), f"{type(exc).__name__}"
            else:
                should_retry = resp.headers.get("x-should-retry")
                transient = resp.status_code == 429 or resp.status_code >= 500
                if resp.is_success:
                    body = resp.json() if resp.content else {}
                    return body if envelope else body.get("data")
                if not transient or should_retry == "false":
                    raise RequestRejected(method, path, resp.status_code, resp.text)
                wait = retry_after_seconds(resp) or self._backoff(attempt)
                reason = str(resp.status_code)
            if attempt == self.max_retries:
                raise ServiceUnavailable(f"{method} {path}: gave up after {attempt + 1} attempts ({reason})")
            with self._lock:
                self.retries += 1
            if self.stop.wait(wait):
                raise ServiceUnavailable("stopped")
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)


def quiet_http_logs() -> None:
    """httpx logs every request at INFO; thousands of seed and traffic calls would bury
    the progress lines (and the emulator's own log when seeding runs inside it)."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- the catalog (shared with the bulk seeder) --------------------------------------------

MONTHLY = {"resetPeriod": "MONTH", "monthlyResetPeriodConfiguration": {"accordingTo": "SubscriptionStart"}}
CALENDAR_MONTHLY = {"resetPeriod": "MONTH", "monthlyResetPeriodConfiguration": {"accordingTo": "StartOfTheMonth"}}


def _event_meter(function: str, event_name: str, field_name: str | None = None) -> dict[str, Any]:
    aggregation: dict[str, Any] = {"function": function}
    if field_name:
        aggregation["field"] = field_name
    return {"aggregation": aggregation,
            "filters": [{"conditions": [{"field": "eventName", "operation": "EQUALS", "value": event_name}]}]}


FEATURES: list[dict[str, Any]] = [
    {"id": "sso", "displayName": "Single sign-on (SAML)", "featureType": "BOOLEAN",
     "description": "SAML/OIDC single sign-on for the workspace"},
    {"id": "audit-log", "displayName": "Audit log", "featureType": "BOOLEAN",
     "description": "Exportable audit trail of every admin action"},
    {"id": "max-projects", "displayName": "Projects", "featureType": "NUMBER", "meterType": "None",
     "featureUnits": "project", "featureUnitsPlural": "projects"},
    {"id": "support-tier", "displayName": "Support tier", "featureType": "ENUM",
     "enumConfiguration": [{"value": "community", "displayName": "Community"},
                           {"value": "standard", "displayName": "Standard (next business day)"},
                           {"value": "priority", "displayName": "Priority (4 h)"},
                           {"value": "dedicated", "displayName": "Dedicated CSM (1 h)"}]},
    {"id": "data-region", "displayName": "Data residency", "featureType": "ENUM",
     "enumConfiguration": [{"value": "us", "displayName": "United States"},
                           {"value": "eu", "displayName": "European Union"},
                           {"value": "apac", "displayName": "Asia-Pacific"}]},
    {"id": "seats", "displayName": "Seats", "featureType": "NUMBER", "meterType": "FLUCTUATING",
     "featureUnits": "seat", "featureUnitsPlural": "seats",
     "description": "Active members, reported by the app with usage SET"},
    {"id": "api-calls", "displayName": "API calls", "featureType": "NUMBER", "meterType": "INCREMENTAL",
     "featureUnits": "call", "featureUnitsPlural": "calls", "meter": _event_meter("COUNT", "api_call")},
    {"id": "ai-tokens", "displayName": "AI tokens", "featureType": "NUMBER", "meterType": "INCREMENTAL",
     "featureUnits": "token", "featureUnitsPlural": "tokens", "meter": _event_meter("SUM", "llm_completion", "tokens")},
    {"id": "monthly-active-users", "displayName": "Monthly active users", "featureType": "NUMBER",
     "meterType": "INCREMENTAL", "featureUnits": "user", "featureUnitsPlural": "users",
     "meter": _event_meter("UNIQUE", "user_active", "userId")},
    {"id": "agent-runs", "displayName": "Agent runs", "featureType": "NUMBER", "meterType": "INCREMENTAL",
     "featureUnits": "run", "featureUnitsPlural": "runs",
     "description": "Autonomous agent executions, reported by the app with usage DELTA"},
]

# (plan id, display name, parent, pricing type, {feature: entitlement values}).
# Children restate a value with behavior Override; features they leave out are inherited.
PLANS: list[tuple[str, str, str | None, str, dict[str, dict[str, Any]]]] = [
    ("free", "Free", None, "FREE", {
        "max-projects": {"usageLimit": 3},
        "support-tier": {"enumValues": ["community"]},
        "data-region": {"enumValues": ["us"]},
        "seats": {"usageLimit": 3},
        "api-calls": {"usageLimit": 500, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 50_000, **MONTHLY},
        "monthly-active-users": {"usageLimit": 50, **CALENDAR_MONTHLY},
        "agent-runs": {"usageLimit": 20, **MONTHLY},
    }),
    ("starter", "Starter", "free", "PAID", {
        "max-projects": {"usageLimit": 10},
        "support-tier": {"enumValues": ["standard"]},
        "data-region": {"enumValues": ["us", "eu"]},
        "seats": {"usageLimit": 10},
        "api-calls": {"usageLimit": 5_000, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 1_000_000, **MONTHLY},
        "monthly-active-users": {"usageLimit": 500, **CALENDAR_MONTHLY},
        "agent-runs": {"usageLimit": 300, **MONTHLY},
    }),
    ("pro", "Pro", "starter", "PAID", {
        "audit-log": {},
        "max-projects": {"usageLimit": 50},
        "support-tier": {"enumValues": ["priority"]},
        "seats": {"usageLimit": 50},
        "api-calls": {"usageLimit": 25_000, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 10_000_000, **MONTHLY},
        "monthly-active-users": {"usageLimit": 5_000, **CALENDAR_MONTHLY},
        "agent-runs": {"usageLimit": 3_000, **MONTHLY},
    }),
    ("enterprise", "Enterprise", "pro", "CUSTOM", {
        "sso": {},
        "max-projects": {"hasUnlimitedUsage": True},
        "support-tier": {"enumValues": ["dedicated"]},
        "data-region": {"enumValues": ["us", "eu", "apac"]},
        "seats": {"usageLimit": 500},
        "api-calls": {"usageLimit": 100_000, **CALENDAR_MONTHLY},
        "ai-tokens": {"usageLimit": 100_000_000, **MONTHLY},
        "monthly-active-users": {"hasUnlimitedUsage": True, **CALENDAR_MONTHLY},
        "agent-runs": {"hasUnlimitedUsage": True, **MONTHLY},
    }),
]
PLAN_IDS = [p[0] for p in PLANS]

# (add-on id, display name, max quantity, {feature: values per unit})
ADDONS: list[tuple[str, str, int, dict[str, dict[str, Any]]]] = [
    ("extra-seats", "Extra seats (pack of 10)", 50, {"seats": {"usageLimit": 10}}),
    ("extra-ai-tokens", "Extra AI tokens (5M / month)", 20, {"ai-tokens": {"usageLimit": 5_000_000, **MONTHLY}}),
]

ENTITY_TYPES: list[dict[str, Any]] = [
    {"id": "org", "displayName": "Organization", "attributionKeys": [], "description": "The customer's tenant root"},
    {"id": "department", "displayName": "Department", "attributionKeys": []},
    {"id": "team", "displayName": "Team", "attributionKeys": ["teamId"]},
    {"id": "user", "displayName": "User", "attributionKeys": ["userId"]},
    {"id": "agent", "displayName": "AI agent", "attributionKeys": ["agentId"]},
    {"id": "model", "displayName": "LLM model", "attributionKeys": ["model"],
     "description": "Used as a budget scope: spend on one model"},
]


def catalog_calls() -> list[list[tuple[str, str, dict[str, Any]]]]:
    """The catalog as ordered stages of REST calls; calls inside a stage are
    independent (parents come in earlier stages). Shared with the bulk seeder so both
    build the catalog through the same endpoint code."""
    stages: list[list[tuple[str, str, dict[str, Any]]]] = [[("POST", "/api/v1/products", {
        "id": PRODUCT_ID, "displayName": "Tessellate Platform",
        "description": "AI developer platform: projects, APIs, LLM gateway and agents"})]]
    stages.append([("POST", "/api/v1/features", dict(f)) for f in FEATURES])
    paid_addons = [a[0] for a in ADDONS]
    for plan_id, name, parent, pricing, _ in PLANS:
        body: dict[str, Any] = {"id": plan_id, "displayName": name, "productId": PRODUCT_ID,
                                "pricingType": pricing, "status": "PUBLISHED",
                                "description": f"The {name} plan"}
        if parent:
            body["parentPlanId"] = parent
        if plan_id != "free":
            body["compatibleAddonIds"] = paid_addons
        stages.append([("POST", "/api/v1/plans", body)])
    stages.append([
        ("POST", "/api/v1/addons", {"id": a, "displayName": n, "productId": PRODUCT_ID, "pricingType": "PAID",
                                    "status": "PUBLISHED", "maxQuantity": q})
        for a, n, q, _ in ADDONS
    ])
    entitlement_calls = []
    for plan_id, _, parent, _, values in PLANS:
        items = [{"type": "FEATURE", "id": fid, "behavior": "Override" if parent else "Increment", **v}
                 for fid, v in values.items()]
        entitlement_calls.append(("POST", f"/api/v1/plans/{plan_id}/entitlements", {"entitlements": items}))
    for addon_id, _, _, values in ADDONS:
        items = [{"type": "FEATURE", "id": fid, "behavior": "Increment", **v} for fid, v in values.items()]
        entitlement_calls.append(("POST", f"/api/v1/addons/{addon_id}/entitlements", {"entitlements": items}))
    stages.append(entitlement_calls)
    stages.append([("PUT", "/api/v1-beta/entity-types", {"types": ENTITY_TYPES})])
    return stages


def effective_plan_limits(plan_id: str) -> dict[str, float | None]:
    """Numeric limits of a plan after inheritance (None = unlimited); used to aim
    usage at a chosen utilization. Mirrors the Override behaviour used above."""
    by_id = {p[0]: p for p in PLANS}
    chain = []
    current: str | None = plan_id
    while current:
        chain.append(by_id[current])
        current = by_id[current][2]
    limits: dict[str, float | None] = {}
    for _, _, _, _, values in reversed(chain):
        for fid, v in values.items():
            if v.get("hasUnlimitedUsage"):
                limits[fid] = None
            elif "usageLimit" in v:
                limits[fid] = v["usageLimit"]
    return limits


# --- the customers ---------------------------------------------------------------------

FIRST_NAMES = [
    "Maria", "James", "Aisha", "Wei", "Sofia", "Liam", "Priya", "Mateo", "Yuki", "Olivia", "Noah", "Fatima",
    "Lucas", "Chloe", "Arjun", "Emma", "Diego", "Hana", "Ethan", "Zara", "Jonas", "Amara", "Felix", "Nina",
    "Omar", "Ines", "Kai", "Leila", "Ravi", "Elena", "Samuel", "Mei", "Tomás", "Grace", "Anton", "Ivy",
]
LAST_NAMES = [
    "Garcia", "Smith", "Khan", "Chen", "Rossi", "Murphy", "Patel", "Fernández", "Tanaka", "Johnson", "Müller",
    "Okafor", "Silva", "Dubois", "Sharma", "Nielsen", "Lopez", "Kim", "Brown", "Haddad", "Novak", "Mensah",
    "Schmidt", "Ivanova", "Costa", "Nakamura", "Rahman", "Bianchi", "Andersson", "O'Brien",
]
NAME_HEADS = [
    "Blue", "North", "Silver", "Bright", "Quantum", "Cedar", "Atlas", "Nimbus", "Vertex", "Lumen", "Harbor",
    "Summit", "Crimson", "Evergreen", "Polar", "Iron", "Golden", "Swift", "Orbit", "Pine", "Coral", "Granite",
    "Hollow", "Maple", "Nova", "Onyx", "Prism", "Sage", "Tidal", "Urban", "Velvet", "Willow", "Zephyr", "Amber",
]
NAME_TAILS = ["wind", "stone", "field", "bridge", "wave", "peak", "forge", "light", "path", "gate", "leaf",
              "river", "cloud", "spark", "line", "point", "works", "scale"]
NAME_KINDS = ["Labs", "Analytics", "AI", "Systems", "Health", "Logistics", "Robotics", "Software", "Bank",
              "Media", "Energy", "Studios", "Security", "Insights", "Capital", "Retail", "Bio", "Mobility"]
INDUSTRIES = {"Health": "healthcare", "Bank": "fintech", "Capital": "fintech", "Bio": "life-sciences",
              "Logistics": "logistics", "Retail": "e-commerce", "Media": "media", "Energy": "energy",
              "Mobility": "automotive", "Security": "cybersecurity"}
REGIONS = [("us", "usd", "America/New_York"), ("us", "usd", "America/Los_Angeles"), ("eu", "eur", "Europe/Berlin"),
           ("eu", "eur", "Europe/Paris"), ("eu", "gbp", "Europe/London"), ("apac", "usd", "Asia/Singapore"),
           ("apac", "usd", "Asia/Tokyo")]
DEPARTMENTS = ["engineering", "data-science", "support", "marketing", "finance", "product"]
TEAMS = {
    "engineering": ["platform", "payments", "mobile", "infra", "search"],
    "data-science": ["ml-research", "forecasting", "nlp"],
    "support": ["tier-1", "tier-2", "knowledge-base"],
    "marketing": ["growth", "content", "brand"],
    "finance": ["fp-and-a", "procurement"],
    "product": ["design", "research", "pm"],
}
AGENT_KINDS = ["code-reviewer", "triage-bot", "sql-copilot", "doc-writer", "test-generator", "support-agent",
               "forecast-agent", "lead-scorer"]
MODELS = ["gpt-4o", "claude-sonnet", "llama-3-70b"]


@dataclass
class CustomerSpec:
    id: str
    name: str
    email: str
    metadata: dict[str, str]
    currency: str
    timezone: str
    employees: int
    # subscription history, oldest first: (plan, addons, trial, days ago started)
    history: list[tuple[str, list[dict[str, Any]], bool, int]] = field(default_factory=list)
    cancel_last: bool = False
    archived: bool = False
    pressure: str = "normal"  # idle | normal | near | over: how close usage sits to limits

    @property
    def plan(self) -> str | None:
        return None if not self.history or self.cancel_last else self.history[-1][0]

    @property
    def addons(self) -> list[dict[str, Any]]:
        return [] if not self.history or self.cancel_last else self.history[-1][1]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-").replace("--", "-")


def build_customers(rng: random.Random, count: int) -> list[CustomerSpec]:
    specs: list[CustomerSpec] = []
    seen: set[str] = set()
    while len(specs) < count:
        kind = rng.choice(NAME_KINDS)
        name = f"{rng.choice(NAME_HEADS)}{rng.choice(NAME_TAILS)} {kind}"
        slug = _slug(name)
        if slug in seen:
            continue
        seen.add(slug)
        region, currency, tz = rng.choice(REGIONS)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = slug.replace("-", "") + rng.choice([".com", ".io", ".ai", ".co"])
        local = _slug(f"{first}.{last}").replace("-", ".").replace("..", ".")
        roll = rng.random()
        plan = "free" if roll < 0.34 else "starter" if roll < 0.64 else "pro" if roll < 0.88 else "enterprise"
        employees = {"free": rng.randint(2, 15), "starter": rng.randint(8, 60), "pro": rng.randint(40, 400),
                     "enterprise": rng.randint(400, 8000)}[plan]
        spec = CustomerSpec(
            id=slug, name=name, email=f"{local}@{domain}",
            metadata={"industry": INDUSTRIES.get(kind, "software"), "region": region,
                      "segment": {"free": "self-serve", "starter": "smb", "pro": "mid-market",
                                  "enterprise": "enterprise"}[plan],
                      "accountOwner": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                      "employees": str(employees)},
            currency=currency, timezone=tz, employees=employees,
        )
        started = rng.randint(20, 700)
        if plan in ("pro", "enterprise") and rng.random() < 0.35:
            # upgraded customers carry history: the old subscription reads CANCELED
            spec.history.append(("starter", [], False, started))
            started = rng.randint(3, max(4, started - 1))
        addons: list[dict[str, Any]] = []
        if plan != "free" and rng.random() < 0.22:
            addons.append({"id": "extra-seats", "quantity": rng.choice([1, 1, 2, 3, 5])})
        if plan in ("pro", "enterprise") and rng.random() < 0.25:
            addons.append({"id": "extra-ai-tokens", "quantity": rng.choice([1, 2, 4])})
        trial = plan == "pro" and rng.random() < 0.3
        spec.history.append((plan, addons, trial, rng.randint(1, 12) if trial else started))
        p = rng.random()
        spec.pressure = "idle" if p < 0.12 else "near" if p < 0.34 else "over" if p < 0.46 else "normal"
        specs.append(spec)
    # a few churned customers (last subscription canceled) and a few brand-new
    # sign-ups with no subscription yet, so NoActiveSubscription shows up too
    for spec in rng.sample([s for s in specs if s.history[-1][0] in ("free", "starter")], 12):
        spec.cancel_last = True
    fresh = rng.sample([s for s in specs if not s.cancel_last and s.history[-1][0] == "free"], 4)
    for spec in fresh:
        spec.history = []
    archivable = [s for s in specs if s.cancel_last] + [s for s in specs if s.plan == "free"]
    for spec in archivable[:3] + archivable[-2:]:
        spec.archived = True
    return specs


# --- governance hierarchies ---------------------------------------------------------------


@dataclass
class Hierarchy:
    customer_id: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    # assignments grouped by depth, so a parent is always placed before its children
    assignments: list[list[dict[str, Any]]] = field(default_factory=lambda: [[], [], [], [], []])
    users: list[tuple[str, str, str]] = field(default_factory=list)  # (userId, teamId, budget)
    agents: list[tuple[str, str]] = field(default_factory=list)  # (agentId, teamId)
    budgets: dict[tuple[str, str], float] = field(default_factory=dict)  # (entity, feature) -> limit


def build_hierarchy(rng: random.Random, spec: CustomerSpec) -> Hierarchy:
    """org → departments → teams → users and agents (depth 4), plus model entities
    that stand alone and serve as budget scopes."""
    h = Hierarchy(spec.id)
    org = f"org-{spec.id}"
    h.entities.append({"id": org, "entityTypeId": "org", "displayName": spec.name,
                       "metadata": {"costCenter": "CC-100"}})
    for model in MODELS:
        h.entities.append({"id": model, "entityTypeId": "model", "displayName": model,
                           "metadata": {"provider": {"gpt-4o": "openai", "claude-sonnet": "anthropic",
                                                     "llama-3-70b": "meta"}[model]}})
        h.assignments[0].append({"entityId": model, "featureId": "ai-tokens", "usageLimit": 30_000_000,
                                 "cadence": "P1M", "parentId": None})
    size = min(1.0, spec.employees / 4000)
    n_users_total = 0
    user_budget = rng.choice([200_000, 300_000, 500_000])
    depts = rng.sample(DEPARTMENTS, 3 + int(size * 2.5))
    org_budget = 0.0
    for dept in depts:
        dept_id = f"dept-{dept}"
        h.entities.append({"id": dept_id, "entityTypeId": "department",
                           "displayName": dept.replace("-", " ").title(), "metadata": {"vp": rng.choice(LAST_NAMES)}})
        dept_budget = 0.0
        for team in rng.sample(TEAMS[dept], min(len(TEAMS[dept]), 2 + int(size * 2))):
            team_id = f"team-{team}"
            h.entities.append({"id": team_id, "entityTypeId": "team",
                               "displayName": team.replace("-", " ").title(), "metadata": {"department": dept}})
            team_budget = 0.0
            for _ in range(rng.randint(3, 4 + int(size * 6))):
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                user_id = f"{_slug(first)}.{_slug(last)}"
                if any(e["id"] == user_id for e in h.entities):
                    user_id = f"{user_id}{n_users_total}"
                n_users_total += 1
                h.entities.append({"id": user_id, "entityTypeId": "user", "displayName": f"{first} {last}",
                                   "metadata": {"email": f"{user_id}@{spec.email.split('@')[1]}"}})
                budget = float(user_budget * rng.choice([1, 1, 1, 2]))
                h.assignments[4].append({"entityId": user_id, "featureId": "ai-tokens", "usageLimit": budget,
                                         "cadence": "P1M", "parentId": team_id})
                h.budgets[(user_id, "ai-tokens")] = budget
                h.users.append((user_id, team_id, dept_id))
                team_budget += budget
            for _ in range(rng.randint(0, 2)):
                agent_id = f"agent-{rng.choice(AGENT_KINDS)}-{team}"
                if any(e["id"] == agent_id for e in h.entities):
                    continue
                h.entities.append({"id": agent_id, "entityTypeId": "agent",
                                   "displayName": agent_id[6:].replace("-", " ").title(),
                                   "metadata": {"owner": team_id}})
                runs = float(rng.choice([50, 100, 200]))
                h.assignments[4].append({"entityId": agent_id, "featureId": "agent-runs", "usageLimit": runs,
                                         "cadence": "P1D", "parentId": team_id})
                h.assignments[4].append({"entityId": agent_id, "featureId": "ai-tokens",
                                         "usageLimit": 1_000_000.0, "cadence": "P1M"})
                h.budgets[(agent_id, "agent-runs")] = runs
                h.budgets[(agent_id, "ai-tokens")] = 1_000_000.0
                h.agents.append((agent_id, team_id))
                team_budget += 1_000_000
            # parents get less than the sum of their children: budgets are shared pools
            team_limit = round(team_budget * 0.75, -3)
            h.assignments[3].append({"entityId": team_id, "featureId": "ai-tokens", "usageLimit": team_limit,
                                     "cadence": "P1M", "parentId": dept_id})
            h.assignments[3].append({"entityId": team_id, "featureId": "api-calls",
                                     "usageLimit": float(rng.choice([40, 60, 100])), "cadence": "P1W"})
            h.budgets[(team_id, "ai-tokens")] = team_limit
            dept_budget += team_limit
        dept_limit = round(dept_budget * 0.8, -3)
        h.assignments[2].append({"entityId": dept_id, "featureId": "ai-tokens", "usageLimit": dept_limit,
                                 "cadence": "P1M", "parentId": org})
        # a scoped budget: this department's spend on the most expensive model only
        h.assignments[2].append({"entityId": dept_id, "featureId": "ai-tokens", "scopeEntityIds": ["gpt-4o"],
                                 "usageLimit": round(dept_limit * 0.4, -3), "cadence": "P1W"})
        org_budget += dept_limit
    org_limit = round(org_budget * 0.85, -3)
    h.assignments[1].append({"entityId": org, "featureId": "ai-tokens", "usageLimit": org_limit, "cadence": "P1M",
                             "parentId": None})
    for model in MODELS[:2]:
        h.assignments[1].append({"entityId": org, "featureId": "ai-tokens", "scopeEntityIds": [model],
                                 "usageLimit": round(org_limit * 0.5, -3), "cadence": "P1M"})
    h.assignments[1].append({"entityId": org, "featureId": "agent-runs", "usageLimit": None, "cadence": "P1D"})
    h.assignments[1].append({"entityId": org, "featureId": "api-calls", "usageLimit": 20_000.0, "cadence": "P1W"})
    return h


# --- the seed ---------------------------------------------------------------------------------


def _subscription_body(spec: CustomerSpec, plan: str, addons: list[dict[str, Any]], trial: bool,
                       start: datetime, now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"customerId": spec.id, "planId": plan, "billingPeriod": "MONTHLY",
                            "startDate": _iso(start), "metadata": {"source": "demo-seed"}}
    if addons:
        body["addons"] = addons
    if trial:
        body["trialOverrideConfiguration"] = {"isTrial": True, "trialEndBehavior": "CONVERT_TO_PAID",
                                              "trialEndDate": _iso(start + timedelta(days=14))}
    return body


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


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
        self.errors: list[str] = []

    def run(self, step: str, jobs: Iterable[Callable[[], Any]]) -> list[Any]:
        started = time.monotonic()
        futures = [self.pool.submit(job) for job in jobs]
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
                subscribed_at[spec.id] = _parse_time(started) or start
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
                {"featureId": "ai-tokens", "period": "custom", "customEndDate": _iso(expire_at),
                 "usageLimit": 20_000_000, "resetPeriod": "MONTH",
                 "monthlyResetPeriodConfiguration": {"accordingTo": "SubscriptionStart"}}]))
        active_candidates = [s for s in specs if s.plan in ("free", "starter", "pro") and s not in expiring]
        for spec in rng.sample(active_candidates, 24):
            kind = rng.choice(["tokens", "sso", "seats", "support", "runs"])
            item: dict[str, Any]
            if kind == "tokens":
                item = {"featureId": "ai-tokens", "period": "1 month", "usageLimit": 25_000_000,
                        "resetPeriod": "MONTH", "monthlyResetPeriodConfiguration": {"accordingTo": "SubscriptionStart"}}
            elif kind == "sso":
                item = {"featureId": "sso", "period": "lifetime"}
            elif kind == "seats":
                item = {"featureId": "seats", "period": "custom", "usageLimit": 75,
                        "customEndDate": _iso(now + timedelta(days=rng.randint(5, 60)))}
            elif kind == "support":
                item = {"featureId": "support-tier", "period": "6 month", "enumValues": ["priority", "dedicated"]}
            else:
                item = {"featureId": "agent-runs", "period": "1 week", "hasUnlimitedUsage": True}
            items = [item]
            if rng.random() < 0.3:
                items.append({"featureId": "audit-log", "period": "1 year"})
            promo_jobs.append(lambda s=spec, items=items: grant(s.id, items))
        runner.run("promotional entitlements", promo_jobs)

        # Governance for the largest customers with a live subscription.
        largest = sorted([s for s in specs if s.plan in ("enterprise", "pro") and not s.archived],
                         key=lambda s: -s.employees)[:governed]
        hierarchies = [build_hierarchy(rng, s) for s in largest]

        def place(h: Hierarchy) -> None:
            for batch in chunks(h.entities, MAX_GOVERNANCE_ITEMS):
                api.put(f"/api/v1-beta/customers/{h.customer_id}/entities", {"entities": list(batch)})
            for level in h.assignments:
                for batch in chunks(level, MAX_GOVERNANCE_ITEMS):
                    api.put(f"/api/v1-beta/customers/{h.customer_id}/assignments", {"assignments": list(batch)})

        runner.run("governance hierarchies", [(lambda h=h: place(h)) for h in hierarchies])

        # Each customer's reset periods as the emulator computes them (plan, add-ons and
        # promotions decide the winner, and so the anchor), so usage can be dated inside them.
        using = [s for s in specs if s.plan is not None and not s.archived and s.id in subscribed_at]
        found = runner.run("usage periods", [
            (lambda s=s: (s.id, _read_timeline(api, s.id, subscribed_at[s.id]))) for s in using])
        timelines = dict(found)
        for spec in expiring:
            # The expiring promotion wins ai-tokens now but lapses before the seed ends; then
            # the plan's period applies, which every plan shares with agent-runs.
            periods = timelines[spec.id].periods if spec.id in timelines else {}
            if "ai-tokens" in periods and "agent-runs" in periods:
                periods["ai-tokens"] = periods["agent-runs"]

        usages, events = _plan_usage(rng, specs, hierarchies, now)
        usages, events = _date_usage(usages, events, timelines, now, seed)
        runner.run("usage reports", [
            (lambda b=b: api.post("/api/v1/usage", {"usages": list(b)})) for b in _usage_batches(usages)])
        runner.run("events", [
            (lambda b=b: api.post("/api/v1/events", {"events": list(b)})) for b in chunks(events, MAX_EVENTS_PER_CALL)])

        # archive last: an archived customer keeps its history but blocks new subscriptions
        runner.run("archive customers", [
            (lambda s=s: api.post(f"/api/v1/customers/{s.id}/archive")) for s in specs if s.archived])

        # Let the short promotions lapse naturally (the clock is never moved by the demo).
        remaining = (expire_at - _emulator_now(api)).total_seconds()
        if remaining > 0:
            time.sleep(remaining + 0.2)
        summary = {
            "customers": len(specs), "governed": [h.customer_id for h in hierarchies],
            "entities": sum(len(h.entities) for h in hierarchies),
            "assignments": sum(len(level) for h in hierarchies for level in h.assignments),
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
        api.close()


def rng_offset(customer_id: str) -> int:
    """A stable per-customer minute offset so start dates are not all on the hour."""
    return sum(map(ord, customer_id)) % 600


# --- usage -------------------------------------------------------------------------------------

UTILIZATION = {"idle": (0.0, 0.05), "normal": (0.1, 0.65), "near": (0.8, 0.97), "over": (1.03, 1.35)}


def _target(rng: random.Random, pressure: str, limit: float | None, fallback: float) -> float:
    low, high = UTILIZATION[pressure]
    base = limit if limit else fallback
    return base * rng.uniform(low, high)


def _plan_usage(rng: random.Random, specs: list[CustomerSpec], hierarchies: list[Hierarchy],
                now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Usage reports and raw events aimed at a chosen utilization per customer, for the
    current period and undated; ``_date_usage`` then spreads them over time."""
    usages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    governed = {h.customer_id: h for h in hierarchies}
    counter = 0

    def key() -> str:
        nonlocal counter
        counter += 1
        return f"demo-{counter:07d}"

    for spec in specs:
        if spec.plan is None or spec.archived:
            continue
        limits = effective_plan_limits(spec.plan)
        extra_seats = sum(a["quantity"] * 10 for a in spec.addons if a["id"] == "extra-seats")
        extra_tokens = sum(a["quantity"] * 5_000_000 for a in spec.addons if a["id"] == "extra-ai-tokens")
        seat_limit = (limits.get("seats") or 0) + extra_seats
        seats = round(_target(rng, spec.pressure, seat_limit, 10))
        usages.append({"customerId": spec.id, "featureId": "seats", "value": max(1, seats),
                       "updateBehavior": "SET", "idempotencyKey": key()})
        h = governed.get(spec.id)
        if h is not None:
            _governed_usage(rng, h, usages, events, key)
            continue
        # API calls are counted one event each, so only small limits are pushed close.
        call_limit = limits.get("api-calls") or 0
        calls = round(_target(rng, spec.pressure, call_limit, 500)) if call_limit <= 500 \
            else rng.randint(20, 150)
        mau_limit = limits.get("monthly-active-users")
        users = round(_target(rng, spec.pressure, mau_limit, 50)) if mau_limit and mau_limit <= 50 \
            else rng.randint(5, 120)
        user_ids = [f"user-{i:04d}" for i in range(max(1, users))]
        for _ in range(calls):
            events.append({"customerId": spec.id, "eventName": "api_call", "idempotencyKey": key(),
                           "dimensions": {"userId": rng.choice(user_ids), "endpoint": rng.choice(
                               ["/v1/search", "/v1/chat", "/v1/embed", "/v1/projects"])}})
        for uid in user_ids:
            events.append({"customerId": spec.id, "eventName": "user_active", "idempotencyKey": key(),
                           "dimensions": {"userId": uid}})
        token_limit = (limits.get("ai-tokens") or 0) + extra_tokens
        tokens = _target(rng, spec.pressure, token_limit, 1_000_000)
        n = rng.randint(5, 25)
        for _ in range(n):
            events.append({"customerId": spec.id, "eventName": "llm_completion", "idempotencyKey": key(),
                           "dimensions": {"tokens": max(1, round(tokens / n)), "model": rng.choice(MODELS),
                                          "userId": rng.choice(user_ids)}})
        run_limit = limits.get("agent-runs")
        runs = round(_target(rng, spec.pressure, run_limit, 200))
        if runs:
            usages.append({"customerId": spec.id, "featureId": "agent-runs", "value": runs,
                           "updateBehavior": "DELTA", "idempotencyKey": key()})
    return usages, events


def _governed_usage(rng: random.Random, h: Hierarchy, usages: list[dict[str, Any]],
                    events: list[dict[str, Any]], key: Callable[[], str]) -> None:
    """Attributed usage: each user and agent gets its own pressure, so the tree has
    nodes at every utilization (and, through roll-up, some parents over budget)."""
    for user_id, team_id, _ in h.users:
        pressure = rng.choices(["idle", "normal", "near", "over"], [10, 55, 22, 13])[0]
        tokens = _target(rng, pressure, h.budgets[(user_id, "ai-tokens")], 100_000)
        n = rng.randint(2, 6)
        # heavy users lean on the expensive model, so the scoped budgets fill up too
        model_weights = [3, 2, 1] if pressure in ("near", "over") else [1, 2, 2]
        for _ in range(n):
            events.append({"customerId": h.customer_id, "eventName": "llm_completion", "idempotencyKey": key(),
                           "dimensions": {"tokens": max(1, round(tokens / n)), "userId": user_id,
                                          "model": rng.choices(MODELS, model_weights)[0]}})
        for _ in range(rng.randint(1, 12)):
            events.append({"customerId": h.customer_id, "eventName": "api_call", "idempotencyKey": key(),
                           "dimensions": {"userId": user_id, "teamId": team_id, "endpoint": "/v1/chat"}})
        events.append({"customerId": h.customer_id, "eventName": "user_active", "idempotencyKey": key(),
                       "dimensions": {"userId": user_id}})
    for agent_id, team_id in h.agents:
        pressure = rng.choices(["normal", "near", "over"], [50, 30, 20])[0]
        runs = round(_target(rng, pressure, h.budgets[(agent_id, "agent-runs")], 100))
        if runs:
            usages.append({"customerId": h.customer_id, "featureId": "agent-runs", "value": runs,
                           "updateBehavior": "DELTA", "idempotencyKey": key(),
                           "dimensions": {"agentId": agent_id, "teamId": team_id}})
        tokens = _target(rng, pressure, h.budgets[(agent_id, "ai-tokens")], 100_000)
        for _ in range(3):
            events.append({"customerId": h.customer_id, "eventName": "llm_completion", "idempotencyKey": key(),
                           "dimensions": {"tokens": max(1, round(tokens / 3)), "agentId": agent_id,
                                          "model": rng.choice(MODELS)}})


# --- usage over time ------------------------------------------------------------------------------
#
# The amounts above are what each customer has used so far in its current period. Sent
# undated, all of it would land on today, and the usage history (daily points of in-period
# usage) would read zero for weeks and then jump. So each customer's usage is dated:
# the current period's amounts are spread over the days since that period started
# (periods differ per customer: they are anchored to its subscription or to the calendar
# month), and every earlier period inside the charted range gets usage of its own,
# dated there, so the history climbs day by day and drops at each reset.
#
# Governance budgets are created by this seed moments before the usage, with windows
# anchored at their creation; the emulator counts usage dated earlier in a budget's first
# window (emulator/periods.py: an instant before the anchor maps to the first window).
# So attributed usage keeps its budgets where _governed_usage aimed them, whatever its
# date. Earlier periods' usage carries only what its meter reads (no userId on an API
# call, no model on a completion): it reaches no budget, and an event without
# attribution dimensions costs the emulator half as much to ingest.

HISTORY_DAYS = 62  # what the dashboard charts (settings.USAGE_HISTORY_DAYS)
FRESH_PERIOD = timedelta(hours=1)  # a period this young (a promotion just granted): server time
MARGIN = timedelta(minutes=1)  # dated usage stays this far before now
WEEKEND = 0.4  # a weekend day carries this share of a weekday's activity
# Divisible usage (tokens of completions, runs of DELTA reports) is split into pieces, about
# this many a day: events are cheap to ingest, usage reports (each one re-evaluates the
# entitlement) about five times dearer.
PIECES_PER_DAY = {"event": 1.0, "report": 0.25}
EARLIER_PIECES_PER_DAY = {"event": 0.4, "report": 0.15}
MAX_PIECES = 6  # one current amount is split into no more than this many pieces
EARLIER_PERIODS = 3  # at most this many periods before the current one
METERED_EVENTS = {f["meter"]["filters"][0]["conditions"][0]["value"]: f for f in FEATURES if f.get("meter")}
FIXED_STEPS = {"WEEK": timedelta(weeks=1), "DAY": timedelta(days=1), "HOUR": timedelta(hours=1)}


@dataclass
class Period:
    """A metered entitlement's reset schedule, as the customer's entitlements report it."""

    start: datetime | None  # usagePeriodStart
    reset: str | None  # None: usage never resets, it counts whenever it happened
    anchor: datetime | None


@dataclass
class Timeline:
    since: datetime  # the current subscription's start: no usage is dated before it
    periods: dict[str, Period] = field(default_factory=dict)


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def _read_timeline(api: RestClient, customer_id: str, since: datetime) -> Timeline:
    data = api.get(f"/api/v1/customers/{customer_id}/entitlements") or {}
    timeline = Timeline(since)
    for ent in data.get("entitlements") or []:
        feature_id = (ent.get("feature") or {}).get("id")
        if ent.get("type") == "FEATURE" and feature_id and ent.get("currentUsage") is not None:
            timeline.periods[feature_id] = Period(_parse_time(ent.get("usagePeriodStart")), ent.get("resetPeriod"),
                                                  _parse_time(ent.get("usagePeriodAnchor")))
    return timeline


def _period_before(period: Period, start: datetime) -> datetime:
    """Start of the period that ends at ``start``. Month and year steps count from the
    anchor and clamp to short months, as emulator/periods.py does; a calendar-month
    anchor is the current month's first day, and the steps go back from it just the same."""
    if period.reset in ("MONTH", "YEAR"):
        anchor = period.anchor or start
        months = (start.year - anchor.year) * 12 + start.month - anchor.month
        return add_months(anchor, months - (12 if period.reset == "YEAR" else 1))
    return start - FIXED_STEPS.get(period.reset or "", timedelta(days=30))


def _current_window(period: Period | None, since: datetime, horizon: datetime,
                    end: datetime) -> tuple[datetime, datetime] | None:
    """Where this period's usage may be dated, or None to leave it at server time (no
    period read, or one that began moments ago, e.g. at a promotion granted by this seed)."""
    if period is None:
        return None
    if period.reset and period.start:
        start = max(period.start, since)
    else:
        start = max(since, horizon)
    return (start, end) if end - start >= FRESH_PERIOD else None


def _earlier_windows(period: Period, floor: datetime, horizon: datetime) -> list[tuple[datetime, datetime, float]]:
    """(start, end, share) of each earlier period that reaches into the charted range,
    newest first, none of it before ``floor``; ``share`` is the part of the period kept."""
    windows: list[tuple[datetime, datetime, float]] = []
    if not period.reset or period.start is None:
        return windows
    end = period.start
    while end > max(floor, horizon) and len(windows) < EARLIER_PERIODS:
        start = _period_before(period, end)
        if start >= end:
            break
        begins = max(start, floor)
        windows.append((begins, end, (end - begins) / (end - start)))
        end = start
    return windows


class _Days:
    """How activity spreads over [start, end): weekdays busier than weekends and some
    days busier than others; with ``early``, most first sightings come in the first days
    (monthly active users)."""

    def __init__(self, rng: random.Random, start: datetime, end: datetime, *, early: bool = False):
        self.rng = rng
        self.spans: list[tuple[datetime, timedelta]] = []
        self.cum: list[float] = []
        total = 0.0
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            lo, hi = max(day, start), min(day + timedelta(days=1), end)
            if hi > lo:
                weight = (hi - lo) / timedelta(days=1) * (WEEKEND if day.weekday() >= 5 else 1.0)
                weight *= rng.uniform(0.6, 1.4)
                if early:
                    weight *= 0.15 + 0.5 ** (len(self.spans) / 3)
                total += weight
                self.spans.append((lo, hi - lo))
                self.cum.append(total)
            day += timedelta(days=1)

    @property
    def days(self) -> int:
        return len(self.spans)

    def times(self, n: int) -> list[datetime]:
        if n <= 0 or not self.spans:
            return []
        picked = self.rng.choices(self.spans, cum_weights=self.cum, k=n)
        return [lo + length * self.rng.random() for lo, length in picked]


def _split(rng: random.Random, amount: int, pieces: int) -> list[int]:
    """Whole, positive pieces that add up to ``amount`` exactly."""
    pieces = max(1, min(pieces, amount))
    weights = [rng.uniform(0.5, 1.5) for _ in range(pieces)]
    total = sum(weights)
    parts = [int(amount * w / total) for w in weights]
    for i in range(amount - sum(parts)):
        parts[i % pieces] += 1
    return [p for p in parts if p > 0]


def _amount(item: dict[str, Any]) -> int | None:
    """The divisible quantity of an item (tokens of a completion, runs of a DELTA report),
    None for an item that counts as one (an API call, an active user)."""
    if "eventName" in item:
        return item["dimensions"].get("tokens") if item["eventName"] == "llm_completion" else None
    return int(item["value"]) if item.get("updateBehavior") == "DELTA" else None


def _dated(item: dict[str, Any], when: datetime, key: str, *, amount: int | None = None) -> dict[str, Any]:
    """A copy of the item at ``when`` (events: ``timestamp``; usage reports: ``createdAt``)."""
    out = {**item, "idempotencyKey": key}
    if "eventName" in item:
        if amount is not None:
            out["dimensions"] = {**item["dimensions"], "tokens": amount}
        out["timestamp"] = _iso(when)
    else:
        if amount is not None:
            out["value"] = amount
        out["createdAt"] = _iso(when)
    return out


def _bare(item: dict[str, Any], when: datetime, key: str, *, amount: int | None = None,
          user: str | None = None) -> dict[str, Any]:
    """Usage like ``item`` at ``when`` with no dimension but the one its meter reads."""
    if "eventName" not in item:
        return {"customerId": item["customerId"], "featureId": item["featureId"], "value": amount,
                "updateBehavior": item["updateBehavior"], "idempotencyKey": key, "createdAt": _iso(when)}
    field_name = METERED_EVENTS[item["eventName"]]["meter"]["aggregation"].get("field")
    out = {"customerId": item["customerId"], "eventName": item["eventName"], "idempotencyKey": key,
           "timestamp": _iso(when)}
    if field_name:
        out["dimensions"] = {field_name: amount if amount is not None else user}
    return out


def _seat_history(rng: random.Random, item: dict[str, Any], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Seat counts (usage SET) over time, ending at the count the seed aims for. They go
    out in one batch, oldest first: each SET's delta is taken from the one before it."""
    if end - start < FRESH_PERIOD:
        return [item]
    final = int(item["value"])
    first = max(1, round(final * rng.uniform(0.6, 1.0)))
    steps = rng.randint(2, 5)
    times = [start] + sorted(start + (end - start) * rng.random() for _ in range(steps))
    out = []
    for i, when in enumerate(times):
        value = final if i == steps else max(1, round(first + (final - first) * i / steps) + rng.choice([-1, 0, 0, 1]))
        out.append(_dated(item, when, f"{item['idempotencyKey']}-{i}", amount=value))
    return out


def _date_customer(rng: random.Random, timeline: Timeline, events: list[dict[str, Any]], usages: list[dict[str, Any]],
                   horizon: datetime, end: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One customer's usage, dated: the current period's spread over its days, plus usage
    for the earlier periods in the charted range."""
    out_events: list[dict[str, Any]] = []
    out_usages: list[dict[str, Any]] = []
    by_feature: dict[str, list[dict[str, Any]]] = {}
    for item in events + usages:
        if "eventName" not in item:
            by_feature.setdefault(item["featureId"], []).append(item)
        elif item["eventName"] in METERED_EVENTS:
            by_feature.setdefault(METERED_EVENTS[item["eventName"]]["id"], []).append(item)
        else:
            out_events.append(item)
    # the customer's trend: each earlier period used a little less than the one after it
    trend = [rng.uniform(0.5, 0.95)]
    while len(trend) < EARLIER_PERIODS:
        trend.append(trend[-1] * rng.uniform(0.55, 0.95))

    for feature_id, items in by_feature.items():
        sink = out_events if "eventName" in items[0] else out_usages
        if items[0].get("updateBehavior") == "SET":
            for item in items:
                out_usages.extend(_seat_history(rng, item, max(timeline.since, horizon), end))
            continue
        period = timeline.periods.get(feature_id)
        if period is None:
            sink.extend(items)
            continue
        window = _current_window(period, timeline.since, horizon, end)
        early = feature_id == "monthly-active-users"
        divisible = _amount(items[0]) is not None
        kind = "event" if "eventName" in items[0] else "report"
        if window is None:
            sink.extend(items)
        elif divisible:
            days = _Days(rng, *window)
            pieces = min(MAX_PIECES, -(-round(PIECES_PER_DAY[kind] * days.days) // len(items)))
            for item in items:
                parts = _split(rng, _amount(item) or 0, pieces)
                for i, (part, when) in enumerate(zip(parts, days.times(len(parts)))):
                    sink.append(_dated(item, when, f"{item['idempotencyKey']}-{i}", amount=part))
        else:
            days = _Days(rng, *window, early=early)
            sink.extend(_dated(item, when, item["idempotencyKey"]) for item, when in zip(items, days.times(len(items))))

        # One event per API call or active user is the costly part of the seed, so those
        # fill an earlier period only from the charted range's first day; tokens and runs
        # come in a few pieces and fill whole periods.
        floor = timeline.since if divisible else max(timeline.since, horizon)
        for n, (start, stop, share) in enumerate(_earlier_windows(period, floor, horizon)):
            ratio = trend[n] * rng.uniform(0.85, 1.15) * share
            # (a period that began at a promotion granted moments ago ends after ``end``)
            past = _Days(rng, start, min(stop, end), early=early)
            key = f"demo-{feature_id}-p{n + 1}-"
            if divisible:
                total = round(sum(_amount(item) or 0 for item in items) * ratio)
                parts = _split(rng, total, round(EARLIER_PIECES_PER_DAY[kind] * past.days)) if total > 0 else []
                sink.extend(_bare(items[0], when, f"{key}{i}", amount=part)
                            for i, (part, when) in enumerate(zip(parts, past.times(len(parts)))))
            elif early:
                users = sorted({str(item["dimensions"]["userId"]) for item in items})
                active = rng.sample(users, min(len(users), round(len(users) * ratio)))
                sink.extend(_bare(items[0], when, f"{key}{i}", user=user)
                            for i, (user, when) in enumerate(zip(active, past.times(len(active)))))
            else:
                calls = past.times(round(len(items) * ratio))
                sink.extend(_bare(items[0], when, f"{key}{i}") for i, when in enumerate(calls))
    return out_events, out_usages


def _date_usage(usages: list[dict[str, Any]], events: list[dict[str, Any]], timelines: dict[str, Timeline],
                now: datetime, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every customer's usage dated (see above); a customer whose periods could not be
    read keeps its usage undated. Each customer draws from its own generator, so the
    amounts stay the same company whatever day the seed runs on."""
    horizon = (now - timedelta(days=HISTORY_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = now - MARGIN
    events_of: dict[str, list[dict[str, Any]]] = {}
    usages_of: dict[str, list[dict[str, Any]]] = {}
    for item in events:
        events_of.setdefault(item["customerId"], []).append(item)
    for item in usages:
        usages_of.setdefault(item["customerId"], []).append(item)
    out_usages: list[dict[str, Any]] = []
    out_events: list[dict[str, Any]] = []
    for customer_id in dict.fromkeys([*usages_of, *events_of]):
        timeline = timelines.get(customer_id)
        if timeline is None:
            out_events += events_of.get(customer_id, [])
            out_usages += usages_of.get(customer_id, [])
            continue
        rng = random.Random(f"{seed}:{customer_id}")
        dated_events, dated_usages = _date_customer(rng, timeline, events_of.get(customer_id, []),
                                                    usages_of.get(customer_id, []), horizon, end)
        out_events += dated_events
        out_usages += dated_usages
    return out_usages, out_events


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
