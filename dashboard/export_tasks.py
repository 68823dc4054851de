"""The exports' own Celery task, apart from tasks.py (which is long enough): the
near-limit CSV as the view opens, built whole for the download to send at once
(nearlimit_csv.py)."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from celery import shared_task
from django.conf import settings

from .nearlimit_csv import snapshot_bodies
from .tasks import ReadModelTask, read_model

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, base=ReadModelTask)
def snapshot_near_limit_csv() -> dict:
    """Build the near-limit CSV snapshot (beat, every NEAR_LIMIT_CSV_SNAPSHOT_SECONDS): one
    build at a time; one that outlasts the interval is not joined by another."""
    interval = settings.NEAR_LIMIT_CSV_SNAPSHOT_SECONDS
    if interval <= 0:
        return {"skipped": "snapshots are off (NEAR_LIMIT_CSV_SNAPSHOT_SECONDS=0)"}
    rm = read_model()
    lock = rm.acquire_sweep_lock(max(interval * 4, 300.0), what="near-csv")
    if not lock.acquired:
        return {"skipped": "a build is still running"}
    try:
        started, at = time.monotonic(), datetime.now(timezone.utc)
        bodies, rows = snapshot_bodies(rm, at)
        rm.write_near_limit_csv(at, bodies)
    finally:
        lock.release()
    outcome = {"rows": rows, "owners": len(bodies) - 1, "bytes": sum(map(len, bodies.values())),
               "seconds": round(time.monotonic() - started, 3)}
    log.info("Near-limit CSV snapshot built: %s", outcome)
    return outcome
