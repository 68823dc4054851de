"""The Redis read model: the only code that touches Redis keys.

Pages read from here and never call Stigg; Celery tasks fetch from Stigg and write here.
Redis is a cache: everything below can be rebuilt from Stigg (``clear()`` then a sweep).

Key layout (every key under one prefix, default ``stiggadmin:rm:``; the Celery broker
shares the Redis server, so nothing here may live outside the prefix):

    catalog                              string  JSON: features and packages, fetched_at
    customer:{id}                        string  JSON CustomerDocument (the customer page)
    customer:{id}:members                set     the ranking members this customer owns ("e|…" / "b|…")
    customers:rows                       hash    id -> JSON CustomerRow fields (list pages)
    customers:order:name[:plan:{p}][:status:{s}]
                                         zset    score 0, member "{name}\\0{id}\\0{search text}" (lex order)
    customers:order:utilization[:plan:{p}][:status:{s}]
                                         zset    member "{id}\\0{search text}" -> highest utilization (-1 when none)
    customers:indexed                    hash    id -> JSON: its plan, status and two order members (to remove them)
    customers:fetched_at                 zset    id -> epoch seconds of last good fetch (0 = never)
    customers:errored                    set     ids whose last refresh failed
    customers:changed                    zset    id -> epoch when "recently changed" expires
    customers:budget_utilization         zset    id -> its governance budget nearest the limit (hot tier)
    rank:entitlements                    zset    "customer|feature" -> utilization
    rank:entitlements:rows               hash    member -> JSON EntitlementRank
    rank:budgets:utilization             zset    "customer|entity|feature-or-currency|scope" -> utilization
    rank:budgets:usage                   zset    same member -> current usage
    rank:budgets:rows                    hash    member -> JSON BudgetRank
    sync:status                          hash    last sweep start/finish/duration/stats
    sync:counters                        hash    errors / rate_limited seen (cumulative)
    customer:{id}:history                string  JSON UsageHistoryDoc: usage over time per metered feature
    lock:customer:{id}                   string  per-customer refresh lock (token, PX expiry)
    lock:sweep, lock:hot                 string  one full sweep, one hot-tier round at a time
    queued:{customer|history}:{id}       string  a refresh of it is queued (PX expiry)

The customers list has one sort order per filter: every customer is in the unfiltered
order, in its plan's, in its status's and in its plan-and-status's ({p} and {s} casefolded,
percent-quoted; a customer without a subscription is only in the unfiltered ones). Its
member there holds its search text (id, name and email, casefolded, \\0 and \\x1f replaced,
each once: see _index_entry), so a search reads one sorted set.

Every customer write is one MULTI/EXEC under WATCH of that customer's own keys, so a reader
never sees half an update and a task may run twice. Reads never write.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, Sequence, TypedDict
from urllib.parse import quote

import redis

from .provenance import Provenance, explain_entitlement
from .stigg import (
    CustomerEntitlements,
    Customer,
    Entitlement,
    Feature,
    GovernanceNode,
    Package,
    Promotion,
    Subscription,
)

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "stiggadmin:rm:"
# Bumped whenever the key layout changes: a sweep that finds another layout empties the
# read model and fills it again from Stigg (it is a cache), instead of reading stale keys.
LAYOUT_VERSION = "3"
# "Recently changed" keeps a customer in the hot tier this long after a webhook or a write.
CHANGED_TTL_SECONDS = 15 * 60
# Customers whose data is older than this count as "behind" in sync status, unless told.
DEFAULT_BEHIND_SECONDS = 15 * 60
DEFAULT_HOT_UTILIZATION = 0.8
# A per-customer refresh lock expires on its own so a crashed worker never blocks a customer.
DEFAULT_LOCK_TTL_SECONDS = 120
QUEUED_TTL_SECONDS = 300  # a queued refresh lost with a dead broker is retried after this
WEBHOOK_DEDUPE_TTL_SECONDS = 7 * 24 * 3600  # Stigg retries a delivery for well under this
# Lower edges of the utilization histogram bins (the last bin is "100 % and over").
HISTOGRAM_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Customers with no metered entitlement sort last by utilization.
NO_UTILIZATION_SCORE = -1.0
ACTIVE_STATUSES = ("ACTIVE", "IN_TRIAL")
_MAX_WATCH_RETRIES = 20

# Customer search, server-side: walk one sort order (its key already narrowed to the plan and
# status filter), keep the members containing the needle, return the total and one page of
# members. Read-only, no temporary keys. Each member carries its search text (_index_entry),
# so one ZRANGE is the only command. Measured at 10,000 customers (bench/bench_read_model.py):
# ~3 ms, two thirds of it loading the members into Lua; a lookup per member (HGET, or HMGET
# per 1,000 ids) cost 15-30 ms, ZSCAN MATCH ~11 ms, and ZRANGE in chunks of 1,000 no less.
# A plain string.find over the whole member is exact (see _index_entry); a needle holding the
# \0 / \x1f that separate the parts never reaches here (customers_page: nothing matches).
# KEYS: order zset. ARGV: needle, offset, limit, reverse.
_SEARCH_CUSTOMERS = r"""
local members
if ARGV[4] == '1' then members = redis.call('zrevrange', KEYS[1], 0, -1)
else members = redis.call('zrange', KEYS[1], 0, -1) end
local needle, first = ARGV[1], tonumber(ARGV[2]) + 1
local last = first + tonumber(ARGV[3]) - 1
local total, page = 0, {}
for _, m in ipairs(members) do
  if string.find(m, needle, 1, true) then
    total = total + 1
    if total >= first and total <= last then page[#page + 1] = m end
  end
end
return {total, page}
"""

# Compare-and-delete: release a lock only if it still holds our token.
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


# --- typed values: the customer document (JSON in Redis; datetimes as ISO strings) ----------


class SourceDoc(TypedDict):
    kind: str  # plan | addon | promotion | override
    id: str
    name: str
    is_granted: bool
    value: float | None
    unlimited: bool
    quantity: int
    enum_values: list[str]
    wins: bool


class ProvenanceDoc(TypedDict):
    label: str  # plan | add-on | plan + add-on | promotion | override | none
    inferred: bool
    sources: list[SourceDoc]


class EntitlementDoc(TypedDict):
    feature_id: str
    feature_name: str
    feature_type: str
    shape: str  # boolean | configuration | metered
    is_granted: bool
    access_denied_reason: str | None
    value: float | None  # configuration number; metered limit (= limit)
    enum_values: list[str]  # configuration enum: the effective values
    enum_display: list[str]  # their display names from the catalog
    usage: float | None
    limit: float | None
    unlimited: bool
    soft_limit: bool
    utilization: float | None
    reset_period: str | None
    period_start: str | None
    period_end: str | None
    valid_until: str | None
    units: str | None
    provenance: ProvenanceDoc


class AddonDoc(TypedDict):
    id: str
    name: str
    quantity: int


class SubscriptionDoc(TypedDict):
    id: str
    plan_id: str
    plan_name: str
    status: str
    active: bool
    resource_id: str | None
    pricing_type: str
    start_date: str
    end_date: str | None
    trial_end_date: str | None
    cancellation_date: str | None
    current_billing_period_end: str | None
    addons: list[AddonDoc]


class PromotionDoc(TypedDict):
    id: str
    feature_id: str
    feature_name: str
    status: str
    period: str
    start_date: str
    end_date: str | None
    usage_limit: float | None
    unlimited: bool
    soft_limit: bool
    enum_values: list[str]
    reset_period: str | None


class GovernanceNodeDoc(TypedDict):
    entity_id: str
    entity_type_id: str
    display_name: str | None
    parent_id: str | None
    feature_id: str | None
    currency_id: str | None
    scope: list[str]
    cadence: str | None
    limit: float | None
    usage: float | None
    utilization: float | None
    period_start: str | None
    period_end: str | None


class UsageSeriesDoc(TypedDict):
    feature_id: str
    points: list[tuple[str, float]]  # (ISO time, cumulative in-period usage), one per day
    resets: list[str]  # ISO times of PERIODIC_RESET / SUBSCRIPTION_CHANGE_RESET markers
    error: str | None  # this feature's history could not be read


class UsageHistoryDoc(TypedDict):
    fetched_at: str
    start: str
    features: dict[str, UsageSeriesDoc]


class ProfileDoc(TypedDict):
    id: str
    name: str | None
    email: str | None
    created_at: str | None
    updated_at: str | None
    archived_at: str | None
    metadata: dict[str, str]


class EntitlementGroups(TypedDict):
    boolean: list[EntitlementDoc]
    configuration: list[EntitlementDoc]
    metered: list[EntitlementDoc]


class PromotionGroups(TypedDict):
    active: list[PromotionDoc]
    expired: list[PromotionDoc]


class CustomerDocument(TypedDict):
    id: str
    profile: ProfileDoc
    subscriptions: list[SubscriptionDoc]
    plan_id: str | None  # the primary subscription's plan (list pages, filters)
    plan_name: str | None
    status: str | None  # the primary subscription's status; None = no subscription
    access_denied_reason: str | None
    entitlements: EntitlementGroups
    promotions: PromotionGroups
    governance_enabled: bool
    governance: list[GovernanceNodeDoc]
    highest_utilization: float | None
    fetched_at: str | None  # None: never fetched successfully
    error: str | None
    error_at: str | None


# --- typed values returned by list / ranking / status reads ----------------------------------


@dataclass(frozen=True)
class CustomerRow:
    id: str
    name: str | None
    email: str | None
    plan_id: str | None
    plan_name: str | None
    status: str | None
    highest_utilization: float | None
    archived: bool
    fetched_at: datetime | None
    error: str | None
    error_at: datetime | None


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    total: int  # matching customers, across every page
    offset: int
    limit: int
    next_offset: int | None
    prev_offset: int | None


@dataclass(frozen=True)
class EntitlementRank:
    customer_id: str
    customer_name: str | None
    feature_id: str
    feature_name: str
    usage: float | None
    limit: float | None
    soft_limit: bool
    utilization: float
    period_end: datetime | None


@dataclass(frozen=True)
class BudgetRank:
    customer_id: str
    customer_name: str | None
    entity_id: str
    entity_name: str | None
    feature_id: str | None
    currency_id: str | None
    scope: tuple[str, ...]
    cadence: str | None
    limit: float | None
    usage: float | None
    utilization: float | None
    period_end: datetime | None


@dataclass(frozen=True)
class HistogramBin:
    lower: float
    upper: float | None  # None: open-ended ("100 % and over")
    label: str
    count: int


@dataclass(frozen=True)
class ThresholdCounts:
    at_80: int  # utilization >= 0.8
    at_100: int  # utilization >= 1.0


@dataclass(frozen=True)
class Catalog:
    features: dict[str, dict[str, Any]]
    packages: dict[str, dict[str, Any]]
    fetched_at: datetime | None


@dataclass(frozen=True)
class SyncStatus:
    last_sweep_started_at: datetime | None
    last_sweep_finished_at: datetime | None
    last_sweep_duration: float | None
    last_sweep_stats: dict[str, Any]
    sweep_running: bool
    customers_total: int
    customers_behind: int
    customers_in_error: int
    errors_seen: int
    rate_limited_seen: int

    @property
    def healthy(self) -> bool:
        """A sweep has finished and no customer's data is older than the stale limit."""
        return self.last_sweep_finished_at is not None and self.customers_behind == 0


@dataclass
class CustomerLock:
    """Held while a refresh runs; ``acquired`` says whether we got it."""

    key: str
    token: str
    acquired: bool = False
    _client: Any = field(default=None, repr=False)

    def release(self) -> bool:
        if not self.acquired:
            return False
        self.acquired = False
        return bool(self._client.eval(_RELEASE_LOCK, 1, self.key, self.token))


# --- shaping one customer (pure) ---------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # Inferred: the client hands out UTC; naive values are taken as UTC, never local time.
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def utilization(usage: float | None, limit: float | None, unlimited: bool) -> float | None:
    """usage / limit, or None when there is no finite positive limit.

    Inferred: a limit of 0 yields None rather than infinity, so one blocked feature does not
    dominate every ranking; the page still shows "0 of 0" from the document."""
    if unlimited or usage is None or limit is None or limit <= 0:
        return None
    return usage / limit


def _shape(feature: Feature | None, ent: Entitlement) -> str:
    feature_type = feature.feature_type if feature else ent.feature_type
    if feature_type == "BOOLEAN":
        return "boolean"
    if feature_type == "ENUM":
        return "configuration"
    if feature is not None:
        return "metered" if feature.metered else "configuration"
    # Inferred: a feature missing from the catalog is metered when Stigg reports usage.
    return "metered" if ent.current_usage is not None else "configuration"


def _provenance_doc(p: Provenance) -> ProvenanceDoc:
    winners = {id(w) for w in p.winners}
    return {
        "label": p.label,
        "inferred": p.inferred,
        "sources": [{
            "kind": s.kind, "id": s.id, "name": s.name, "is_granted": s.is_granted, "value": s.value,
            "unlimited": s.unlimited, "quantity": s.quantity, "enum_values": list(s.enum_values),
            "wins": id(s) in winners,
        } for s in p.sources],
    }


def _entitlement_doc(ent: Entitlement, feature: Feature | None, prov: Provenance) -> EntitlementDoc:
    shape = _shape(feature, ent)
    limit = None if ent.has_unlimited_usage else ent.usage_limit
    usage = ent.current_usage if shape == "metered" else None
    options = {o.value: o.display_name for o in feature.enum_options} if feature else {}
    return {
        "feature_id": ent.feature_id,
        "feature_name": feature.display_name if feature else ent.feature_name,
        "feature_type": feature.feature_type if feature else ent.feature_type,
        "shape": shape,
        "is_granted": ent.is_granted,
        "access_denied_reason": ent.access_denied_reason,
        "value": limit,
        "enum_values": list(prov.enum_values),
        "enum_display": [options.get(v, v) for v in prov.enum_values],
        "usage": usage,
        "limit": limit,
        "unlimited": ent.has_unlimited_usage,
        # The REST entitlement has no soft-limit flag: it comes from the winning source (§5.4).
        "soft_limit": prov.soft_limit,
        "utilization": utilization(usage, limit, ent.has_unlimited_usage) if shape == "metered" else None,
        "reset_period": ent.reset_period or prov.reset_period,
        "period_start": iso(ent.usage_period_start),
        "period_end": iso(ent.usage_period_end),
        "valid_until": iso(ent.valid_until),
        "units": (feature.units_plural or feature.units) if feature else None,
        "provenance": _provenance_doc(prov),
    }


def _primary_subscription(subs: Sequence[Subscription]) -> Subscription | None:
    """The subscription a list row shows: an active one first, else the most recent."""
    if not subs:
        return None
    return sorted(subs, key=lambda s: (s.status in ACTIVE_STATUSES, _epoch(s.start_date)), reverse=True)[0]


def build_snapshot(
    customer: Customer,
    subscriptions: Sequence[Subscription],
    entitlements: CustomerEntitlements,
    promotions: Sequence[Promotion],
    governance: Sequence[GovernanceNode] | None,
    features: Mapping[str, Feature],
    packages: Mapping[str, Package],
    fetched_at: datetime,
) -> CustomerDocument:
    """Shape one customer's Stigg data into the document pages read.

    ``governance`` None means governance is not enabled for the environment.
    """
    names = {f.id: f.display_name for f in features.values()}
    subs_docs: list[SubscriptionDoc] = []
    for s in subscriptions:
        plan = packages.get(s.plan_id)
        subs_docs.append({
            "id": s.id, "plan_id": s.plan_id, "plan_name": plan.display_name if plan else s.plan_id,
            "status": s.status, "active": s.status in ACTIVE_STATUSES, "resource_id": s.resource_id,
            "pricing_type": s.pricing_type, "start_date": iso(s.start_date) or "",
            "end_date": iso(s.end_date), "trial_end_date": iso(s.trial_end_date),
            "cancellation_date": iso(s.cancellation_date),
            "current_billing_period_end": iso(s.current_billing_period_end),
            "addons": [{"id": a.addon_id, "name": packages[a.addon_id].display_name if a.addon_id in packages
                        else a.addon_id, "quantity": a.quantity} for a in s.addons],
        })
    groups: EntitlementGroups = {"boolean": [], "configuration": [], "metered": []}
    for ent in entitlements.entitlements:
        prov = explain_entitlement(ent.feature_id, ent, subscriptions, packages, promotions)
        doc = _entitlement_doc(ent, features.get(ent.feature_id), prov)
        groups[doc["shape"]].append(doc)  # type: ignore[literal-required]
    for group in groups.values():
        group.sort(key=lambda d: d["feature_name"].casefold())
    promo_groups: PromotionGroups = {"active": [], "expired": []}
    for p in promotions:
        pdoc: PromotionDoc = {
            "id": p.id, "feature_id": p.feature_id, "feature_name": names.get(p.feature_id, p.feature_id),
            "status": p.status, "period": p.period, "start_date": iso(p.start_date) or "",
            "end_date": iso(p.end_date), "usage_limit": p.usage_limit, "unlimited": p.has_unlimited_usage,
            "soft_limit": p.has_soft_limit, "enum_values": list(p.enum_values or ()),
            "reset_period": p.reset_period,
        }
        # Paused promotions grant nothing (§6); they are listed with the expired ones.
        promo_groups["active" if p.status == "Active" else "expired"].append(pdoc)
    nodes: list[GovernanceNodeDoc] = []
    for n in governance or ():
        nodes.append({
            "entity_id": n.entity_id, "entity_type_id": n.entity_type_id, "display_name": n.display_name,
            "parent_id": n.parent_id, "feature_id": n.feature_id, "currency_id": n.currency_id,
            "scope": sorted(n.scope_entity_ids), "cadence": n.cadence, "limit": n.usage_limit,
            "usage": n.current_usage,
            "utilization": n.utilization if n.utilization is not None
            else utilization(n.current_usage, n.usage_limit, False),
            "period_start": iso(n.usage_period_start), "period_end": iso(n.usage_period_end),
        })
    utils = [d["utilization"] for d in groups["metered"] if d["utilization"] is not None]
    primary = _primary_subscription(subscriptions)
    primary_plan = packages.get(primary.plan_id) if primary else None
    return {
        "id": customer.id,
        "profile": {
            "id": customer.id, "name": customer.name, "email": customer.email,
            "created_at": iso(customer.created_at), "updated_at": iso(customer.updated_at),
            "archived_at": iso(customer.archived_at), "metadata": dict(customer.metadata),
        },
        "subscriptions": subs_docs,
        "plan_id": primary.plan_id if primary else None,
        "plan_name": (primary_plan.display_name if primary_plan else primary.plan_id) if primary else None,
        "status": primary.status if primary else None,
        "access_denied_reason": entitlements.access_denied_reason,
        "entitlements": groups,
        "promotions": promo_groups,
        "governance_enabled": governance is not None,
        "governance": nodes,
        "highest_utilization": max(utils) if utils else None,
        "fetched_at": iso(fetched_at),
        "error": None,
        "error_at": None,
    }


def _stub_document(customer_id: str) -> CustomerDocument:
    """A customer we know of but never fetched successfully: pages show "never synced"."""
    return {
        "id": customer_id,
        "profile": {"id": customer_id, "name": None, "email": None, "created_at": None,
                    "updated_at": None, "archived_at": None, "metadata": {}},
        "subscriptions": [], "plan_id": None, "plan_name": None, "status": None,
        "access_denied_reason": None,
        "entitlements": {"boolean": [], "configuration": [], "metered": []},
        "promotions": {"active": [], "expired": []},
        "governance_enabled": False, "governance": [], "highest_utilization": None,
        "fetched_at": None, "error": None, "error_at": None,
    }


def budget_member(customer_id: str, node: GovernanceNodeDoc) -> str:
    capability = node["feature_id"] or f"${node['currency_id']}"
    return f"{customer_id}|{node['entity_id']}|{capability}|{','.join(node['scope'])}"


def entitlement_member(customer_id: str, feature_id: str) -> str:
    return f"{customer_id}|{feature_id}"


# --- the read model ------------------------------------------------------------------------------


class ReadModel:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        # decode_responses is not assumed: values are decoded here, so any client works.
        self.r = client
        self.prefix = prefix

    @classmethod
    def from_settings(cls) -> "ReadModel":
        from django.conf import settings

        url = getattr(settings, "READ_MODEL_REDIS_URL", None) or settings.REDIS_URL
        prefix = getattr(settings, "READ_MODEL_PREFIX", DEFAULT_PREFIX)
        return cls(redis.Redis.from_url(url, decode_responses=True), prefix)

    # --- key names: the only place they are spelled ---------------------------------------------

    def _catalog_key(self) -> str:
        return f"{self.prefix}catalog"

    def _customer_key(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{customer_id}"

    def _members_key(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{customer_id}:members"

    def _rows_key(self) -> str:
        return f"{self.prefix}customers:rows"

    def _order_key(self, sort: str, plan: str = "", status: str = "") -> str:
        """The customers in ``sort`` order, only those of ``plan`` and ``status`` when given
        (cleaned values; quoting keeps a ":" in a plan id from reaching the status part)."""
        if sort not in ("name", "utilization"):
            raise ValueError(f"sort by name or utilization, not {sort!r}")
        key = f"{self.prefix}customers:order:{sort}"
        if plan:
            key += f":plan:{quote(plan, safe='')}"
        if status:
            key += f":status:{quote(status, safe='')}"
        return key

    def _indexed_key(self) -> str:
        return f"{self.prefix}customers:indexed"

    def _fetched_at_key(self) -> str:
        return f"{self.prefix}customers:fetched_at"

    def _errored_key(self) -> str:
        return f"{self.prefix}customers:errored"

    def _changed_key(self) -> str:
        return f"{self.prefix}customers:changed"

    def _budget_utilization_key(self) -> str:
        return f"{self.prefix}customers:budget_utilization"

    def _rank_entitlements_key(self) -> str:
        return f"{self.prefix}rank:entitlements"

    def _rank_entitlement_rows_key(self) -> str:
        return f"{self.prefix}rank:entitlements:rows"

    def _rank_budgets_key(self, by: str) -> str:
        if by not in ("utilization", "usage"):
            raise ValueError(f"budgets rank by utilization or usage, not {by!r}")
        return f"{self.prefix}rank:budgets:{by}"

    def _rank_budget_rows_key(self) -> str:
        return f"{self.prefix}rank:budgets:rows"

    def _sync_status_key(self) -> str:
        return f"{self.prefix}sync:status"

    def _sync_counters_key(self) -> str:
        return f"{self.prefix}sync:counters"

    def _lock_key(self, customer_id: str) -> str:
        return f"{self.prefix}lock:customer:{customer_id}"

    def _queued_key(self, customer_id: str, what: str = "customer") -> str:
        return f"{self.prefix}queued:{what}:{customer_id}"

    def _history_key(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{customer_id}:history"

    def _webhook_seen_key(self, message_id: str) -> str:
        return f"{self.prefix}webhook:seen:{message_id}"

    def _layout_key(self) -> str:
        return f"{self.prefix}layout"

    def _round_lock_key(self, what: str) -> str:
        return f"{self.prefix}lock:{what}"

    # --- catalog ---------------------------------------------------------------------------------

    def write_catalog(self, features: Sequence[Feature], packages: Sequence[Package], fetched_at: datetime) -> None:
        doc = {"features": {f.id: asdict(f) for f in features},
               "packages": {p.id: asdict(p) for p in packages},
               "fetched_at": iso(fetched_at)}
        self.r.set(self._catalog_key(), json.dumps(doc, default=_json_default))

    def catalog(self) -> Catalog | None:
        raw = self.r.get(self._catalog_key())
        if raw is None:
            return None
        doc = json.loads(raw)
        return Catalog(doc["features"], doc["packages"], parse_time(doc["fetched_at"]))

    def plans(self) -> list[tuple[str, str]]:
        """(plan id, name) choices for the customers filter, from the catalog."""
        cat = self.catalog()
        if cat is None:
            return []
        return sorted(((p["id"], p["display_name"]) for p in cat.packages.values() if p["kind"] == "plan"),
                      key=lambda t: t[1].casefold())

    # --- customer writes -----------------------------------------------------------------------

    def write_customer(self, snapshot: CustomerDocument) -> bool:
        """Write one customer whole, atomically. False when a newer snapshot is already there
        (a slow refresh finishing after a faster one must not roll the data back)."""
        cid = snapshot["id"]
        fetched = parse_time(snapshot["fetched_at"])
        if fetched is None:
            raise ValueError("a snapshot to write needs fetched_at")

        def write(pipe: redis.client.Pipeline) -> bool:
            current = pipe.zscore(self._fetched_at_key(), cid)
            if current is not None and current > _epoch(fetched):
                return False
            old_members = {_s(m) for m in pipe.smembers(self._members_key(cid))}
            old_entry = self._index_entry_of(pipe, cid)
            pipe.multi()
            self._queue_customer(pipe, snapshot, old_members, old_entry)
            return True

        return self._transaction(write, cid)

    def touch_customer(self, previous: CustomerDocument, fetched_at: datetime) -> bool:
        """Stigg was read again and nothing changed: record the time, without rewriting the
        document or the rankings (most customers, most sweeps). False if a newer fetch
        already happened, like write_customer."""
        cid = previous["id"]

        def write(pipe: redis.client.Pipeline) -> bool:
            current = pipe.zscore(self._fetched_at_key(), cid)
            if current is not None and current > _epoch(fetched_at):
                return False
            pipe.multi()
            pipe.zadd(self._fetched_at_key(), {cid: _epoch(fetched_at)})
            pipe.hset(self._rows_key(), cid, json.dumps(_row_doc(previous, iso(fetched_at))))
            return True

        return self._transaction(write, cid)

    def mark_customer_error(self, customer_id: str, message: str, at: datetime) -> None:
        """Record a failed refresh, keeping the last good data (or a stub if there is none)."""

        def write(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(self._customer_key(customer_id))
            doc: CustomerDocument = json.loads(raw) if raw else _stub_document(customer_id)
            old_members = {_s(m) for m in pipe.smembers(self._members_key(customer_id))}
            old_entry = self._index_entry_of(pipe, customer_id)
            doc["error"], doc["error_at"] = message[:2000], iso(at)
            pipe.multi()
            self._queue_customer(pipe, doc, old_members, old_entry)

        self._transaction(write, customer_id)

    def remove_customers(self, ids: Sequence[str]) -> int:
        """Delete everything of customers that disappeared from Stigg. Returns how many."""
        removed = 0
        for cid in ids:
            def write(pipe: redis.client.Pipeline, cid: str = cid) -> bool:
                existed = pipe.hexists(self._rows_key(), cid)
                members = {_s(m) for m in pipe.smembers(self._members_key(cid))}
                entry = self._index_entry_of(pipe, cid)
                pipe.multi()
                self._queue_forget_members(pipe, members)
                pipe.delete(self._customer_key(cid), self._members_key(cid), self._history_key(cid))
                pipe.hdel(self._rows_key(), cid)
                if entry:
                    self._queue_index(pipe, cid, entry, None, 0.0)
                for key in (self._fetched_at_key(), self._changed_key(), self._budget_utilization_key()):
                    pipe.zrem(key, cid)
                pipe.srem(self._errored_key(), cid)
                return bool(existed)

            removed += int(self._transaction(write, cid))
        return removed

    def mark_changed(self, customer_id: str, ttl: float = CHANGED_TTL_SECONDS, now: float | None = None) -> None:
        """Keep a customer in the hot tier for ``ttl`` seconds (a webhook or a dashboard write)."""
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=True)
        pipe.zadd(self._changed_key(), {customer_id: now + ttl})
        # Expired entries are dropped here, by the writer, so reads stay read-only.
        pipe.zremrangebyscore(self._changed_key(), "-inf", now)
        pipe.execute()

    # --- queueing and dedupe (used by tasks and the webhook endpoint) ----------------------------

    def claim_queued(self, customer_id: str, ttl: float = QUEUED_TTL_SECONDS, what: str = "customer") -> bool:
        """True for the first caller that queues a refresh of this customer (``what``: the
        customer, or its usage "history"); later callers see it is already queued and spend
        no broker message and no Stigg request on it."""
        return bool(self.r.set(self._queued_key(customer_id, what), "1", nx=True, px=max(1, int(ttl * 1000))))

    def release_queued(self, customer_id: str, what: str = "customer") -> None:
        """Called when the queued refresh starts: a change after this point queues anew."""
        self.r.delete(self._queued_key(customer_id, what))

    def webhook_first_seen(self, message_id: str, ttl: float = WEBHOOK_DEDUPE_TTL_SECONDS) -> bool:
        """True the first time a webhook messageId arrives; Stigg may deliver one twice."""
        return bool(self.r.set(self._webhook_seen_key(message_id), "1", nx=True, px=int(ttl * 1000)))

    def acquire_sweep_lock(self, ttl: float, what: str = "sweep") -> CustomerLock:
        """The full sweep (``what``: or a hot-tier round) is exclusive: two beats, or a
        beat and a manual run, never overlap."""
        return self._acquire(self._round_lock_key(what), ttl)

    def _transaction(self, func: Any, customer_id: str) -> Any:
        """Run ``func`` under WATCH of the customer's own keys, retrying on a concurrent write.

        Only per-customer keys are watched: every write of a customer rewrites its document,
        so that alone detects a concurrent writer, without conflicts across customers."""
        watched = (self._customer_key(customer_id), self._members_key(customer_id))
        for _ in range(_MAX_WATCH_RETRIES):
            with self.r.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*watched)
                    result = func(pipe)
                    if pipe.explicit_transaction:
                        pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise RuntimeError(f"gave up writing customer {customer_id!r}: too many concurrent writes")

    def _index_entry_of(self, pipe: Any, customer_id: str) -> IndexEntry | None:
        raw = pipe.hget(self._indexed_key(), customer_id)
        return json.loads(raw) if raw else None

    def _queue_customer(self, pipe: Any, doc: CustomerDocument, old_members: set[str],
                        old_entry: IndexEntry | None) -> None:
        """Queue every command that writes one customer (inside MULTI); the old members and
        list-index entry were read under WATCH before MULTI."""
        cid = doc["id"]
        profile = doc["profile"]
        new_members: dict[str, tuple[str, dict[str, float], str]] = {}
        for ent in doc["entitlements"]["metered"]:
            if ent["utilization"] is None:
                continue
            member = entitlement_member(cid, ent["feature_id"])
            row = {"customer_id": cid, "customer_name": profile["name"], "feature_id": ent["feature_id"],
                   "feature_name": ent["feature_name"], "usage": ent["usage"], "limit": ent["limit"],
                   "soft_limit": ent["soft_limit"], "utilization": ent["utilization"],
                   "period_end": ent["period_end"]}
            new_members["e|" + member] = (member, {self._rank_entitlements_key(): ent["utilization"]},
                                          json.dumps(row))
        for node in doc["governance"]:
            if not (node["feature_id"] or node["currency_id"]):
                continue  # tree-mode rows carry no budget
            scores: dict[str, float] = {}
            if node["utilization"] is not None:
                scores[self._rank_budgets_key("utilization")] = node["utilization"]
            if node["usage"] is not None:
                scores[self._rank_budgets_key("usage")] = node["usage"]
            if not scores:
                continue
            member = budget_member(cid, node)
            row = {"customer_id": cid, "customer_name": profile["name"], "entity_id": node["entity_id"],
                   "entity_name": node["display_name"], "feature_id": node["feature_id"],
                   "currency_id": node["currency_id"], "scope": node["scope"], "cadence": node["cadence"],
                   "limit": node["limit"], "usage": node["usage"], "utilization": node["utilization"],
                   "period_end": node["period_end"]}
            new_members["b|" + member] = (member, scores, json.dumps(row))

        # Stale members (features, entities or budgets that disappeared) go; every current
        # member is rewritten (ZADD/HSET overwrite), so the rankings equal this snapshot.
        # One command per key, however many members: a 200-budget customer is a handful
        # of commands, not hundreds.
        self._queue_forget_members(pipe, old_members - set(new_members))
        scores_by_key: dict[str, dict[str, float]] = {}
        rows_by_key: dict[str, dict[str, str]] = {}
        for tagged, (member, scores, row) in new_members.items():
            rows_key = self._rank_entitlement_rows_key() if tagged[0] == "e" else self._rank_budget_rows_key()
            for key, score in scores.items():
                scores_by_key.setdefault(key, {})[member] = score
            rows_by_key.setdefault(rows_key, {})[member] = row
        for key, mapping in scores_by_key.items():
            pipe.zadd(key, mapping)
        for key, mapping in rows_by_key.items():
            pipe.hset(key, mapping=mapping)
        pipe.delete(self._members_key(cid))
        if new_members:
            pipe.sadd(self._members_key(cid), *new_members)

        pipe.set(self._customer_key(cid), json.dumps(doc))
        pipe.hset(self._rows_key(), cid, json.dumps(_row_doc(doc, doc["fetched_at"])))
        hu = doc["highest_utilization"]
        self._queue_index(pipe, cid, old_entry, _index_entry(doc), NO_UTILIZATION_SCORE if hu is None else hu)
        fetched = parse_time(doc["fetched_at"])
        pipe.zadd(self._fetched_at_key(), {cid: _epoch(fetched) if fetched else 0.0})
        budget_utils = [n["utilization"] for n in doc["governance"] if n["utilization"] is not None
                        and (n["feature_id"] or n["currency_id"])]
        if budget_utils:
            pipe.zadd(self._budget_utilization_key(), {cid: max(budget_utils)})
        else:
            pipe.zrem(self._budget_utilization_key(), cid)
        if doc["error"]:
            pipe.sadd(self._errored_key(), cid)
        else:
            pipe.srem(self._errored_key(), cid)

    def _queue_index(self, pipe: Any, cid: str, old: IndexEntry | None, new: IndexEntry | None,
                     utilization: float) -> None:
        """Move a customer from its old place in the list's sort orders to its new one (None:
        nowhere). A member is removed only where it would not be overwritten in place."""
        for sort in ("name", "utilization"):
            new_member = new["members"][sort] if new else None
            new_keys = [self._order_key(sort, p, s) for p, s in _filter_scopes(new)]
            for p, s in _filter_scopes(old):
                key = self._order_key(sort, p, s)
                if old and (key not in new_keys or old["members"][sort] != new_member):
                    pipe.zrem(key, old["members"][sort])
            if new_member is not None:
                for key in new_keys:
                    pipe.zadd(key, {new_member: utilization if sort == "utilization" else 0.0})
        if new is None:
            pipe.hdel(self._indexed_key(), cid)
        else:
            pipe.hset(self._indexed_key(), cid, json.dumps(new))

    def _queue_forget_members(self, pipe: Any, tagged_members: set[str]) -> None:
        ent = [m[2:] for m in tagged_members if m.startswith("e|")]
        bud = [m[2:] for m in tagged_members if m.startswith("b|")]
        if ent:
            pipe.zrem(self._rank_entitlements_key(), *ent)
            pipe.hdel(self._rank_entitlement_rows_key(), *ent)
        if bud:
            pipe.zrem(self._rank_budgets_key("utilization"), *bud)
            pipe.zrem(self._rank_budgets_key("usage"), *bud)
            pipe.hdel(self._rank_budget_rows_key(), *bud)

    # --- customer reads ------------------------------------------------------------------------

    def customer(self, customer_id: str) -> CustomerDocument | None:
        """The customer's document, with ``fetched_at`` the last time Stigg was read for it
        (a refresh that found nothing changed only moves that time: see touch_customer)."""
        pipe = self.r.pipeline(transaction=True)
        pipe.get(self._customer_key(customer_id))
        pipe.zscore(self._fetched_at_key(), customer_id)
        raw, score = pipe.execute()
        if not raw:
            return None
        doc: CustomerDocument = json.loads(raw)
        written = parse_time(doc["fetched_at"])
        if score and written is not None and score > _epoch(written):
            doc["fetched_at"] = iso(datetime.fromtimestamp(score, timezone.utc))
        return doc

    def customer_ids(self) -> list[str]:
        return [_s(k) for k in self.r.hkeys(self._rows_key())]

    def customer_count(self) -> int:
        return int(self.r.hlen(self._rows_key()))

    def customers_page(
        self,
        search: str = "",
        plan: str | None = None,
        status: str | None = None,
        sort: str = "name",
        offset: int = 0,
        limit: int = 50,
    ) -> CustomerPage:
        """One page of the customers list.

        Every plan / status filter has its own sort order (see the module docstring), so
        without search the page is a rank range on one sorted set (O(log N + limit)). A
        search runs a read-only Lua script over the filter's sort order that returns only
        the total and the page's members, so no 10,000-row transfer reaches Python.
        """
        offset, limit = max(0, offset), max(1, min(limit, 500))
        key = self._order_key(sort, _clean(plan), _clean(status))
        reverse = sort == "utilization"
        needle = search.strip().casefold()
        if not needle:
            pipe = self.r.pipeline(transaction=True)
            pipe.zcard(key)
            (pipe.zrevrange if reverse else pipe.zrange)(key, offset, offset + limit - 1)
            total, members = pipe.execute()
        elif "\0" in needle or "\x1f" in needle:
            total, members = 0, []  # cleaned text never holds them (and they separate a member's parts)
        else:
            total, members = self.r.eval(_SEARCH_CUSTOMERS, 1, key, needle, offset, limit, "1" if reverse else "0")
        id_of = _id_of_utilization_member if reverse else _id_of_name_member
        total, ids = int(total), [id_of(_s(m)) for m in members]
        rows = self.customer_rows(ids)
        return CustomerPage(
            rows=rows, total=total, offset=offset, limit=limit,
            next_offset=offset + limit if offset + limit < total else None,
            prev_offset=max(0, offset - limit) if offset > 0 else None,
        )

    def customer_rows(self, ids: Sequence[str]) -> list[CustomerRow]:
        if not ids:
            return []
        out = []
        for cid, raw in zip(ids, self.r.hmget(self._rows_key(), list(ids))):
            if raw is None:
                continue  # removed between the two reads
            d = json.loads(raw)
            out.append(CustomerRow(
                id=cid, name=d["name"], email=d["email"], plan_id=d["plan_id"], plan_name=d["plan_name"],
                status=d["status"], highest_utilization=d["highest_utilization"], archived=d["archived"],
                fetched_at=parse_time(d["fetched_at"]), error=d["error"], error_at=parse_time(d["error_at"]),
            ))
        return out

    # --- fleet rankings ----------------------------------------------------------------------------

    def top_entitlements(self, n: int = 20, offset: int = 0) -> list[EntitlementRank]:
        members = self.r.zrevrange(self._rank_entitlements_key(), offset, offset + n - 1)
        if not members:
            return []
        out = []
        for raw in self.r.hmget(self._rank_entitlement_rows_key(), members):
            if raw is None:
                continue
            d = json.loads(raw)
            d["period_end"] = parse_time(d["period_end"])
            out.append(EntitlementRank(**d))
        return out

    def top_budgets(self, n: int = 20, by: str = "utilization", offset: int = 0) -> list[BudgetRank]:
        members = self.r.zrevrange(self._rank_budgets_key(by), offset, offset + n - 1)
        if not members:
            return []
        out = []
        for raw in self.r.hmget(self._rank_budget_rows_key(), members):
            if raw is None:
                continue
            d = json.loads(raw)
            d["period_end"] = parse_time(d["period_end"])
            d["scope"] = tuple(d["scope"])
            out.append(BudgetRank(**d))
        return out

    def entitlement_counts(self) -> ThresholdCounts:
        return self._threshold_counts(self._rank_entitlements_key())

    def budget_counts(self) -> ThresholdCounts:
        return self._threshold_counts(self._rank_budgets_key("utilization"))

    def _threshold_counts(self, key: str) -> ThresholdCounts:
        pipe = self.r.pipeline(transaction=False)
        pipe.zcount(key, 0.8, "+inf")
        pipe.zcount(key, 1.0, "+inf")
        at_80, at_100 = pipe.execute()
        return ThresholdCounts(int(at_80), int(at_100))

    def utilization_histogram(self, kind: str = "entitlements",
                              edges: Sequence[float] = HISTOGRAM_EDGES) -> list[HistogramBin]:
        """Counts per utilization bin, for the overview chart ("entitlements" or "budgets")."""
        key = self._rank_entitlements_key() if kind == "entitlements" else self._rank_budgets_key("utilization")
        pipe = self.r.pipeline(transaction=False)
        bins: list[tuple[float, float | None]] = []
        for i, lower in enumerate(edges):
            upper = edges[i + 1] if i + 1 < len(edges) else None
            bins.append((lower, upper))
            # "(" makes the upper edge exclusive, so each value falls into exactly one bin.
            pipe.zcount(key, lower, f"({upper}" if upper is not None else "+inf")
        counts = pipe.execute()
        return [HistogramBin(lo, hi, f"{lo:.0%}–{hi:.0%}" if hi is not None else f"≥ {lo:.0%}", int(c))
                for (lo, hi), c in zip(bins, counts)]

    # --- freshness and hot tier -----------------------------------------------------------------

    def stale_customers(self, older_than: float, now: float | None = None, limit: int | None = None) -> list[str]:
        """Customers whose last good fetch is older than ``older_than`` seconds, oldest first."""
        now = time.time() if now is None else now
        args = {"start": 0, "num": limit} if limit is not None else {}
        return [_s(m) for m in self.r.zrangebyscore(self._fetched_at_key(), "-inf", f"({now - older_than}", **args)]

    def hot_customers(self, threshold: float | None = None, now: float | None = None,
                      limit: int | None = None) -> list[str]:
        """Customers with anything at or above ``threshold`` utilization (a metered
        entitlement or a governance budget), or changed recently — in the order a hot-tier
        poll should take them, at most ``limit``.

        Order: customers with an entitlement near its limit first (at the limit the whole
        customer is blocked), then the recently changed (somebody acted, or Stigg said so;
        a webhook already refreshed them once), then those with only a budget near its
        limit (that blocks one team, user or agent). Within each, the longest unread
        first, so a tier larger than one round is polled round-robin. A lower tier gets
        what the higher ones leave; the sweep still reaches everyone."""
        if threshold is None:
            threshold = _setting("SYNC_HOT_UTILIZATION", DEFAULT_HOT_UTILIZATION)
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=False)
        pipe.zrangebyscore(self._changed_key(), f"({now}", "+inf")
        pipe.zrangebyscore(self._order_key("utilization"), threshold, "+inf")
        pipe.zrangebyscore(self._budget_utilization_key(), threshold, "+inf")
        changed, near, budgets = pipe.execute()
        tiers = [[_id_of_utilization_member(_s(m)) for m in near], [_s(m) for m in changed],
                 [_s(m) for m in budgets]]
        everyone = list({cid for tier in tiers for cid in tier})
        read_at = dict(zip(everyone, self.r.zmscore(self._fetched_at_key(), everyone))) if everyone else {}
        ordered: list[str] = []
        seen: set[str] = set()
        for tier in tiers:
            for cid in sorted(set(tier) - seen, key=lambda c: (read_at.get(c) or 0.0, c)):
                ordered.append(cid)
                seen.add(cid)
        return ordered if limit is None else ordered[:limit]

    def fetched_at(self, customer_id: str) -> datetime | None:
        score = self.r.zscore(self._fetched_at_key(), customer_id)
        return datetime.fromtimestamp(score, timezone.utc) if score else None

    # --- sync status -----------------------------------------------------------------------------

    def record_sweep_started(self, at: datetime) -> None:
        self.r.hset(self._sync_status_key(), "started_at", iso(at) or "")

    def record_sweep_finished(self, at: datetime, stats: Mapping[str, Any]) -> None:
        started = parse_time(_s(self.r.hget(self._sync_status_key(), "started_at")) or None)
        duration = (at - started).total_seconds() if started else None
        self.r.hset(self._sync_status_key(), mapping={
            "finished_at": iso(at) or "", "duration": "" if duration is None else str(duration),
            "stats": json.dumps(dict(stats), default=_json_default)})

    def record_discovery(self, at: datetime) -> None:
        """A sweep that asked every customer for promotions and budgets (not only those
        known to have them) started at ``at``."""
        self.r.hset(self._sync_status_key(), "discovery_at", iso(at) or "")

    def last_discovery(self) -> datetime | None:
        return parse_time(_s(self.r.hget(self._sync_status_key(), "discovery_at")) or None)

    def record_errors(self, count: int = 1) -> None:
        # A counter of events seen, not state: an increment is the honest representation.
        self.r.hincrby(self._sync_counters_key(), "errors", count)

    def record_rate_limited(self, count: int = 1) -> None:
        self.r.hincrby(self._sync_counters_key(), "rate_limited", count)

    def sync_status(self, behind_after: float | None = None, now: float | None = None) -> SyncStatus:
        """Everything the pages and /healthz show about sync, in one round trip."""
        if behind_after is None:
            behind_after = DEFAULT_BEHIND_SECONDS
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self._sync_status_key())
        pipe.hgetall(self._sync_counters_key())
        pipe.hlen(self._rows_key())
        pipe.zcount(self._fetched_at_key(), "-inf", f"({now - behind_after}")
        pipe.scard(self._errored_key())
        status, counters, total, behind, errored = pipe.execute()
        status = {_s(k): _s(v) for k, v in status.items()}
        counters = {_s(k): int(v) for k, v in counters.items()}
        started = parse_time(status.get("started_at") or None)
        finished = parse_time(status.get("finished_at") or None)
        return SyncStatus(
            last_sweep_started_at=started, last_sweep_finished_at=finished,
            last_sweep_duration=float(status["duration"]) if status.get("duration") else None,
            last_sweep_stats=json.loads(status["stats"]) if status.get("stats") else {},
            sweep_running=started is not None and (finished is None or finished < started),
            customers_total=int(total), customers_behind=int(behind), customers_in_error=int(errored),
            errors_seen=counters.get("errors", 0), rate_limited_seen=counters.get("rate_limited", 0),
        )

    # --- locks -------------------------------------------------------------------------------------

    @contextmanager
    def customer_lock(self, customer_id: str, ttl: float = DEFAULT_LOCK_TTL_SECONDS) -> Iterator[CustomerLock]:
        """``with rm.customer_lock(cid) as lock: if not lock.acquired: return`` — a refresh
        never runs twice at once for one customer. Released only by its owner (the token)."""
        lock = self.acquire_customer_lock(customer_id, ttl)
        try:
            yield lock
        finally:
            lock.release()

    def acquire_customer_lock(self, customer_id: str, ttl: float = DEFAULT_LOCK_TTL_SECONDS) -> CustomerLock:
        return self._acquire(self._lock_key(customer_id), ttl)

    def _acquire(self, key: str, ttl: float) -> CustomerLock:
        """SET NX PX with a random token: only its owner can release it (see CustomerLock)."""
        token = secrets.token_hex(16)
        got = self.r.set(key, token, nx=True, px=max(1, int(ttl * 1000)))
        return CustomerLock(key=key, token=token, acquired=bool(got), _client=self.r)

    # --- usage history (the customer page's charts) -------------------------------------------------

    def write_usage_history(self, customer_id: str, history: UsageHistoryDoc) -> None:
        """One whole value per customer. Written only while the customer exists, so a
        history fetched for a customer removed meanwhile does not linger."""
        def write(pipe: redis.client.Pipeline) -> None:
            if not pipe.exists(self._customer_key(customer_id)):
                return
            pipe.multi()
            pipe.set(self._history_key(customer_id), json.dumps(history))

        self._transaction(write, customer_id)

    def usage_history(self, customer_id: str) -> UsageHistoryDoc | None:
        raw = self.r.get(self._history_key(customer_id))
        return json.loads(raw) if raw else None

    # --- maintenance -------------------------------------------------------------------------------

    def ensure_layout(self) -> bool:
        """Empty the read model if it was written with another key layout (or none is
        recorded but keys exist), then record ours. True when it had to be emptied.
        Called by the sweep, which then refills everything."""
        found = _s(self.r.get(self._layout_key()))
        if found == LAYOUT_VERSION:
            return False
        if found is None and not self.r.exists(self._rows_key(), self._catalog_key()):
            self.r.set(self._layout_key(), LAYOUT_VERSION)  # a new, empty read model
            return False
        log.warning("Read model layout %s found, %s expected: emptying it for a rebuild from Stigg",
                    found or "(none recorded)", LAYOUT_VERSION)
        self.clear()
        return True

    def clear(self) -> int:
        """Delete every key under the prefix (the rebuild command starts here). What is
        left is an empty read model in this code's layout."""
        pattern = _glob_escape(self.prefix) + "*"
        deleted = 0
        batch: list[Any] = []
        for key in self.r.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(self.r.unlink(*batch))
                batch = []
        if batch:
            deleted += int(self.r.unlink(*batch))
        self.r.set(self._layout_key(), LAYOUT_VERSION)
        return deleted


# --- small helpers -----------------------------------------------------------------------------


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _clean(text: str | None) -> str:
    # The separators below must never appear inside a field (hostile names from Stigg).
    return (text or "").replace("\x1f", " ").replace("\0", " ").casefold()


def _row_doc(doc: CustomerDocument, fetched_at: str | None) -> dict[str, Any]:
    """The customer's row in the list index."""
    profile = doc["profile"]
    return {"name": profile["name"], "email": profile["email"], "plan_id": doc["plan_id"],
            "plan_name": doc["plan_name"], "status": doc["status"], "highest_utilization": doc["highest_utilization"],
            "archived": profile["archived_at"] is not None, "fetched_at": fetched_at, "error": doc["error"],
            "error_at": doc["error_at"]}


class IndexEntry(TypedDict):
    """Where a customer is in the list's sort orders, kept so a rewrite removes exactly that."""

    plan: str
    status: str
    members: dict[str, str]  # sort ("name" / "utilization") -> its member of those orders


def _index_entry(doc: CustomerDocument) -> IndexEntry:
    """A customer's members of the sort orders: "{name}\\0{id}\\0{rest}" and "{id}\\0{rest}".

    Search is a case-insensitive substring of the id, the name or the email, and a member
    holds each of them (cleaned), so a search reads nothing but the sort order. ``rest``
    holds only what the member's other parts lack, because shorter members are faster to
    scan (measured: a sixth less time at 50 bytes than at 80). The raw id stands for the cleaned
    one when they are equal; it never matches where the cleaned id would not (a needle is
    casefolded, holds no \\0 or \\x1f, and casefolding maps each character alone).
    \\0 separates the parts: cleaned text never holds it, the raw id may, hence "first \\0"
    and "last \\0" in _id_of_*."""
    cid, profile = doc["id"], doc["profile"]
    clean_id, name, email = _clean(cid), _clean(profile["name"]), _clean(profile["email"])
    own_id = [clean_id] if clean_id != cid else []
    name_rest = "\x1f".join([*own_id, email]) if name else email
    utilization_rest = "\x1f".join([*own_id, name, email])
    # Customers without a name sort by id, among the others; the id after the name makes the
    # order total (ties on the name go by id), as the id first does among equal utilizations.
    return {"plan": _clean(doc["plan_id"]), "status": _clean(doc["status"]),
            "members": {"name": f"{name or clean_id}\0{cid}\0{name_rest}",
                        "utilization": f"{cid}\0{utilization_rest}"}}


def _id_of_name_member(member: str) -> str:
    return member[member.index("\0") + 1:member.rindex("\0")]


def _id_of_utilization_member(member: str) -> str:
    return member[:member.rindex("\0")]


def _filter_scopes(entry: IndexEntry | None) -> list[tuple[str, str]]:
    """The (plan, status) filters a customer is listed under; "" means any."""
    if entry is None:
        return []
    plan, status = entry["plan"], entry["status"]
    scopes = [("", "")]
    if plan:
        scopes.append((plan, ""))
    if status:
        scopes.append(("", status))
    if plan and status:
        scopes.append((plan, status))
    return scopes


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _setting(name: str, default: float) -> float:
    try:
        from django.conf import settings

        return float(getattr(settings, name, default))
    except Exception:  # settings not configured (a script): the default is right
        return default

