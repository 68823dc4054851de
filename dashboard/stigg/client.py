"""StiggClient: one method per Stigg call the product needs.

Each call has an explicit timeout, returns small typed values (``types``), iterates
pagination for the caller, and raises one of two errors (``errors``): the request was
wrong, or Stigg is unavailable. Retries, backoff and the rate-limit slot live in
``transport``; reading Stigg's answers in ``parsing``.

    client = StiggClient.from_settings(rate_limiter=RequestRateLimiter.from_settings())
                                                  # base URL, key, timeout from settings
    client.iter_customers() -> Iterator[Customer]
    client.get_customer(customer_id) -> Customer
    client.iter_subscriptions(customer_id=None) -> Iterator[Subscription]   (None: every customer)
    client.iter_features() -> Iterator[Feature]
    client.iter_packages() -> Iterator[Package]   plans and add-ons, each with its feature entitlements
                                                  and credit grants (currencies)
    client.customer_entitlements(customer_id) -> CustomerEntitlements
    client.iter_promotions(customer_id, statuses=("Active", "Expired")) -> Iterator[Promotion]
    client.grant_promotions(customer_id, grants: list[PromotionGrant]) -> list[Promotion]
    client.revoke_promotion(customer_id, feature_id) -> Promotion
    client.usage_history(customer_id, feature_id, start, end=None, group_by=None) -> UsageHistory
    client.iter_entity_types() -> Iterator[EntityType]
                           (raises GovernanceNotEnabled, a StiggRequestError, on 403 GovernanceNotEnabled)
    client.iter_governance(customer_id, feature_ids=(), currency_ids=(), sort_by="utilization",
                           order="desc", min_utilization=None) -> Iterator[GovernanceNode]
                           (raises GovernanceNotEnabled, a StiggRequestError, on 403 GovernanceNotEnabled)
    client.iter_assignments(customer_id) -> Iterator[Assignment]
    client.upsert_assignment(customer_id, entity_id, feature_id, usage_limit, cadence=None,
                             scope_entity_ids=(), *, currency_id=None, timeout=None, attempts=None) -> Assignment
                             (feature_id None with currency_id for a currency budget)
    client.close()
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import quote

import httpx

from .parsing import (
    _iso,
    _list,
    _Malformed,
    _malformed,
    _obj,
    _opt_str,
    _parse,
    _parse_assignment,
    _parse_customer,
    _parse_entity_type,
    _parse_entitlement,
    _parse_feature,
    _parse_node,
    _parse_package,
    _parse_promotion,
    _parse_subscription,
    _parse_usage_history,
    _str,
)
from .transport import DEFAULT_RATE_LIMIT_WAIT, RateLimiter, StiggTransport
from .types import (
    Assignment,
    Customer,
    CustomerEntitlements,
    EntityType,
    Feature,
    GovernanceNode,
    Package,
    Promotion,
    PromotionGrant,
    Subscription,
    UsageHistory,
)

T = TypeVar("T")

PAGE_LIMIT = 100  # Stigg's maximum page size: fewest requests per list


class StiggClient:
    """Thread-safe: one pooled ``httpx.Client`` shared by every call and thread."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 5.0, rate_limiter: RateLimiter | None = None,
                 max_attempts: int = 3, *, rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT,
                 max_connections: int = 32, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._transport = StiggTransport(self.base_url, api_key, timeout, rate_limiter, max_attempts,
                                         rate_limit_wait=rate_limit_wait, max_connections=max_connections,
                                         transport=transport)

    @classmethod
    def from_settings(cls, *, rate_limiter: RateLimiter, max_attempts: int = 3, timeout: float | None = None,
                      rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT) -> StiggClient:
        """A client for the configured Stigg. ``rate_limiter`` is required, so no client
        built from settings can bypass the shared request rate (``dashboard.ratelimit``)."""
        from django.conf import settings

        return cls(settings.STIGG_API_URL, settings.STIGG_API_KEY,
                   timeout=settings.STIGG_TIMEOUT_SECONDS if timeout is None else timeout,
                   rate_limiter=rate_limiter, max_attempts=max_attempts, rate_limit_wait=rate_limit_wait)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> StiggClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the key
        return f"StiggClient({self.base_url!r})"

    # -- one answer, or every page of a list -------------------------------------------------

    def _get_one(self, path: str, parser: Callable[[dict[str, Any]], T], params: dict[str, Any] | None = None) -> T:
        body = self._transport.request("GET", path, params=params)
        return _parse(parser, body["data"], path)

    def _paginate(self, path: str, parser: Callable[[dict[str, Any]], T],
                  params: dict[str, Any] | None = None) -> Iterator[T]:
        query: dict[str, Any] = {k: v for k, v in (params or {}).items() if v is not None}
        query["limit"] = PAGE_LIMIT
        seen: set[str] = set()
        while True:
            body = self._transport.request("GET", path, params=query)
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

    def check_reachable(self) -> None:
        """One request that proves Stigg answers, and accepts our key: the first feature of
        the first page (for /healthz). Raises what any call raises."""
        self._transport.request("GET", "/api/v1/features", params={"limit": 1})

    def iter_features(self) -> Iterator[Feature]:
        return self._paginate("/api/v1/features", _parse_feature)

    def iter_packages(self) -> Iterator[Package]:
        for kind, plural in (("plan", "plans"), ("addon", "addons")):
            for head in self._paginate(f"/api/v1/{plural}", lambda d: d):
                try:
                    package_id = _str(head, "id")
                except _Malformed as exc:
                    raise _malformed(f"/api/v1/{plural}: {exc}") from None
                path = f"/api/v1/{plural}/{_q(package_id)}"
                entitlements = list(self._paginate(f"{path}/entitlements", lambda d: d))
                yield _parse(lambda h: _parse_package(h, kind, entitlements), head, path)

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

    def grant_promotions(self, customer_id: str, grants: list[PromotionGrant], *, timeout: float | None = None,
                         attempts: int | None = None) -> list[Promotion]:
        """Grant (or replace: one record per feature, §6) promotional entitlements.
        ``timeout``/``attempts``: see StiggTransport.request."""
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
            **_reset_configuration(g.reset_period, g.reset_anchor),
        } for g in grants]
        path = f"/api/v1/customers/{_q(customer_id)}/promotional-entitlements"
        body = self._transport.request("POST", path, json_body={"promotionalEntitlements": items}, timeout=timeout,
                                       attempts=attempts)
        try:
            data = _list(body["data"], "data")
        except _Malformed as exc:
            raise _malformed(f"{path}: {exc}") from None
        return [_parse(_parse_promotion, item, path) for item in data]

    def revoke_promotion(self, customer_id: str, feature_id: str, *, timeout: float | None = None,
                         attempts: int | None = None) -> Promotion:
        path = f"/api/v1/customers/{_q(customer_id)}/promotional-entitlements/{_q(feature_id)}"
        body = self._transport.request("DELETE", path, timeout=timeout, attempts=attempts)
        return _parse(_parse_promotion, body["data"], path)

    def usage_history(self, customer_id: str, feature_id: str, start: datetime, end: datetime | None = None,
                      group_by: str | None = None) -> UsageHistory:
        params = {"startDate": _iso(start), "endDate": _iso(end) if end else None, "groupBy": group_by}
        return self._get_one(f"/api/v1/usage/{_q(customer_id)}/history/{_q(feature_id)}", _parse_usage_history,
                             {k: v for k, v in params.items() if v is not None})

    def iter_entity_types(self) -> Iterator[EntityType]:
        return self._paginate("/api/v1-beta/entity-types", _parse_entity_type)

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

    def upsert_assignment(self, customer_id: str, entity_id: str, feature_id: str | None, usage_limit: float | None,
                          cadence: str | None = None, scope_entity_ids: tuple[str, ...] | list[str] = (), *,
                          currency_id: str | None = None, timeout: float | None = None,
                          attempts: int | None = None) -> Assignment:
        """Create or update one budget (§9.3), keyed by entity, feature or currency, and scope.
        ``usageLimit`` is always sent (None = unlimited but tracked); a cadence left out is
        kept by Stigg. ``parentId`` is never sent, so the entity stays where it is in the
        hierarchy. ``timeout``/``attempts``: see StiggTransport.request."""
        if (feature_id is None) == (currency_id is None):
            raise ValueError("an assignment has a feature id or a currency id, exactly one")
        item: dict[str, Any] = {"entityId": entity_id, "usageLimit": usage_limit,
                                "scopeEntityIds": list(scope_entity_ids)}
        if feature_id is not None:
            item["featureId"] = feature_id
        else:
            item["currencyId"] = currency_id
        if cadence is not None:  # left out, Stigg keeps the stored cadence
            item["cadence"] = cadence
        path = f"/api/v1-beta/customers/{_q(customer_id)}/assignments"
        body = self._transport.request("PUT", path, json_body={"assignments": [item]}, timeout=timeout,
                                       attempts=attempts)
        try:
            data = _list(body["data"], "data")
            if len(data) != 1:
                raise _Malformed(f"expected one assignment, got {len(data)}")
        except _Malformed as exc:
            raise _malformed(f"{path}: {exc}") from None
        return _parse(_parse_assignment, data[0], path)


RESET_CONFIGURATION_KEYS = {"MONTH": "monthlyResetPeriodConfiguration", "WEEK": "weeklyResetPeriodConfiguration",
                            "YEAR": "yearlyResetPeriodConfiguration"}


def _reset_configuration(reset_period: str | None, anchor: str | None) -> dict[str, Any]:
    """The three *ResetPeriodConfiguration keys, all sent as the SDK does: the one matching
    the reset period carries the anchor (§5.3), the others null."""
    keys = dict.fromkeys(RESET_CONFIGURATION_KEYS.values())
    if anchor and reset_period in RESET_CONFIGURATION_KEYS:
        keys[RESET_CONFIGURATION_KEYS[reset_period]] = {"accordingTo": anchor}
    return keys


def _q(path_id: str) -> str:
    """An id as one path segment: ids are customer-chosen and may hold '/' or '?'."""
    return quote(path_id, safe="")
