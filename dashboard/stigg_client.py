"""The only module that speaks HTTP to Stigg (real Stigg or the emulator).

One function per Stigg call the product needs. Each has an explicit timeout, returns
small typed values (below), iterates pagination for the caller, and raises one of two
errors: ``StiggRequestError`` (the request was wrong, or the answer was malformed:
never retried) or ``StiggUnavailable`` (Stigg is down, slow, throttling or erroring:
retry later, after ``retry_after`` seconds when Stigg said so).

Every attempt first takes a slot from the request budget shared by all processes
(``STIGG_MAX_RPS``, kept in Redis), so no number of workers can exceed it.
"""
from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from .budget import RequestBudget

logger = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_LIMIT = 100  # Stigg's maximum page size: fewest requests per list
BACKOFF_BASE = 0.5  # seconds; the SDK's schedule 0.5 s * 2^n ...
BACKOFF_CAP = 8.0  # ... capped at 8 s
BACKOFF_JITTER = 0.25  # up to 25% taken off, so workers throttled together spread out
RETRY_AFTER_MAX = 60.0  # a longer hint is ignored (the SDK's rule): backoff applies instead
DEFAULT_BUDGET_WAIT = 10.0  # seconds a call may queue for a budget slot before giving up


class StiggError(Exception):
    """Base of the two errors below."""


class StiggRequestError(StiggError):
    """The request was wrong (4xx other than 408/429), or Stigg's answer could not be
    understood. Retrying the same call will not help."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


class StiggUnavailable(StiggError):
    """Stigg could not answer now: connection error, timeout, 408, 429 or 5xx, or the
    request budget is exhausted. ``retry_after`` is Stigg's hint in seconds, if any."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class BudgetExhausted(StiggUnavailable):
    """Our own request budget, not Stigg, says wait: no slot within the allowed wait.
    Not Stigg's failure, so it never marks a customer as failing; retry after
    ``retry_after`` seconds."""


# --- typed values ------------------------------------------------------------------------


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
class Package:
    """A plan or an add-on with its feature entitlements."""

    id: str
    kind: str  # "plan" | "addon"
    display_name: str
    product_id: str
    status: str
    parent_plan_id: str | None
    entitlements: tuple[PackageEntitlement, ...] = ()


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
    reset_period: str | None = None


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


# --- calls (signatures; implemented below) ------------------------------------------------
#
#   client = StiggClient.from_settings()          # base URL, key, timeout, budget from settings
#   client.iter_customers() -> Iterator[Customer]
#   client.get_customer(customer_id) -> Customer
#   client.iter_subscriptions(customer_id=None) -> Iterator[Subscription]   (None: every customer)
#   client.iter_features() -> Iterator[Feature]
#   client.iter_packages() -> Iterator[Package]   plans and add-ons, each with its entitlements
#   client.customer_entitlements(customer_id) -> CustomerEntitlements
#   client.iter_promotions(customer_id, statuses=("Active", "Expired")) -> Iterator[Promotion]
#   client.grant_promotions(customer_id, grants: list[PromotionGrant]) -> list[Promotion]
#   client.revoke_promotion(customer_id, feature_id) -> Promotion
#   client.usage_history(customer_id, feature_id, start, end=None, group_by=None) -> UsageHistory
#   client.iter_governance(customer_id, feature_ids=(), currency_ids=(), sort_by="utilization",
#                          order="desc", min_utilization=None) -> Iterator[GovernanceNode]
#                          (raises GovernanceNotEnabled, a StiggRequestError, on 403 GovernanceNotEnabled)
#   client.iter_assignments(customer_id) -> Iterator[Assignment]
#   client.upsert_assignment(customer_id, entity_id, feature_id, usage_limit, cadence=None,
#                            scope_entity_ids=()) -> Assignment
#   client.close()




class GovernanceNotEnabled(StiggRequestError):
    """Governance is switched off for this Stigg environment (403 GovernanceNotEnabled)."""


# --- defensive parsing --------------------------------------------------------------------
#
# Stigg's answers are parsed field by field; anything missing or of the wrong type raises
# StiggRequestError, so a KeyError/TypeError never escapes into a task or a view.


class _Malformed(Exception):
    pass


def _malformed(what: str) -> StiggRequestError:
    return StiggRequestError(f"malformed answer from Stigg: {what}")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{where} is not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Malformed(f"{where} is not an array")
    return value


def _str(d: dict[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"{key} is not a string")
    return value


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise _Malformed(f"{key} is not a string")
    return value


def _bool(d: dict[str, Any], key: str) -> bool:
    value = d.get(key)
    if not isinstance(value, bool):
        raise _Malformed(f"{key} is not a boolean")
    return value


def _opt_bool(d: dict[str, Any], key: str, default: bool = False) -> bool:
    value = d.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _Malformed(f"{key} is not a boolean")
    return value


def _opt_num(d: dict[str, Any], key: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    # bool is an int in Python; a boolean where a number belongs is a wrong shape.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Malformed(f"{key} is not a number")
    return value


def _num(d: dict[str, Any], key: str) -> float:
    value = _opt_num(d, key)
    if value is None:
        raise _Malformed(f"{key} is missing")
    return value


def _int(d: dict[str, Any], key: str) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{key} is not a whole number")
    return value


def _parse_dt(value: str, key: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Malformed(f"{key} is not an ISO-8601 timestamp") from None
    # Stigg sends UTC; a timestamp without an offset is read as UTC, never local time.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _dt(d: dict[str, Any], key: str) -> datetime:
    return _parse_dt(_str(d, key), key)


def _opt_dt(d: dict[str, Any], key: str) -> datetime | None:
    value = _opt_str(d, key)
    return None if value is None else _parse_dt(value, key)


def _opt_strs(d: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Malformed(f"{key} is not an array of strings")
    return tuple(value)


def _strs(d: dict[str, Any], key: str) -> tuple[str, ...]:
    return _opt_strs(d, key) or ()


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_customer(d: dict[str, Any]) -> Customer:
    metadata = d.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise _Malformed("metadata is not a map of strings")
    return Customer(id=_str(d, "id"), name=_opt_str(d, "name"), email=_opt_str(d, "email"),
                    created_at=_dt(d, "createdAt"), updated_at=_dt(d, "updatedAt"),
                    archived_at=_opt_dt(d, "archivedAt"), metadata=dict(metadata))


def _parse_subscription(d: dict[str, Any]) -> Subscription:
    addons = tuple(
        AddonQuantity(addon_id=_str(a, "id"), quantity=_int(a, "quantity"))
        for a in (_obj(x, "addon") for x in _list(d.get("addons") or [], "addons"))
    )
    return Subscription(
        id=_str(d, "id"), customer_id=_str(d, "customerId"), plan_id=_str(d, "planId"), status=_str(d, "status"),
        resource_id=_opt_str(d, "resourceId"), start_date=_dt(d, "startDate"), end_date=_opt_dt(d, "endDate"),
        trial_end_date=_opt_dt(d, "trialEndDate"), cancellation_date=_opt_dt(d, "cancellationDate"),
        current_billing_period_end=_opt_dt(d, "currentBillingPeriodEnd"),
        pricing_type=_opt_str(d, "pricingType") or "", addons=addons,
    )


def _parse_feature(d: dict[str, Any]) -> Feature:
    meter_type = _opt_str(d, "meterType") or "None"
    meter = d.get("meter")
    if meter is not None:
        _obj(meter, "meter")
    options = tuple(
        EnumOption(value=_str(o, "value"), display_name=_opt_str(o, "displayName") or _str(o, "value"))
        for o in (_obj(x, "enumConfiguration item") for x in _list(d.get("enumConfiguration") or [], "enumConfiguration"))
    )
    return Feature(
        id=_str(d, "id"), display_name=_str(d, "displayName"), feature_type=_str(d, "featureType"),
        meter_type=meter_type, metered=meter is not None or meter_type != "None",
        units=_opt_str(d, "featureUnits"), units_plural=_opt_str(d, "featureUnitsPlural"), enum_options=options,
    )


def _parse_package_entitlement(d: dict[str, Any]) -> PackageEntitlement:
    return PackageEntitlement(
        feature_id=_str(d, "id"), behavior=_opt_str(d, "behavior") or "Increment", is_granted=_opt_bool(d, "isGranted", True),
        usage_limit=_opt_num(d, "usageLimit"), has_unlimited_usage=_opt_bool(d, "hasUnlimitedUsage"),
        has_soft_limit=_opt_bool(d, "hasSoftLimit"), enum_values=_opt_strs(d, "enumValues"),
        reset_period=_opt_str(d, "resetPeriod"),
    )


def _parse_entitlement(d: dict[str, Any]) -> Entitlement:
    feature = _obj(d.get("feature"), "feature")
    return Entitlement(
        feature_id=_str(feature, "id"), feature_name=_opt_str(feature, "displayName") or _str(feature, "id"),
        feature_type=_str(feature, "featureType"), is_granted=_bool(d, "isGranted"),
        access_denied_reason=_opt_str(d, "accessDeniedReason"), current_usage=_opt_num(d, "currentUsage"),
        usage_limit=_opt_num(d, "usageLimit"), has_unlimited_usage=_opt_bool(d, "hasUnlimitedUsage"),
        reset_period=_opt_str(d, "resetPeriod"), usage_period_anchor=_opt_dt(d, "usagePeriodAnchor"),
        usage_period_start=_opt_dt(d, "usagePeriodStart"), usage_period_end=_opt_dt(d, "usagePeriodEnd"),
        valid_until=_opt_dt(d, "validUntil"),
    )


def _parse_promotion(d: dict[str, Any]) -> Promotion:
    return Promotion(
        id=_str(d, "id"), feature_id=_str(d, "featureId"), status=_str(d, "status"), period=_str(d, "period"),
        start_date=_dt(d, "startDate"), end_date=_opt_dt(d, "endDate"), usage_limit=_opt_num(d, "usageLimit"),
        has_unlimited_usage=_opt_bool(d, "hasUnlimitedUsage"), has_soft_limit=_opt_bool(d, "hasSoftLimit"),
        enum_values=_opt_strs(d, "enumValues"), reset_period=_opt_str(d, "resetPeriod"),
        created_at=_dt(d, "createdAt"),
    )


def _parse_usage_history(d: dict[str, Any]) -> UsageHistory:
    series = []
    for s in (_obj(x, "series item") for x in _list(d.get("series"), "series")):
        tags = tuple((_str(t, "key"), _str(t, "value"))
                     for t in (_obj(x, "tag") for x in _list(s.get("tags") or [], "tags")))
        points = tuple(UsagePoint(timestamp=_dt(p, "timestamp"), value=_num(p, "value"),
                                  is_reset_point=_opt_bool(p, "isResetPoint"))
                       for p in (_obj(x, "point") for x in _list(s.get("points"), "points")))
        series.append(UsageSeries(tags=tags, points=points))
    resets = tuple(_dt(m, "timestamp") for m in (_obj(x, "marker") for x in _list(d.get("markers") or [], "markers")))
    return UsageHistory(series=tuple(series), resets=resets)


def _parse_node(d: dict[str, Any]) -> GovernanceNode:
    return GovernanceNode(
        entity_id=_str(d, "entityId"), entity_type_id=_str(d, "entityTypeId"), display_name=_opt_str(d, "displayName"),
        parent_id=_opt_str(d, "parentId"), feature_id=_opt_str(d, "featureId"), currency_id=_opt_str(d, "currencyId"),
        scope_entity_ids=_strs(d, "scopeEntityIds"), cadence=_opt_str(d, "cadence"),
        usage_limit=_opt_num(d, "usageLimit"), current_usage=_opt_num(d, "currentUsage"),
        utilization=_opt_num(d, "utilization"), usage_period_start=_opt_dt(d, "usagePeriodStart"),
        usage_period_end=_opt_dt(d, "usagePeriodEnd"),
    )


def _parse_assignment(d: dict[str, Any]) -> Assignment:
    return Assignment(
        id=_str(d, "id"), entity_id=_str(d, "entityId"), feature_id=_opt_str(d, "featureId"),
        currency_id=_opt_str(d, "currencyId"), scope_entity_ids=_strs(d, "scopeEntityIds"),
        usage_limit=_opt_num(d, "usageLimit"), cadence=_str(d, "cadence"), parent_id=_opt_str(d, "parentId"),
    )


def _parse(parser: Callable[[dict[str, Any]], T], value: Any, where: str) -> T:
    try:
        return parser(_obj(value, where))
    except _Malformed as exc:
        raise _malformed(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # belt and braces
        raise _malformed(f"{where}: {exc!r}") from None


def _retry_after(headers: httpx.Headers) -> float | None:
    """Stigg's wait hint in seconds (``retry-after-ms``, else ``retry-after`` as seconds or
    an HTTP date), or None when absent, unreadable, not positive or over 60 s."""
    seconds: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = None
    if seconds is None and (raw := headers.get("retry-after")) is not None:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = _seconds_until(raw)
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds <= RETRY_AFTER_MAX:
        return None
    return seconds


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - datetime.now(timezone.utc)).total_seconds()


def backoff_seconds(attempt: int) -> float:
    """The wait before retry number ``attempt + 1`` when Stigg gave no usable hint."""
    return min(BACKOFF_BASE * 2 ** attempt, BACKOFF_CAP) * (1 - BACKOFF_JITTER * random.random())


# --- the client ---------------------------------------------------------------------------


class StiggClient:
    """Thread-safe: one pooled ``httpx.Client`` shared by every call and thread."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 5.0, budget: RequestBudget | None = None,
                 max_attempts: int = 3, *, budget_wait: float = DEFAULT_BUDGET_WAIT,
                 max_connections: int = 32, transport: httpx.BaseTransport | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.budget = budget
        self.max_attempts = max_attempts
        self.budget_wait = budget_wait
        # Connecting is fast when Stigg is up; a shorter connect timeout fails fast when
        # it is not, leaving the rest of the budget for slow answers.
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, max(0.5, timeout / 3)))
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"X-API-KEY": api_key, "Accept": "application/json"},
            timeout=self._timeout,
            # Sized so every worker thread keeps its own warm connection.
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=30.0),
            follow_redirects=False,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, *, budget: RequestBudget | None = None, max_attempts: int = 3,
                      timeout: float | None = None, budget_wait: float = DEFAULT_BUDGET_WAIT) -> StiggClient:
        from django.conf import settings

        from .budget import RequestBudget

        return cls(settings.STIGG_API_URL, settings.STIGG_API_KEY,
                   timeout=settings.STIGG_TIMEOUT_SECONDS if timeout is None else timeout,
                   budget=budget or RequestBudget.from_settings(), max_attempts=max_attempts,
                   budget_wait=budget_wait)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StiggClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the key
        return f"StiggClient({self.base_url!r})"

    # -- transport ------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 json_body: Any = None) -> dict[str, Any]:
        """One logical call: budget slot, attempt, retry transient failures. Returns the
        decoded JSON object of a 2xx answer."""
        last: StiggUnavailable | None = None
        for attempt in range(self.max_attempts):
            if attempt:
                assert last is not None
                wait = last.retry_after if last.retry_after is not None else backoff_seconds(attempt - 1)
                logger.info("retrying %s %s in %.2fs after: %s", method, path, wait, last)
                time.sleep(wait)
            if self.budget is not None:
                # Every attempt, retries included, spends budget: Stigg counts them all.
                self.budget.acquire(self.budget_wait)
            try:
                resp = self._http.request(method, path, params=params, json=json_body, timeout=self._timeout)
            except httpx.TimeoutException as exc:
                last = StiggUnavailable(f"Stigg timed out on {method} {path}: {type(exc).__name__}")
                continue
            except httpx.TransportError as exc:
                last = StiggUnavailable(f"could not reach Stigg for {method} {path}: {type(exc).__name__}: {exc}")
                continue
            if resp.is_success:
                return self._decode(resp, method, path)
            error = self._error(resp, method, path)
            if isinstance(error, StiggRequestError):
                raise error
            last = error
        assert last is not None
        logger.warning("giving up on %s %s after %d attempts: %s", method, path, self.max_attempts, last)
        raise last

    @staticmethod
    def _decode(resp: httpx.Response, method: str, path: str) -> dict[str, Any]:
        try:
            body = json.loads(resp.content)
        except ValueError:
            raise _malformed(f"{method} {path} answered {resp.status_code} with a body that is not JSON") from None
        if not isinstance(body, dict) or "data" not in body:
            raise _malformed(f"{method} {path} answered without a data envelope")
        return body

    @staticmethod
    def _error(resp: httpx.Response, method: str, path: str) -> StiggError:
        status = resp.status_code
        code: str | None = None
        message = ""
        try:
            body = json.loads(resp.content)
        except ValueError:  # proxies and load balancers answer in HTML or plain text
            body = None
        if isinstance(body, dict):
            code = body.get("code") if isinstance(body.get("code"), str) else None
            message = body.get("message") if isinstance(body.get("message"), str) else ""
        if not message:
            message = resp.text[:200].strip() or resp.reason_phrase
        text = f"Stigg answered {status} to {method} {path}: {code + ': ' if code else ''}{message}"
        should_retry = (resp.headers.get("x-should-retry") or "").strip().lower()
        if status == 403 and code == "GovernanceNotEnabled":
            return GovernanceNotEnabled(text, status=status, code=code)
        if should_retry == "false":
            # Stigg says a retry cannot help (e.g. its opaque 500 for an illegal move), so
            # later retries would not either: the request itself is at fault.
            return StiggRequestError(text, status=status, code=code)
        if should_retry == "true" or status in (408, 429) or status >= 500:
            return StiggUnavailable(text, status=status, retry_after=_retry_after(resp.headers))
        return StiggRequestError(text, status=status, code=code)

    def _get_one(self, path: str, parser: Callable[[dict[str, Any]], T], params: dict[str, Any] | None = None) -> T:
        body = self._request("GET", path, params=params)
        return _parse(parser, body["data"], path)

    def _paginate(self, path: str, parser: Callable[[dict[str, Any]], T],
                  params: dict[str, Any] | None = None) -> Iterator[T]:
        query: dict[str, Any] = {k: v for k, v in (params or {}).items() if v is not None}
        query["limit"] = PAGE_LIMIT
        seen: set[str] = set()
        while True:
            body = self._request("GET", path, params=query)
            try:
                items = _list(body["data"], "data")
                pagination = body.get("pagination")
                cursor = _opt_str(_obj(pagination, "pagination"), "next") if pagination is not None else None
            except _Malformed as exc:
                raise _malformed(f"{path}: {exc}") from None
            for item in items:
                yield _parse(parser, item, path)
            if not cursor:
                return
            if cursor in seen:  # a cursor that loops would page forever
                raise _malformed(f"{path}: pagination cursor repeats")
            seen.add(cursor)
            query["after"] = cursor

    # -- calls ----------------------------------------------------------------------------

    def iter_customers(self) -> Iterator[Customer]:
        return self._paginate("/api/v1/customers", _parse_customer)

    def get_customer(self, customer_id: str) -> Customer:
        return self._get_one(f"/api/v1/customers/{_q(customer_id)}", _parse_customer)

    def iter_subscriptions(self, customer_id: str | None = None, *, customer_ids: Sequence[str] = ()
                           ) -> Iterator[Subscription]:
        """One customer's subscriptions, several customers' at once (``customer_ids``,
        sent comma-joined: one call for a whole page of customers), or everyone's."""
        ids = [customer_id] if customer_id else list(customer_ids)
        return self._paginate("/api/v1/subscriptions", _parse_subscription,
                              {"customerId": ",".join(ids) if ids else None})

    def iter_customer_pages(self) -> Iterator[list[Customer]]:
        """Customers a page (up to 100) at a time, for work that goes page by page."""
        page: list[Customer] = []
        for customer in self.iter_customers():
            page.append(customer)
            if len(page) == PAGE_LIMIT:
                yield page
                page = []
        if page:
            yield page

    def iter_features(self) -> Iterator[Feature]:
        return self._paginate("/api/v1/features", _parse_feature)

    def iter_packages(self) -> Iterator[Package]:
        for kind, plural in (("plan", "plans"), ("addon", "addons")):
            for head in self._paginate(f"/api/v1/{plural}", lambda d: d):
                try:
                    package_id = _str(head, "id")
                    display_name, product_id = _str(head, "displayName"), _str(head, "productId")
                    status = _str(head, "status")
                    parent = _opt_str(head, "parentPlanId") if kind == "plan" else None
                except _Malformed as exc:
                    raise _malformed(f"/api/v1/{plural}: {exc}") from None
                # CREDIT entitlements (id = a currency) are not feature entitlements.
                path = f"/api/v1/{plural}/{_q(package_id)}/entitlements"
                entitlements = tuple(
                    _parse(_parse_package_entitlement, e, path)
                    for e in self._paginate(path, lambda d: d)
                    if (e.get("type") or "FEATURE") == "FEATURE"
                )
                yield Package(id=package_id, kind=kind, display_name=display_name, product_id=product_id,
                              status=status, parent_plan_id=parent, entitlements=entitlements)

    def customer_entitlements(self, customer_id: str) -> CustomerEntitlements:
        def parse(d: dict[str, Any]) -> CustomerEntitlements:
            items = [_obj(e, "entitlement") for e in _list(d.get("entitlements"), "entitlements")]
            # CREDIT entitlements have another shape; the dashboard shows features here.
            return CustomerEntitlements(
                access_denied_reason=_opt_str(d, "accessDeniedReason"),
                entitlements=tuple(_parse_entitlement(e) for e in items if (e.get("type") or "FEATURE") == "FEATURE"),
            )
        return self._get_one(f"/api/v1/customers/{_q(customer_id)}/entitlements", parse)

    def iter_promotions(self, customer_id: str, statuses: tuple[str, ...] = ("Active", "Expired")) -> Iterator[Promotion]:
        return self._paginate(f"/api/v1/customers/{_q(customer_id)}/promotional-entitlements", _parse_promotion,
                              {"status": ",".join(statuses) or None})

    def grant_promotions(self, customer_id: str, grants: list[PromotionGrant]) -> list[Promotion]:
        # Every key present, null when unset, exactly as Stigg's SDK sends them.
        items = [{
            "featureId": g.feature_id,
            "period": g.period,
            "customEndDate": _iso(g.custom_end_date) if g.custom_end_date else None,
            "usageLimit": g.usage_limit,
            "hasUnlimitedUsage": g.has_unlimited_usage,
            "hasSoftLimit": g.has_soft_limit,
            "isVisible": None,
            "enumValues": list(g.enum_values) if g.enum_values is not None else None,
            "resetPeriod": g.reset_period,
            "monthlyResetPeriodConfiguration": None,
            "weeklyResetPeriodConfiguration": None,
            "yearlyResetPeriodConfiguration": None,
        } for g in grants]
        path = f"/api/v1/customers/{_q(customer_id)}/promotional-entitlements"
        body = self._request("POST", path, json_body={"promotionalEntitlements": items})
        try:
            data = _list(body["data"], "data")
        except _Malformed as exc:
            raise _malformed(f"{path}: {exc}") from None
        return [_parse(_parse_promotion, item, path) for item in data]

    def revoke_promotion(self, customer_id: str, feature_id: str) -> Promotion:
        path = f"/api/v1/customers/{_q(customer_id)}/promotional-entitlements/{_q(feature_id)}"
        return _parse(_parse_promotion, self._request("DELETE", path)["data"], path)

    def usage_history(self, customer_id: str, feature_id: str, start: datetime, end: datetime | None = None,
                      group_by: str | None = None) -> UsageHistory:
        params = {"startDate": _iso(start), "endDate": _iso(end) if end else None, "groupBy": group_by}
        return self._get_one(f"/api/v1/usage/{_q(customer_id)}/history/{_q(feature_id)}", _parse_usage_history,
                             {k: v for k, v in params.items() if v is not None})

    def iter_governance(self, customer_id: str, feature_ids: tuple[str, ...] | list[str] = (),
                        currency_ids: tuple[str, ...] | list[str] = (), sort_by: str = "utilization",
                        order: str = "desc", min_utilization: float | None = None) -> Iterator[GovernanceNode]:
        return self._paginate(f"/api/v1-beta/customers/{_q(customer_id)}/governance", _parse_node, {
            "featureIds": ",".join(feature_ids) or None,
            "currencyIds": ",".join(currency_ids) or None,
            "sortBy": sort_by,
            "order": order,
            "minUtilization": min_utilization,
        })

    def iter_assignments(self, customer_id: str) -> Iterator[Assignment]:
        return self._paginate(f"/api/v1-beta/customers/{_q(customer_id)}/assignments", _parse_assignment)

    def upsert_assignment(self, customer_id: str, entity_id: str, feature_id: str, usage_limit: float | None,
                          cadence: str | None = None, scope_entity_ids: tuple[str, ...] | list[str] = ()) -> Assignment:
        item: dict[str, Any] = {"entityId": entity_id, "featureId": feature_id, "usageLimit": usage_limit,
                                "scopeEntityIds": list(scope_entity_ids)}
        if cadence is not None:  # left out, Stigg keeps the stored cadence
            item["cadence"] = cadence
        path = f"/api/v1-beta/customers/{_q(customer_id)}/assignments"
        body = self._request("PUT", path, json_body={"assignments": [item]})
        try:
            data = _list(body["data"], "data")
            if len(data) != 1:
                raise _Malformed(f"expected one assignment, got {len(data)}")
        except _Malformed as exc:
            raise _malformed(f"{path}: {exc}") from None
        return _parse(_parse_assignment, data[0], path)


def _q(path_id: str) -> str:
    """An id as one path segment: ids are customer-chosen and may hold '/' or '?'."""
    return quote(path_id, safe="")
