"""Celery beat's scheduler, saying in one warning line that the broker is unreachable
(settings.CELERY_BEAT_SCHEDULER).

Celery's own scheduler logs every scheduled task it cannot send with a stack dump and a
traceback: with a Redis broker restarting (which, in the default set-up, is the Redis
of the read model too) that is a traceback every few seconds for an outage nothing can
fix from here, and beat sends again by itself once the broker is back. Any other failure
to send is still logged as Celery logs it."""
from __future__ import annotations

import logging
from typing import Any

import redis
from celery.beat import PersistentScheduler, SchedulingError
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)

BROKER_UNREACHABLE = (OperationalError, redis.ConnectionError, redis.TimeoutError, OSError)


class Scheduler(PersistentScheduler):
    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:
            cause = exc.__context__
            if isinstance(cause, BROKER_UNREACHABLE):
                log.warning("Scheduler: %s not sent, the broker is unreachable: %s", entry.name, cause)
            else:
                log.error("Scheduler: %s not sent: %s", entry.name, exc, exc_info=True)
        else:
            log.info("Scheduler: sent due task %s (%s)", entry.name, entry.task)
