"""The small typed values Stigg calls return: frozen, so they can be shared freely."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Customer:
    id: str
    name: str | None
    email: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AddonQuantity:
    addon_id: str
    quantity: int


@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str
    plan_id: str
    status: str  # PAYMENT_PENDING | ACTIVE | EXPIRED | IN_TRIAL | CANCELED | NOT_STARTED
    resource_id: str | None
    start_date: datetime
    end_date: datetime | None
    trial_end_date: datetime | None
    cancellation_date: datetime | None
    current_billing_period_end: datetime | None
    pricing_type: str
    addons: tuple[AddonQuantity, ...] = ()


@dataclass(frozen=True)
class EnumOption:
    value: str
    display_name: str


@dataclass(frozen=True)
class Feature:
    id: str
    display_name: str
    feature_type: str  # BOOLEAN | NUMBER | ENUM
    meter_type: str  # None | FLUCTUATING | INCREMENTAL
    metered: bool  # usage-tracked: a meter, or meterType other than "None"
    units: str | None
    units_plural: str | None
    enum_options: tuple[EnumOption, ...] = ()


@dataclass(frozen=True)
class PackageEntitlement:
    feature_id: str
    behavior: str  # Increment | Override
    is_granted: bool
    usage_limit: float | None
    has_unlimited_usage: bool
    has_soft_limit: bool
    enum_values: tuple[str, ...] | None
    reset_period: str | None


@dataclass(frozen=True)
class PackageCredit:
    """A CREDIT entitlement of a plan or add-on: a grant of a credit currency (§3)."""

    currency_id: str
    amount: float | None
    cadence: str | None  # MONTH | YEAR


@dataclass(frozen=True)
class Package:
    """A plan or an add-on with its feature entitlements and its credit grants."""

    id: str
    kind: str  # "plan" | "addon"
    display_name: str
    product_id: str
    status: str
    parent_plan_id: str | None
    entitlements: tuple[PackageEntitlement, ...] = ()
    credits: tuple[PackageCredit, ...] = ()


@dataclass(frozen=True)
class Entitlement:
    """One FEATURE entitlement of a customer as Stigg computes it (§5.1)."""

    feature_id: str
    feature_name: str
    feature_type: str
    is_granted: bool
    access_denied_reason: str | None
    current_usage: float | None
    usage_limit: float | None
    has_unlimited_usage: bool
    reset_period: str | None
    usage_period_anchor: datetime | None
    usage_period_start: datetime | None
    usage_period_end: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True)
class CustomerEntitlements:
    access_denied_reason: str | None
    entitlements: tuple[Entitlement, ...]


@dataclass(frozen=True)
class Promotion:
    id: str
    feature_id: str
    status: str  # Active | Expired | Paused
    period: str
    start_date: datetime
    end_date: datetime | None
    usage_limit: float | None
    has_unlimited_usage: bool
    has_soft_limit: bool
    enum_values: tuple[str, ...] | None
    reset_period: str | None
    created_at: datetime
    reset_anchor: str | None = None  # resetPeriodConfiguration.accordingTo (§5.3)


@dataclass(frozen=True)
class PromotionGrant:
    """What the dashboard asks Stigg to grant (§6 Grant)."""

    feature_id: str
    period: str  # "1 week" | "1 month" | "6 month" | "1 year" | "lifetime" | "custom"
    custom_end_date: datetime | None = None
    usage_limit: float | None = None
    has_unlimited_usage: bool | None = None
    has_soft_limit: bool | None = None
    enum_values: tuple[str, ...] | None = None
    reset_period: str | None = None  # YEAR | MONTH | WEEK | DAY | HOUR
    reset_anchor: str | None = None  # accordingTo (§5.3): SubscriptionStart, StartOfTheMonth, EverySunday…


@dataclass(frozen=True)
class UsagePoint:
    timestamp: datetime
    value: float
    is_reset_point: bool


@dataclass(frozen=True)
class UsageSeries:
    tags: tuple[tuple[str, str], ...]
    points: tuple[UsagePoint, ...]


@dataclass(frozen=True)
class UsageHistory:
    series: tuple[UsageSeries, ...]
    resets: tuple[datetime, ...]  # PERIODIC_RESET / SUBSCRIPTION_CHANGE_RESET markers


@dataclass(frozen=True)
class EntityType:
    """A kind of governed entity inside a customer (team, user, agent…), defined once per
    Stigg environment (§9.1). Usage reaches an entity of this type through its attribution
    keys: the event dimensions (e.g. ``userId``) whose value names the entity."""

    id: str
    display_name: str
    description: str | None
    attribution_keys: tuple[str, ...]  # 0–2 keys; none: usage is never attributed to this type
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class GovernanceNode:
    """One row of the governance tree (§9.5), hydrated for a feature or currency."""

    entity_id: str
    entity_type_id: str
    display_name: str | None
    parent_id: str | None
    feature_id: str | None
    currency_id: str | None
    scope_entity_ids: tuple[str, ...]
    cadence: str | None
    usage_limit: float | None
    current_usage: float | None
    utilization: float | None
    usage_period_start: datetime | None
    usage_period_end: datetime | None


@dataclass(frozen=True)
class Assignment:
    id: str
    entity_id: str
    feature_id: str | None
    currency_id: str | None
    scope_entity_ids: tuple[str, ...]
    usage_limit: float | None
    cadence: str
    parent_id: str | None
