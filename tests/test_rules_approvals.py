"""The approval policy (pure): each trigger, and none for an ordinary grant."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard.provenance import explain_entitlement
from dashboard.rules.approvals import Policy, approval_reasons, expires_at
from dashboard.rules.promotions import Grant

from .test_rules_promotions import PKGS
from .test_provenance import sub

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
PLAN = explain_entitlement("api", None, [sub("pro")], PKGS, ())
POLICY = Policy()


def why(grant: Grant, batch: int = 1, policy: Policy = POLICY) -> tuple[str, ...]:
    return approval_reasons(grant, PLAN, NOW, policy, batch)


def test_an_ordinary_grant_needs_no_approval():
    assert why(Grant("api", "1 month", limit=5000)) == ()
    assert why(Grant("api", "custom", end_date=NOW + timedelta(days=90), limit=10_000)) == ()


def test_each_trigger():
    assert why(Grant("api", "lifetime", limit=5000)) == ("it is lifetime",)
    assert why(Grant("api", "6 month", limit=5000)) == ("it lasts longer than 90 days",)
    assert why(Grant("api", "custom", end_date=NOW + timedelta(days=90, seconds=1), limit=1)) == (
        "it lasts longer than 90 days",)
    assert why(Grant("api", "1 month", limit=10_001)) == ("it gives more than 10× what the plan gives",)
    assert why(Grant("api", "1 month", unlimited=True)) == ("it gives more than 10× what the plan gives",)
    assert why(Grant("api", "1 week", limit=5), batch=21) == ("it is part of a bulk grant to more than 20 customers",)
    assert why(Grant("api", "1 week", limit=5), batch=20) == ()
    assert len(why(Grant("api", "lifetime", unlimited=True), batch=50)) == 3


def test_the_policy_numbers_are_settings(settings):
    settings.APPROVAL_LIFETIME, settings.APPROVAL_MAX_DAYS = False, 400
    settings.APPROVAL_LARGE_FACTOR, settings.APPROVAL_BATCH_SIZE, settings.APPROVAL_EXPIRY_HOURS = 100, 5, 24
    policy = Policy.from_settings()
    assert why(Grant("api", "lifetime", limit=50_000), policy=policy) == ()
    assert why(Grant("api", "1 year", limit=100_001), batch=6, policy=policy) == (
        "it gives more than 100× what the plan gives", "it is part of a bulk grant to more than 5 customers")
    assert expires_at(NOW, policy) == NOW + timedelta(hours=24)
    settings.APPROVAL_LARGE_FACTOR = 0  # size alone never needs approval
    assert why(Grant("api", "1 month", unlimited=True), policy=Policy.from_settings()) == ()
