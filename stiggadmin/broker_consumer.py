"""The Celery worker's consumer, made to survive the loss of a Redis broker while busy
(settings.CELERY_WORKER_CONSUMER).

With Celery 5.7 and kombu 5.7, a worker whose Redis broker goes away while it holds an
unacknowledged message — every busy worker does, with acks_late — exits with
"Unrecoverable error: AttributeError('NoneType' object has no attribute 'hostname')"
instead of reconnecting (seen in bench/bench_faults.py; tests/test_worker_broker_loss.py).
After the connection error Celery first collects the connection, which detaches its
transport, and then (new in 5.7) closes it again: that second close reaches the channel
once more, drops its Redis connection pool and tries to put the unacknowledged messages
back through the detached transport. The AttributeError is not a connection error, so it
escapes and ends the worker; had it been caught, the task still running would crash the
worker a moment later, acknowledging its message on that channel.

So the second close is skipped: the collect has already closed the connection's sockets
(what the close was for), and the channel keeps a pool, so the running task's late
acknowledgement reaches the broker once it is back (or fails as a connection error,
which Celery logs and survives). Unacknowledged messages stay in the broker's
unacknowledged set, from which the visibility timeout returns them."""
from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer


def _skip() -> None:
    """Stands for the lost connection's close (see the module docstring)."""


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> Any:
        if self.connection is not None:
            self.connection.close = _skip  # this connection object only; the next one is new
        return super().on_connection_error_after_connected(exc)
