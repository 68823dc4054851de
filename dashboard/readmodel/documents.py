"""The values the read model stores, as typed dicts: JSON in Redis, datetimes as ISO strings.

The customer document is what the customer page reads whole; the list, rankings and
sync status have their own small values (``values.py``)."""
from __future__ import annotations

from typing import Any, TypedDict

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


class StiggValues(TypedDict):
    """What Stigg said, as the sync's codec stored it (opaque here): a refresh that asks
    for part of a customer takes the rest back from these."""

    customer: dict[str, Any]
    subscriptions: list[dict[str, Any]]
    promotions: list[dict[str, Any]]


class GovernanceSummary(TypedDict):
    enabled: bool
    entities: int
    budgets: int
    near: int  # budgets at >= 80 %
    over: int  # budgets at >= 100 %
    blocked: int  # entities blocked now for some capability
    capabilities: list[str]
    types: list[str]
    fingerprint: str  # of what Stigg answered: equal means nothing to rewrite


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
    governance: GovernanceSummary  # the hierarchy itself is stored apart (governance.py)
    highest_utilization: float | None
    stigg: StiggValues | None  # None: never fetched successfully
    fetched_at: str | None  # None: never fetched successfully
    error: str | None
    error_at: str | None




class IndexEntry(TypedDict):
    """Where a customer is in the list's sort orders, kept so a rewrite removes exactly that."""

    plan: str
    status: str
    owner: str  # its account owner, as account_owner gives it ("": none)
    members: dict[str, str]  # sort ("name" / "utilization") -> its member of those orders


def account_owner(doc: CustomerDocument, owner_key: str) -> str:
    """The customer's account owner: its metadata under ``owner_key``, whitespace stripped
    ("" when none). Case is kept: "My accounts" matches a user's owner name exactly, as the
    near-limit owner filter always has (one spelling per person, as Stigg's metadata has it)."""
    owner = doc["profile"]["metadata"].get(owner_key)
    return str(owner).strip() if owner else ""
