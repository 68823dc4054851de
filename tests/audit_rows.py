"""Audit rows for the audit log's tests, written straight into the table (the rows are the
fixture; the page reads them over HTTP)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from django.contrib.auth import get_user_model

from dashboard.models import AuditEntry

T = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
GRANT = {"feature": "api-calls", "limit": 1000, "unlimited": False, "soft_limit": False, "reset_period": "MONTH",
         "enum_values": [], "period": "1 month", "end_date": "2026-12-20T12:00:00+00:00"}


def record(**values: Any) -> AuditEntry:
    """One row: a budget change by cassie on acme at T unless told otherwise."""
    username = values.pop("username", "cassie")
    user = get_user_model().objects.get_or_create(username=username)[0]
    fields = {"at": T, "user": user, "username": username, "customer_id": "acme",
              "action": AuditEntry.Action.BUDGET_CHANGE, "entity_id": "research", "capability": "api-calls",
              "scope": [], "before": {"limit": 10, "cadence": "P1W", "scope": []},
              "after": {"limit": 25, "cadence": "P1W", "scope": []}, "reason": "launch week", "ticket": "",
              "stigg_status": 200, "stigg_answer": '{"ok": true}', "outcome": AuditEntry.Outcome.DONE,
              "idempotency_key": uuid.uuid4(), **values}
    return AuditEntry.objects.create(**fields)


def grant(**values: Any) -> AuditEntry:
    return record(**{"action": AuditEntry.Action.PROMOTION_GRANT, "entity_id": "", "capability": "api-calls",
                     "before": None, "after": dict(GRANT), **values})


def many(count: int, *, start: datetime = T, same_time_every: int = 1, **values: Any) -> list[AuditEntry]:
    """``count`` rows, one a minute back from ``start``, ``same_time_every`` rows sharing each minute."""
    return [record(at=start - timedelta(minutes=i // same_time_every), reason=f"row {i}", **values)
            for i in range(count)]
