"""Defensive parsing of Stigg's answers into the typed values of ``types``.

Stigg's answers are parsed field by field; anything missing or of the wrong type raises
StiggRequestError, so a KeyError/TypeError never escapes into a task or a view. The
underscored names are internal to the ``stigg`` package: the client uses them, nobody
else should.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from .errors import StiggRequestError
from .types import (
    AddonQuantity,
    Assignment,
    Customer,
    Entitlement,
    EntityType,
    EnumOption,
    Feature,
    GovernanceNode,
    Package,
    PackageCredit,
    PackageEntitlement,
    Promotion,
    Subscription,
    UsageHistory,
    UsagePoint,
    UsageSeries,
)

T = TypeVar("T")


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


def _parse_package_credit(d: dict[str, Any]) -> PackageCredit:
    return PackageCredit(currency_id=_str(d, "id"), amount=_opt_num(d, "amount"), cadence=_opt_str(d, "cadence"))


def _parse_package(head: dict[str, Any], kind: str, entitlements: list[Any]) -> Package:
    """A plan or add-on (``kind``) from its listed head and the items of its entitlements
    list: FEATURE items are feature entitlements, CREDIT items (id = a currency) credit
    grants; an item of another type is left out."""
    features, credits = [], []
    for item in entitlements:
        e = _obj(item, "entitlement")
        kind_of = _opt_str(e, "type") or "FEATURE"
        if kind_of == "FEATURE":
            features.append(_parse_package_entitlement(e))
        elif kind_of == "CREDIT":
            credits.append(_parse_package_credit(e))
    return Package(
        id=_str(head, "id"), kind=kind, display_name=_str(head, "displayName"), product_id=_str(head, "productId"),
        status=_str(head, "status"), parent_plan_id=_opt_str(head, "parentPlanId") if kind == "plan" else None,
        entitlements=tuple(features), credits=tuple(credits),
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
        created_at=_dt(d, "createdAt"), reset_anchor=_reset_anchor(d),
    )


def _reset_anchor(d: dict[str, Any]) -> str | None:
    config = d.get("resetPeriodConfiguration")
    if config is None:
        return None
    return _opt_str(_obj(config, "resetPeriodConfiguration"), "accordingTo")


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


def _parse_entity_type(d: dict[str, Any]) -> EntityType:
    if d.get("attributionKeys") is None:
        raise _Malformed("attributionKeys is missing")
    return EntityType(
        id=_str(d, "id"), display_name=_str(d, "displayName"), description=_opt_str(d, "description"),
        attribution_keys=_strs(d, "attributionKeys"), created_at=_dt(d, "createdAt"), updated_at=_dt(d, "updatedAt"),
    )


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
