"""The demo company's customers and, for the largest, their Governance hierarchies:
names, regions, plans and subscription histories, and org → departments → teams →
users and agents with budgets at every level (budgets that also serve as scopes sit on
model entities). Deterministic for a given ``random.Random``."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

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
# The demo company's customer-success team: each customer's account owner (metadata
# "accountOwner") is one of them, 19-30 accounts each of the 200, as a real team's book
# of business would be; never a name nobody on the team has.
ACCOUNT_OWNERS = ("Maria Garcia", "James Okafor", "Priya Sharma", "Lucas Silva", "Hana Tanaka", "Omar Haddad",
                  "Grace Murphy", "Jonas Andersson")
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
# A governed customer's budgets were all set up this many whole days ago (none a whole
# number of weeks, so weekly windows are a day or more in) plus 1-23 hours: a monthly
# budget is that far into its first window, a weekly one the days left over from whole
# weeks, a daily one those hours.
SET_UP_DAYS = (2, 25)


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


def account_owner(first: str, last: str) -> str:
    """The team member owning an account whose owner was drawn as a first and a last name:
    the draws stay those of a random name (so every later draw of the seed is unchanged),
    mapped onto the team evenly (36 x 30 pairs, 135 to each of the eight)."""
    pair = FIRST_NAMES.index(first) * len(LAST_NAMES) + LAST_NAMES.index(last)
    return ACCOUNT_OWNERS[pair % len(ACCOUNT_OWNERS)]


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
                      "accountOwner": account_owner(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)),
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


def budgets_set_up_ago(rng: random.Random, subscribed_for: timedelta | None = None) -> timedelta:
    """How long ago a governed customer set its budgets up (see SET_UP_DAYS), never before
    its subscription began when that is known."""
    days = rng.choice([d for d in range(SET_UP_DAYS[0], SET_UP_DAYS[1] + 1) if d % 7])
    ago = timedelta(days=days, hours=rng.uniform(1, 23))
    if subscribed_for is not None:
        ago = max(timedelta(0), min(ago, subscribed_for - timedelta(hours=1)))
    return ago


@dataclass
class Hierarchy:
    customer_id: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    # assignments grouped by depth, so a parent is always placed before its children
    assignments: list[list[dict[str, Any]]] = field(default_factory=lambda: [[], [], [], [], []])
    users: list[tuple[str, str, str]] = field(default_factory=list)  # (userId, teamId, budget)
    agents: list[tuple[str, str]] = field(default_factory=list)  # (agentId, teamId)
    budgets: dict[tuple[str, str], float] = field(default_factory=dict)  # (entity, feature) -> limit
    overrun: str | None = None  # the user usage.py leaves over its budget (an unchecked report)


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
