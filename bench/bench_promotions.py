"""Promotions benchmark (issue 9): the grant form and its preview, and the expiring list.

Fills a read model in its own redis-server with 10,000 customers (bench_read_model's
documents and catalog), ``--promoted`` of them with one to three promotions ending over the
next 90 days (some lifetime, some expired), and the audit log with a grant row for each of
those promotions plus ``--audit`` other rows; then times through Django's full request
handling (as bench_pages.py), p50 / p95 over ``--requests`` requests each:

- the grant form (GET), its preview (POST: the generous rule, before → after, warnings) for
  a metered, an enum and a boolean feature, and a preview with bad input;
- `/promotions/expiring` (14 days, 90 days, a later page).

    .venv/bin/python bench/bench_promotions.py [--requests 200]

Everything runs on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import say  # noqa: E402
from bench.harness import django_here, say_header, signed_in_client, time_page, time_requests  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

PERIODS = ("1 week", "1 month", "6 month", "1 year", "custom")


def promotions_for(rnd: random.Random, now: datetime) -> list:
    from dashboard.stigg import Promotion

    out = []
    for feature in rnd.sample(("api", "seats", "region", "sso", "storage"), rnd.randint(1, 3)):
        start = now - timedelta(days=rnd.uniform(0, 60))
        lifetime = rnd.random() < 0.15
        end = None if lifetime else now + timedelta(days=rnd.uniform(-10, 90))
        status = "Active" if end is None or end > now else "Expired"
        limit = {"api": 50_000, "seats": 40, "storage": 500}.get(feature)
        out.append(Promotion(f"promo-{uuid.uuid4()}", feature, status, "lifetime" if lifetime else rnd.choice(PERIODS),
                             start, end, limit, False, False, ("eu",) if feature == "region" else None,
                             "MONTH" if feature == "api" else None, start))
    return out


def fill(rm, customers: int, promoted: int, seed: int = 7) -> list[tuple[str, str, datetime]]:
    """The fleet, each customer owned by one of bench_read_model's 12 account owners in turn;
    returns (customer, feature, start) of every promotion written."""
    from bench.bench_read_model import OWNERS, customer_document

    rnd = random.Random(seed)
    now = datetime.now(timezone.utc)
    chosen = set(rnd.sample(range(customers), promoted))
    written = []
    for i in range(customers):
        promos = promotions_for(rnd, now) if i in chosen else []
        doc, governance = customer_document(i, rnd, {"accountOwner": OWNERS[i % len(OWNERS)]}, promotions=promos)
        rm.write_customer(doc, governance)
        written += [(doc["id"], p.feature_id, p.start_date) for p in promos]
    return written


def fill_audit(written: list[tuple[str, str, datetime]], others: int) -> None:
    from django.contrib.auth import get_user_model

    from dashboard.models import AuditEntry

    users = [get_user_model().objects.create_user(f"csm-{i}") for i in range(10)]
    rnd = random.Random(11)

    def row(customer: str, feature: str, at: datetime, action: str) -> AuditEntry:
        user = rnd.choice(users)
        return AuditEntry(at=at, user=user, username=user.username, customer_id=customer, action=action,
                          capability=feature, after={"feature": feature, "limit": 5000, "period": "1 month"},
                          reason="Quota incident: extra for the rest of the period", ticket="https://help.test/t/1",
                          stigg_status=200, stigg_answer="{}", outcome="done", idempotency_key=uuid.uuid4())

    rows = [row(c, f, at, "promotion.grant") for c, f, at in written]
    now = datetime.now(timezone.utc)
    rows += [row(f"cust-{rnd.randrange(10_000):05d}", rnd.choice(("api", "seats")),
                 now - timedelta(days=rnd.uniform(0, 365)), rnd.choice(("promotion.grant", "budget.change")))
             for _ in range(others)]
    AuditEntry.objects.bulk_create(rows, batch_size=2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--promoted", type=int, default=2_000, help="customers with promotions")
    parser.add_argument("--audit", type=int, default=20_000, help="other audit rows")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-promotions-")
    server = RedisServer()
    try:
        django_here(server.url, tmp)
        from django.contrib.auth.models import Group

        from bench.bench_read_model import PACKAGES_ALL
        from dashboard import tasks
        from dashboard.codec import dump
        from tests.test_read_model import FEATURES, T0

        rm = tasks.read_model()
        rm.ensure_layout()
        rm.write_catalog(dump(list(FEATURES.values())), dump(list(PACKAGES_ALL.values())), T0, entity_types=None)
        t0 = time.perf_counter()
        written = fill(rm, args.customers, args.promoted)
        fill_audit(written, args.audit)
        now = datetime.now(timezone.utc)
        in_14 = rm.expiring(now, now + timedelta(days=14), 0, 1).total
        say(f"filled {args.customers:,} customers, {len(written):,} promotions ({in_14:,} ending within 14 days), "
            f"{len(written) + args.audit:,} audit rows in {time.perf_counter() - t0:.1f} s")
        browser = signed_in_client()
        from django.contrib.auth import get_user_model

        get_user_model().objects.get(username="bench").groups.add(Group.objects.get(name="Customer success"))
        customer = "cust-00042"
        base = f"/customers/{customer}/promotions/new"

        def preview(feature: str, **fields: str):
            data = {"feature": feature, "period": "1 month", "reason": "Quota incident", "ticket": "",
                    "token": str(uuid.uuid4()), **fields}

            def send():
                return browser.post(f"{base}?feature={feature}", data), f"POST {base}?feature={feature}"
            return send

        say_header("grant form and preview (server time)", args.requests)
        time_page("grant form (GET, metered feature)", browser, lambda: f"{base}?feature=api", {}, args.requests)
        time_page("grant form, htmx (the modal's fragment)", browser, lambda: f"{base}?feature=api",
                  {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-body"}, args.requests)
        time_requests("preview: metered, 10x the plan, lifetime", preview("api", limit="50000", period="lifetime",
                                                                           reset_period="MONTH"), args.requests)
        time_requests("preview: enum values", preview("region", enum_values="eu"), args.requests)
        time_requests("preview: boolean", preview("sso"), args.requests)
        time_requests("preview: bad input (a negative limit)", preview("api", limit="-5"), args.requests)
        say_header("/promotions/expiring (server time)", args.requests)
        time_page("next 14 days, page 1", browser, lambda: "/promotions/expiring", {}, args.requests)
        time_page("next 90 days, page 1", browser, lambda: "/promotions/expiring?days=90", {}, args.requests)
        time_page("next 90 days, page 5", browser, lambda: "/promotions/expiring?days=90&page=5", {}, args.requests)
        say(f"(in the 90-day window: {rm.expiring(now, now + timedelta(days=90), 0, 1).total:,} promotions)")
        from bench.bench_read_model import OWNERS

        csm = signed_in_client("bench-csm", account_owner=OWNERS[3])
        get_user_model().objects.get(username="bench-csm").groups.add(Group.objects.get(name="Customer success"))
        say_header(f"/promotions/expiring, My accounts ({OWNERS[3]}: 1 customer in {len(OWNERS)})", args.requests)
        time_page("My accounts, next 14 days, page 1", csm, lambda: "/promotions/expiring", {}, args.requests)
        time_page("My accounts, next 90 days, page 1", csm, lambda: "/promotions/expiring?days=90", {}, args.requests)
        time_page("My accounts, next 90 days, page 2", csm, lambda: "/promotions/expiring?days=90&page=2", {},
                  args.requests)
        time_page("every account (mine=0), next 14 days", csm, lambda: "/promotions/expiring?mine=0", {},
                  args.requests)
        say(f"(theirs in the 90-day window: "
            f"{rm.expiring(now, now + timedelta(days=90), 0, 1, owner=OWNERS[3]).total:,} promotions)")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
