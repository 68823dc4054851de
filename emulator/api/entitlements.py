"""Customer entitlement routes (stigg-api.md §5): the effective entitlements and the v1
check. The generous rule and the check decision are domain/entitlements.py; the v1-beta
check with dimensions is a governance route (api/governance.py)."""
from __future__ import annotations

from .. import store
from ..domain.entitlements import effective_entitlements, evaluate_feature
from ..http import Request, Response, bad_input, ok, route


@route("GET", "/api/v1/customers/{id}/entitlements")
def list_entitlements(req: Request) -> Response:
    return ok(effective_entitlements(store.conn(), req.params["id"], req.arg("resourceId") or None))


@route("GET", "/api/v1/customers/{id}/entitlements/check")
def check_entitlement(req: Request) -> Response:
    feature_id, currency_id = req.arg("featureId"), req.arg("currencyId")
    if bool(feature_id) == bool(currency_id):
        raise bad_input("Send exactly one of featureId or currencyId")
    if currency_id:
        raise bad_input("Credit entitlements are not emulated; check a featureId")  # Inferred
    requested = req.arg_number("requestedUsage", 1.0)
    if requested is not None and requested < 0:
        raise bad_input("requestedUsage must not be negative")
    values = req.arg_list("requestedValues")
    result = evaluate_feature(store.conn(), req.params["id"], feature_id, resource_id=req.arg("resourceId") or None,
                              requested_usage=requested, requested_values=values)
    return ok(result)
