"""What the bulk grant tests share: a catalog and customers in the module's emulator, read
into the app's read model, and the steps a person takes through the pages (Django's test
client): select rows, choose, dry run, confirm."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse

from dashboard import sync, tasks
from dashboard.models import BulkBatch
from dashboard.stigg import StiggClient

from . import emulator_world as w

PLAN_LIMIT = 1000
CUSTOMERS = 24  # more than the policy's batch size (20)


def build(emulator, rm) -> dict[str, Any]:
    """API calls (metered, 1,000 a month on the plan) and SSO (on/off, not on the plan);
    CUSTOMERS customers on that plan, the first three at 90 % of their limit."""
    e = emulator
    calls = w.feature(e, "NUMBER", displayName="API calls", featureUnits="call",
                      featureUnitsPlural="calls")
    sso = w.feature(e, "BOOLEAN", metered=False, displayName="SSO")
    plan = w.plan(e, w.product(e), [{"id": calls, "usageLimit": PLAN_LIMIT, "resetPeriod": "MONTH"}])
    cids = []
    for n in range(CUSTOMERS):
        cid = w.customer(e, name=f"Bulk Co {n + 1:02d}")
        w.subscribe(e, cid, plan)
        if n < 3:
            w.report_usage(e, cid, calls, 900)
        cids.append(cid)
    client = StiggClient(e.url, e.key, timeout=10)
    sync.refresh_catalog(client, rm)
    for cid in cids:
        assert sync.refresh_customer(client, rm, cid, discover=True)
    return {"emu": e, "rm": rm, "calls": calls, "sso": sso, "cids": cids, "client": client}


@pytest.fixture(scope="module")
def world(emulator, app_read_model):
    """The module's world (build), with the job at its fastest (fast_job)."""
    fast = fast_job()
    built = build(emulator, app_read_model)
    yield built
    built["client"].close()
    fast.disable()


@pytest.fixture
def fresh(world):
    """The world with no promotion left for its first six customers, and no fault."""
    reset(world, world["cids"][:6])
    yield world
    world["emu"].clear_faults()


def fast_job():
    """The job's share of the request rate, at its most for tests: 20 requests a second
    (the default STIGG_MAX_RPS); the task code's clients are built again with it."""
    fast = override_settings(BULK_GRANT_RATE=20.0)
    fast.enable()
    tasks._clients.clear()
    return fast


def reset(world: dict[str, Any], cids: list[str]) -> None:
    """No promotion left for these customers, in the emulator and the read model."""
    e = world["emu"]
    e.clear_faults()
    for cid in cids:
        for p in promotions(world, cid, "Active,Expired"):
            e.data("DELETE", f"/api/v1/customers/{cid}/promotional-entitlements/{p['featureId']}")
        assert sync.refresh_customer(world["client"], world["rm"], cid, discover=True)


def promotions(world: dict[str, Any], cid: str, status: str = "Active") -> list[dict[str, Any]]:
    return world["emu"].data("GET", f"/api/v1/customers/{cid}/promotional-entitlements",
                             params={"status": status})


def token_of(response) -> str:
    return re.search(r'name="token" value="([0-9a-f-]{36})"', response.content.decode()).group(1)


def batch_of(response) -> BulkBatch:
    assert response.status_code == 302, response.content.decode()[:2000]
    return BulkBatch.objects.get(pk=int(re.fullmatch(r"/bulk/(\d+)/", response.url).group(1)))


def select(client, world: dict[str, Any], cids: list[str], feature: str | None = None, **choice: Any):
    """Tick these customers' rows on the near-limit view, then choose (default: raise to
    5,000 for 1 month). Returns the choice form's answer and the dry run's."""
    rows = [json.dumps([cid, feature or world["calls"]]) for cid in cids]
    form = client.post(reverse("bulk-select"), {"row": rows})
    data = {"row": rows, "dry_run": "1", "amount": "to", "limit": "5000", "period": "1 month",
            "reason": "Quarter-end crunch", "ticket": "T-100", "token": token_of(form), **choice}
    return form, client.post(reverse("bulk-select"), data)


def ticked(client, batch: BulkBatch) -> list[int]:
    """The row ids the dry run page ticks."""
    page = client.get(reverse("bulk-batch", args=[batch.pk])).content.decode()
    return [int(pk) for pk in re.findall(r'name="row" value="(\d+)" checked', page)]


def confirm(client, batch: BulkBatch, rows: list[int] | None = None):
    return client.post(reverse("bulk-batch", args=[batch.pk]), {"row": ticked(client, batch) if rows is None else rows})
