"""The approvals' own Celery task, apart from tasks.py: the actions use tasks.py (the read
model, the client, queued refreshes), so tasks.py does not import them back."""
from __future__ import annotations

from celery import shared_task

from .actions import bulk
from .actions.approvals import expire_due


@shared_task(ignore_result=True)
def expire_grant_requests() -> int:
    """Grant requests and bulk grants nobody decided on in time lapse (beat, every 10 minutes)."""
    return expire_due() + bulk.expire_due()
