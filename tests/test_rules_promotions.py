"""The promotion rules: end dates, the generous-rule preview and its warnings (pure)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dashboard.rules import promotions as rules
from dashboard.rules.promotions import Grant
from dashboard.stigg import Feature

from .test_provenance import catalog, pe, plan, promo, reported, sub

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)
API = Feature("api", "API calls", "NUMBER", "INCREMENTAL", True, "call", "calls")
SSO = Feature("sso", "SSO", "BOOLEAN", "None", False, None, None)
TIER = Feature("tier", "Support tier", "ENUM", "None", False, None, None)
PKGS = catalog(plan("pro", pe("api", 1000, reset="MONTH"), pe("sso", granted=True), pe("tier", enum=("priority",))),
               plan("free", pe("api", 100, reset="MONTH")), plan("addon-api", pe("api", 500), kind="addon"))


def preview(grant: Grant, feature: Feature = API, *, promotions=(), usage: float | None = 800.0, subs=None,
            stigg_says=None):
    return rules.preview(grant, feature=feature, reported=stigg_says, usage=usage,
                         subscriptions=subs if subs is not None else [sub("pro")], packages=PKGS,
                         promotions=list(promotions), now=NOW)


@pytest.mark.parametrize("period, end", [
    ("1 week", datetime(2026, 2, 7, 12, tzinfo=timezone.utc)),
    ("1 month", datetime(2026, 2, 28, 12, tzinfo=timezone.utc)),  # clamped to February's last day
    ("6 month", datetime(2026, 7, 31, 12, tzinfo=timezone.utc)),
    ("1 year", datetime(2027, 1, 31, 12, tzinfo=timezone.utc)),
    ("lifetime", None),
])
def test_it_ends_a_grant_by_its_period(period, end):
    assert rules.end_of(period, NOW) == end


def test_a_custom_period_ends_on_its_date_and_an_unknown_period_is_an_error():
    when = datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert rules.end_of("custom", NOW, when) == when
    with pytest.raises(ValueError):
        rules.end_of("fortnight", NOW)


def test_a_bigger_limit_wins_and_the_usage_bar_moves():
    p = preview(Grant("api", "1 month", limit=4000))
    assert (p.before.value, p.before.label) == (1000, "plan")
    assert (p.after.value, p.after.label) == (4000, "promotion")
    # a winning grant that never resets counts all usage ever, which the read model does not hold
    assert p.utilization_before == pytest.approx(0.8) and p.usage_after is None and "never resets" in p.usage_note
    assert p.utilization_after is None
    assert p.warnings == () and not p.changes_nothing
    assert p.ends == datetime(2026, 2, 28, 12, tzinfo=timezone.utc)


def test_a_winning_grant_that_resets_from_its_start_counts_usage_from_zero():
    p = preview(Grant("api", "1 month", limit=4000, reset_period="MONTH"))
    assert (p.usage, p.usage_after, p.utilization_after) == (800, 0, 0) and "counts from 0" in p.usage_note
    calendar = preview(Grant("api", "1 month", limit=4000, reset_period="MONTH", reset_anchor="StartOfTheMonth"))
    assert calendar.usage_after == 800 and calendar.utilization_after == pytest.approx(0.2)
    losing = preview(Grant("api", "1 month", limit=900, reset_period="MONTH"))  # the plan still wins
    assert losing.usage_after == 800 and losing.usage_note == ""


def test_it_warns_when_the_plan_already_gives_more():
    p = preview(Grant("api", "1 month", limit=900))
    assert p.changes_nothing and p.after.value == 1000 and p.after.label == "plan"
    assert "changes nothing" in p.warnings[0].text and "1,000 calls" in p.warnings[0].text


def test_plan_and_add_ons_together_are_what_the_plan_gives():
    subs = [sub("pro", ("addon-api", 2))]  # 1,000 + 2 × 500
    assert preview(Grant("api", "1 month", limit=1500), subs=subs).changes_nothing
    assert not preview(Grant("api", "1 month", limit=2500), subs=subs).changes_nothing


def test_it_warns_when_it_replaces_an_active_promotion_and_says_what_is_lost():
    old = promo("api", 5000)
    p = preview(Grant("api", "1 week", limit=2000), promotions=[old])
    assert (p.before.value, p.before.label) == (5000, "promotion")
    assert (p.after.value, p.after.label) == (2000, "promotion")
    assert p.replaced == old
    [replaces] = [w for w in p.warnings if w.kind == "replaces"]
    assert "5,000 calls" in replaces.text and "lost" in replaces.text


def test_replacing_a_bigger_promotion_warns_that_the_customer_gets_less():
    p = preview(Grant("api", "1 month", limit=900), promotions=[promo("api", 5000, soft=False)])
    assert (p.before.value, p.after.value) == (5000, 1000)
    kinds = [w.kind for w in p.warnings]
    assert "less" in kinds and "nothing" not in kinds and p.takes_away
    assert "5,000 calls → 1,000 calls" in next(w.text for w in p.warnings if w.kind == "less")
    fewer = preview(Grant("tier", "1 month", enum_values=("a",)), TIER, usage=None,
                    promotions=[promo("tier", enum=("dedicated",))])
    assert fewer.takes_away and not fewer.changes_nothing


def test_an_expired_promotion_is_replaced_without_a_warning_and_grants_nothing_before():
    p = preview(Grant("api", "1 month", limit=3000), promotions=[promo("api", 9000, status="Expired")])
    assert p.before.value == 1000 and p.after.value == 3000 and p.warnings == ()


def test_it_warns_about_lifetime_and_unusually_large_grants():
    kinds = {w.kind for w in preview(Grant("api", "lifetime", limit=10_001)).warnings}
    assert kinds == {"lifetime", "large"}
    assert not any(w.kind == "large" for w in preview(Grant("api", "1 month", limit=10_000)).warnings)
    assert any(w.kind == "large" for w in preview(Grant("api", "1 month", unlimited=True)).warnings)


def test_nothing_is_large_when_the_plan_gives_no_number():
    plan_alone = rules.explain_entitlement("api", None, [sub("free")], PKGS, ())
    assert rules.is_unusually_large(Grant("api", "1 month", limit=1001), plan_alone)  # > 10 × 100
    no_plan = rules.explain_entitlement("api", None, [], PKGS, ())
    assert not rules.is_unusually_large(Grant("api", "1 month", limit=10**9), no_plan)


def test_unlimited_wins_and_has_no_utilization():
    p = preview(Grant("api", "1 month", unlimited=True))
    assert p.after.unlimited and p.after.label == "promotion" and p.utilization_after is None


def test_a_boolean_grant_gives_access_or_changes_nothing():
    p = preview(Grant("sso", "1 month"), SSO, subs=[sub("free")], usage=None)
    assert (p.before.is_granted, p.after.is_granted, p.after.label) == (False, True, "promotion")
    assert preview(Grant("sso", "1 month"), SSO, usage=None).changes_nothing  # pro grants it already


def test_enum_values_add_to_the_plan_and_a_value_the_plan_has_changes_nothing():
    p = preview(Grant("tier", "1 month", enum_values=("dedicated",)), TIER, usage=None)
    assert p.after.enum_values == ("priority", "dedicated") and p.after.label == "plan + promotion"
    assert preview(Grant("tier", "1 month", enum_values=("priority",)), TIER, usage=None).changes_nothing


def test_an_override_stigg_reports_stays_unless_the_grant_beats_it():
    stigg_says = reported("api", 7000)  # no source explains 7,000: a subscription override
    small = preview(Grant("api", "1 month", limit=5000), stigg_says=stigg_says)
    assert small.before.label == "override" and small.after.value == 7000 and small.changes_nothing
    big = preview(Grant("api", "1 month", limit=8000), stigg_says=stigg_says)
    assert big.after.value == 8000 and big.after.label == "promotion"


def test_a_grant_is_sent_with_only_what_its_type_takes():
    req = Grant("api", "custom", end_date=NOW, limit=5, soft_limit=True, reset_period="MONTH",
                reset_anchor="StartOfTheMonth").request()
    assert (req.usage_limit, req.has_unlimited_usage, req.has_soft_limit, req.custom_end_date) == (5, None, True, NOW)
    assert (req.reset_period, req.reset_anchor, req.enum_values) == ("MONTH", "StartOfTheMonth", None)
    assert Grant("api", "1 month", limit=5, unlimited=True).request().usage_limit is None
    assert Grant("api", "1 month", end_date=NOW).request().custom_end_date is None


def test_an_extension_keeps_the_values_of_the_promotion():
    old = promo("api", 5000, soft=True)
    grant = rules.grant_of(old, "1 year")
    assert (grant.limit, grant.soft_limit, grant.reset_period, grant.period) == (5000, True, "MONTH", "1 year")
    assert rules.promotion_json(old)["limit"] == 5000 and grant.as_json(NOW)["end_date"] == "2027-01-31T12:00:00+00:00"
