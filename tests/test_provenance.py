"""Provenance: which source produces each effective entitlement value (stigg-api.md §5.4)."""
from __future__ import annotations

from datetime import datetime, timezone

from dashboard.provenance import explain_entitlement, resolve_plan_entitlement
from dashboard.stigg import (
    AddonQuantity, Entitlement, Package, PackageEntitlement, Promotion, Subscription,
)

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def pe(feature: str, limit: float | None = None, *, behavior: str = "Override", granted: bool = True,
       unlimited: bool = False, soft: bool = False, enum: tuple[str, ...] | None = None,
       reset: str | None = None) -> PackageEntitlement:
    return PackageEntitlement(feature, behavior, granted, limit, unlimited, soft, enum, reset)


def plan(pid: str, *ents: PackageEntitlement, parent: str | None = None, kind: str = "plan") -> Package:
    return Package(pid, kind, pid.title(), "prod", "PUBLISHED", parent, tuple(ents))


def sub(plan_id: str, *addons: tuple[str, int], status: str = "ACTIVE", sid: str = "sub-1") -> Subscription:
    return Subscription(sid, "c1", plan_id, status, None, T0, None, None, None, None, "PAID",
                        tuple(AddonQuantity(a, q) for a, q in addons))


def promo(feature: str, limit: float | None = None, *, status: str = "Active", unlimited: bool = False,
          enum: tuple[str, ...] | None = None, soft: bool = True) -> Promotion:
    return Promotion(f"promo-{feature}", feature, status, "1 month", T0, None, limit, unlimited, soft,
                     enum, "MONTH", T0)


def reported(feature: str, limit: float | None, *, unlimited: bool = False, granted: bool = True,
             ftype: str = "NUMBER") -> Entitlement:
    return Entitlement(feature, feature, ftype, granted, None, 3.0, limit, unlimited, "MONTH",
                       None, None, None, None)


def catalog(*packages: Package) -> dict[str, Package]:
    return {p.id: p for p in packages}


def test_it_names_the_plan_when_only_the_plan_grants():
    pkgs = catalog(plan("pro", pe("seats", 10, soft=True, reset="MONTH")))
    p = explain_entitlement("seats", reported("seats", 10), [sub("pro")], pkgs, [])
    assert p.label == "plan" and p.value == 10 and not p.inferred
    assert [w.id for w in p.winners] == ["pro"]
    assert p.soft_limit is True and p.reset_period == "MONTH"


def test_it_adds_an_increment_child_plan_to_its_parent():
    pkgs = catalog(plan("basic", pe("api", 100)), plan("pro", pe("api", 50, behavior="Increment"), parent="basic"))
    assert resolve_plan_entitlement("pro", "api", pkgs).usage_limit == 150
    p = explain_entitlement("api", reported("api", 150), [sub("pro")], pkgs, [])
    assert p.label == "plan" and p.value == 150


def test_it_replaces_the_parent_value_with_an_override_child_plan():
    pkgs = catalog(plan("basic", pe("api", 100)), plan("pro", pe("api", 40), parent="basic"))
    assert resolve_plan_entitlement("pro", "api", pkgs).usage_limit == 40


def test_it_inherits_a_feature_the_child_plan_does_not_mention():
    pkgs = catalog(plan("basic", pe("sso")), plan("pro", pe("api", 1), parent="basic"))
    p = explain_entitlement("sso", reported("sso", None, ftype="BOOLEAN"), [sub("pro")], pkgs, [])
    assert p.is_granted and p.label == "plan"


def test_it_survives_a_cycle_in_parent_plans():
    pkgs = catalog(plan("a", pe("api", 1), parent="b"), plan("b", pe("api", 2, behavior="Increment"), parent="a"))
    assert resolve_plan_entitlement("a", "api", pkgs) is not None


def test_it_multiplies_addons_by_quantity_and_adds_them_to_the_plan():
    pkgs = catalog(plan("pro", pe("seats", 10)), plan("extra", pe("seats", 5), kind="addon"))
    p = explain_entitlement("seats", reported("seats", 25), [sub("pro", ("extra", 3))], pkgs, [])
    assert p.label == "plan + add-on" and p.value == 25
    addon = [s for s in p.sources if s.kind == "addon"][0]
    assert addon.value == 15 and addon.quantity == 3


def test_it_names_the_addon_alone_when_the_plan_lacks_the_feature():
    pkgs = catalog(plan("pro", pe("seats", 10)), plan("ai", pe("tokens", 1000), kind="addon"))
    p = explain_entitlement("tokens", reported("tokens", 2000), [sub("pro", ("ai", 2))], pkgs, [])
    assert p.label == "add-on" and p.value == 2000


def test_it_names_the_promotion_when_it_is_most_generous():
    pkgs = catalog(plan("pro", pe("api", 100, soft=False, reset="DAY")))
    p = explain_entitlement("api", reported("api", 500), [sub("pro")], pkgs, [promo("api", 500)])
    assert p.label == "promotion" and p.value == 500
    assert p.soft_limit is True and p.reset_period == "MONTH"  # from the winning promotion


def test_it_keeps_the_plan_when_the_promotion_is_less_generous():
    pkgs = catalog(plan("pro", pe("api", 100)))
    p = explain_entitlement("api", reported("api", 100), [sub("pro")], pkgs, [promo("api", 50)])
    assert p.label == "plan" and {s.kind for s in p.sources} == {"plan", "promotion"}


def test_it_keeps_the_plan_on_a_tie_with_a_promotion():
    pkgs = catalog(plan("pro", pe("api", 100)))
    p = explain_entitlement("api", reported("api", 100), [sub("pro")], pkgs, [promo("api", 100)])
    assert p.label == "plan"


def test_it_ignores_expired_promotions_and_inactive_subscriptions():
    pkgs = catalog(plan("pro", pe("api", 100)), plan("ent", pe("api", 9999)))
    subs = [sub("pro"), sub("ent", status="CANCELED", sid="old")]
    p = explain_entitlement("api", reported("api", 100), subs, pkgs, [promo("api", 5000, status="Expired")])
    assert p.label == "plan" and p.value == 100 and [s.id for s in p.sources] == ["pro"]


def test_it_lets_an_unlimited_source_win():
    pkgs = catalog(plan("pro", pe("api", 100)))
    p = explain_entitlement("api", reported("api", None, unlimited=True), [sub("pro")], pkgs,
                            [promo("api", unlimited=True)])
    assert p.label == "promotion" and p.unlimited and p.value is None


def test_it_counts_a_trial_as_the_plan():
    pkgs = catalog(plan("pro", pe("api", None, unlimited=True)))
    p = explain_entitlement("api", reported("api", None, unlimited=True), [sub("pro", status="IN_TRIAL")], pkgs,
                            [promo("api", 10**9)])
    assert p.label == "plan" and p.unlimited


def test_it_unions_enum_values_across_sources():
    pkgs = catalog(plan("pro", pe("region", enum=("us", "eu"))), plan("apac", pe("region", enum=("ap",)), kind="addon"))
    p = explain_entitlement("region", reported("region", None, ftype="ENUM"), [sub("pro", ("apac", 1))], pkgs,
                            [promo("region", enum=("eu", "sa"))])
    assert p.enum_values == ("us", "eu", "ap", "sa")


def test_it_infers_an_override_when_sources_cannot_explain_the_value():
    pkgs = catalog(plan("pro", pe("api", 100)), plan("extra", pe("api", 10), kind="addon"))
    p = explain_entitlement("api", reported("api", 777), [sub("pro", ("extra", 1))], pkgs, [promo("api", 50)])
    assert p.label == "override" and p.inferred and p.value == 777
    assert p.winners[0].kind == "override"


def test_it_infers_an_override_when_stigg_grants_what_no_source_grants():
    p = explain_entitlement("beta", reported("beta", None, ftype="BOOLEAN"), [sub("pro")],
                            catalog(plan("pro", pe("api", 1))), [])
    assert p.label == "override" and p.is_granted


def test_it_reports_none_for_a_denied_feature_without_sources():
    denied = Entitlement("beta", "Beta", "BOOLEAN", False, "NoFeatureEntitlementInSubscription",
                         None, None, False, None, None, None, None, None)
    p = explain_entitlement("beta", denied, [sub("pro")], catalog(plan("pro")), [])
    assert p.label == "none" and not p.is_granted and not p.inferred


def test_it_keeps_the_plan_label_when_an_addon_grants_only_a_boolean():
    pkgs = catalog(plan("pro", pe("sso")), plan("sec", pe("sso"), kind="addon"))
    p = explain_entitlement("sso", reported("sso", None, ftype="BOOLEAN"), [sub("pro", ("sec", 1))], pkgs, [])
    assert p.label == "plan"


def test_it_names_every_source_that_adds_an_enum_value():
    pkgs = catalog(plan("pro", pe("support", enum=("priority",))))
    p = explain_entitlement("support", None, [sub("pro")], pkgs, [promo("support", enum=("priority", "dedicated"))])
    assert p.enum_values == ("priority", "dedicated")
    # the plan's "priority" is also in the promotion: only the promotion adds something
    assert p.label == "promotion" and [w.kind for w in p.winners] == ["promotion"]
    both = explain_entitlement("support", None, [sub("pro")], pkgs, [promo("support", enum=("dedicated",))])
    assert both.label == "plan + promotion" and [w.kind for w in both.winners] == ["plan", "promotion"]
    same = explain_entitlement("support", None, [sub("pro")], pkgs, [promo("support", enum=("priority",))])
    assert same.label == "plan"  # a promotion granting only what the plan grants changes nothing
