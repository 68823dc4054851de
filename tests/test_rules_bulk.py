"""The bulk grant's own rules (pure): how much each row gets from one choice, which rows
the dry run ticks, when a batch needs a lead, and what undo may revoke."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from dashboard.provenance import explain_entitlement
from dashboard.rules import bulk as rules
from dashboard.rules.approvals import Policy, approval_reasons
from dashboard.rules.bulk import Amount, RowError
from dashboard.rules.promotions import Grant

from .test_provenance import catalog, pe, plan, promo, sub
from .test_rules_promotions import API, PKGS, SSO, TIER, preview

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)
PLAN = explain_entitlement("api", None, [sub("pro")], PKGS, ())  # 1,000 a month
NO_PLAN = explain_entitlement("api", None, [], PKGS, ())
UNLIMITED = explain_entitlement("api", None, [sub("big")],
                                catalog(plan("big", pe("api", unlimited=True, reset="MONTH"))), ())


def test_a_limit_is_raised_to_a_number_or_by_a_percentage_of_the_plan():
    assert rules.limit_for(Amount("to", 5000), PLAN) == (5000, False)
    assert rules.limit_for(Amount("percent", percent=50), PLAN) == (1500, False)
    assert rules.limit_for(Amount("percent", percent=33.3), PLAN) == (1333, False)  # rounded up to whole
    assert rules.limit_for(Amount("unlimited"), PLAN) == (None, True)


@pytest.mark.parametrize("plan_value", [NO_PLAN, UNLIMITED])
def test_a_percentage_needs_a_number_from_the_plan(plan_value):
    with pytest.raises(RowError, match="a percentage of it is not a limit"):
        rules.limit_for(Amount("percent", percent=50), plan_value)


def test_each_feature_type_takes_what_it_can():
    metered = rules.grant_for(Amount("to", 5000), feature=API, plan=PLAN, period="1 month", reset_period="WEEK")
    assert (metered.limit, metered.unlimited, metered.reset_period) == (5000, False, "WEEK")
    on = rules.grant_for(None, feature=SSO, plan=PLAN, period="1 week")
    assert (on.limit, on.unlimited, on.reset_period, on.period) == (None, False, None, "1 week")
    with pytest.raises(RowError, match="SSO is on or off: it takes no limit"):
        rules.grant_for(Amount("to", 5), feature=SSO, plan=PLAN, period="1 week")
    with pytest.raises(RowError, match="API calls is a number: give a limit"):
        rules.grant_for(None, feature=API, plan=PLAN, period="1 week")
    with pytest.raises(RowError, match="choice of values: grant it from the customer page"):
        rules.grant_for(Amount("to", 5), feature=TIER, plan=PLAN, period="1 week")
    unmetered = replace(API, metered=False)
    assert rules.grant_for(Amount("to", 5), feature=unmetered, plan=PLAN, period="1 week",
                           reset_period="MONTH").reset_period is None


def test_rows_that_change_nothing_or_take_something_away_are_not_ticked():
    assert rules.ticked_by_default(preview(Grant("api", "1 month", limit=5000, reset_period="MONTH")))
    assert not rules.ticked_by_default(preview(Grant("api", "1 month", limit=500, reset_period="MONTH")))  # nothing
    bigger = promo("api", 8000)
    less = preview(Grant("api", "1 month", limit=5000, reset_period="MONTH"), promotions=[bigger])
    assert less.takes_away and not rules.ticked_by_default(less)


def test_a_batch_needs_a_lead_for_any_rows_reason_or_its_size():
    policy = Policy(batch_size=3)
    lifetime = approval_reasons(Grant("api", "lifetime", limit=5000), PLAN, NOW, policy)
    plain = approval_reasons(Grant("api", "1 month", limit=5000), PLAN, NOW, policy)
    assert rules.batch_reasons([plain, plain], 2, policy) == ()
    assert rules.batch_reasons([plain, lifetime, lifetime], 3, policy) == ("a row is lifetime",)
    assert rules.batch_reasons([plain] * 4, 4, policy) == ("it is part of a bulk grant to more than 3 customers",)
    large = approval_reasons(Grant("api", "1 month", limit=20_000), PLAN, NOW, policy)
    assert rules.batch_reasons([large, lifetime], 4, policy) == (
        "a row gives more than 10× what the plan gives", "a row is lifetime",
        "it is part of a bulk grant to more than 3 customers")


def test_undo_revokes_only_the_promotion_the_batch_granted():
    ours = replace(promo("api", 5000), id="p-batch")
    assert rules.undo_skip("p-batch", ours) is None
    assert "replaced since" in rules.undo_skip("p-batch", replace(ours, id="p-newer"))
    assert "no promotion for this feature any more" in rules.undo_skip("p-batch", None)
    assert "already ended" in rules.undo_skip("p-batch", replace(ours, status="Expired"))
    assert "did not say which promotion" in rules.undo_skip("", ours)  # unknown: never revoked blindly


def test_a_rows_grant_in_words():
    assert rules.grant_words(Grant("api", "1 month", limit=5000), API, NOW) == "5,000 calls for 1 month"
    assert rules.grant_words(Grant("api", "lifetime", unlimited=True), API, NOW) == "unlimited, lifetime (no end date)"
    end = datetime(2027, 4, 1, tzinfo=timezone.utc)  # the end of 2027-03-31, as the forms give it
    assert rules.grant_words(Grant("sso", "custom", end_date=end), SSO, NOW) == "on until 2027-03-31"
    assert rules.grant_words(Grant("api", "1 week", limit=1), API, NOW - timedelta(days=1)) == "1 call for 1 week"
