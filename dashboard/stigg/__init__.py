"""The only code that speaks HTTP to Stigg (real Stigg or the emulator).

One method per Stigg call the product needs (``client``), each with an explicit timeout,
returning small typed values (``types``) and raising one of two errors (``errors``):
``StiggRequestError`` (the request was wrong, or the answer was malformed: never
retried) or ``StiggUnavailable`` (Stigg is down, slow, throttling or erroring: retry
later, after ``retry_after`` seconds when Stigg said so). ``transport`` holds the
request loop (rate-limit slot, timeouts, retries); ``parsing`` reads Stigg's answers.
The request-rate limiter itself is ``dashboard.ratelimit``, handed to the client.

Callers import from here: ``from .stigg import StiggClient, StiggUnavailable``.
"""
from __future__ import annotations

from .client import StiggClient
from .errors import GovernanceNotEnabled, RateLimitExhausted, StiggError, StiggRequestError, StiggUnavailable
from .types import (
    AddonQuantity,
    Assignment,
    Customer,
    CustomerEntitlements,
    EntityType,
    Entitlement,
    EnumOption,
    Feature,
    GovernanceNode,
    Package,
    PackageCredit,
    PackageEntitlement,
    Promotion,
    PromotionGrant,
    Subscription,
    UsageHistory,
    UsagePoint,
    UsageSeries,
)

__all__ = [
    "AddonQuantity",
    "Assignment",
    "Customer",
    "CustomerEntitlements",
    "EntityType",
    "Entitlement",
    "EnumOption",
    "Feature",
    "GovernanceNode",
    "GovernanceNotEnabled",
    "Package",
    "PackageCredit",
    "PackageEntitlement",
    "Promotion",
    "PromotionGrant",
    "RateLimitExhausted",
    "StiggClient",
    "StiggError",
    "StiggRequestError",
    "StiggUnavailable",
    "Subscription",
    "UsageHistory",
    "UsagePoint",
    "UsageSeries",
]
