"""python manage.py rebuild_read_model — empty the read model and fill it again from Stigg."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.core.management.base import BaseCommand

from dashboard import sync
from dashboard.ratelimit import RequestRateLimiter
from dashboard.readmodel import ReadModel
from dashboard.stigg import StiggClient, StiggError


class Command(BaseCommand):
    help = "Delete every read-model key and rebuild it from Stigg (no Celery needed)."

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=8, help="parallel refreshes (the request rate limit still applies)")

    def handle(self, *args, threads: int, **opts):
        rm = ReadModel.from_settings()
        client = StiggClient.from_settings(rate_limiter=RequestRateLimiter.from_settings())
        started = time.monotonic()
        removed = rm.clear()
        self.stdout.write(f"Cleared {removed} keys")
        sync.refresh_catalog(client, rm)
        ids = [c.id for c in client.iter_customers()]
        self.stdout.write(f"Refreshing {len(ids)} customers with {threads} threads ...")
        failed = 0
        with ThreadPoolExecutor(max(1, threads)) as pool:
            futures = {pool.submit(sync.refresh_customer, client, rm, cid, discover=True): cid for cid in ids}
            for done, future in enumerate(as_completed(futures), 1):
                try:
                    future.result()
                except StiggError as exc:
                    failed += 1
                    rm.mark_customer_error(futures[future], str(exc), sync.now())
                if done % 500 == 0 or done == len(ids):
                    self.stdout.write(f"  {done}/{len(ids)} ({failed} failed)")
        self.stdout.write(f"Rebuilt in {time.monotonic() - started:.1f}s; {failed} customers failed")
