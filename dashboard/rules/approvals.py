"""Which grants need a second pair of eyes (issue 10): the approval policy, pure.

A grant needs approval by another user of the "Customer success lead" group when it is
lifetime, lasts longer than ``max_days``, gives more than ``large_factor`` × what the plan
(and add-ons) give, or is part of a bulk batch of more than ``batch_size`` customers. The
policy's numbers are settings (``APPROVAL_*``); ``Policy.from_settings`` reads them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..provenance import Provenance
from .promotions import Grant, end_of, is_unusually_large


@dataclass(frozen=True)
class Policy:
    lifetime: bool = True  # lifetime grants need approval
    max_days: int = 90  # longer than this needs approval
    large_factor: float = 10.0  # more than this × the plan needs approval (0: never for size)
    batch_size: int = 20  # bulk batches of more customers than this need approval
    expiry_hours: int = 72  # a request nobody decided on lapses after this long

    @classmethod
    def from_settings(cls) -> Policy:
        from django.conf import settings

        return cls(settings.APPROVAL_LIFETIME, settings.APPROVAL_MAX_DAYS, settings.APPROVAL_LARGE_FACTOR,
                   settings.APPROVAL_BATCH_SIZE, settings.APPROVAL_EXPIRY_HOURS)


def approval_reasons(grant: Grant, plan: Provenance, now: datetime, policy: Policy, batch: int = 1
                     ) -> tuple[str, ...]:
    """Why this grant needs approval, in words (empty: it does not). ``plan``: what the
    subscriptions alone give the customer (rules.promotions.Preview.plan)."""
    reasons = []
    end = end_of(grant.period, now, grant.end_date)
    if end is None:
        if policy.lifetime:
            reasons.append("it is lifetime")
    elif end - now > timedelta(days=policy.max_days):
        reasons.append(f"it lasts longer than {policy.max_days} days")
    if policy.large_factor and is_unusually_large(grant, plan, policy.large_factor):
        reasons.append(f"it gives more than {policy.large_factor:g}× what the plan gives")
    size = batch_reason(batch, policy)
    if size:
        reasons.append(size)
    return tuple(reasons)


def batch_reason(customers: int, policy: Policy) -> str | None:
    """Why a bulk grant to this many customers needs approval (None: it does not)."""
    if customers > policy.batch_size:
        return f"it is part of a bulk grant to more than {policy.batch_size} customers"
    return None


def expires_at(requested_at: datetime, policy: Policy) -> datetime:
    return requested_at + timedelta(hours=policy.expiry_hours)
