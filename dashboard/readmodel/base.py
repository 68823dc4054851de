"""What every part of the read model shares: the Redis client, the key names, the
per-customer transaction and expiring locks."""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import redis

from .keys import DEFAULT_PREFIX, Keys

T = TypeVar("T")
log = logging.getLogger(__name__)

_MAX_WATCH_RETRIES = 20

# Compare-and-delete: release a lock only if it still holds our token.
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

# Compare-and-extend: keep a lock alive only while it still holds our token.
_RENEW_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass
class CustomerLock:
    """Held while a refresh runs; ``acquired`` says whether we got it."""

    key: str
    token: str
    acquired: bool = False
    _client: Any = field(default=None, repr=False)
    ttl: float = 0.0
    taken_at: float = field(default_factory=time.time)  # epoch seconds
    _stop: threading.Event | None = field(default=None, repr=False)

    def keep_alive(self) -> "CustomerLock":
        """Renew the lock every third of its TTL until it is released, from a daemon thread.
        So a refresh slowed down (a busy request budget, Stigg answering slowly) keeps its
        lock however long it takes, while a worker that dies stops renewing and the lock
        frees itself within one TTL: the TTL bounds how long a dead holder blocks, not how
        long a live one may work."""
        if self.acquired and self._stop is None:
            self._stop = threading.Event()
            threading.Thread(target=self._renew, args=(self._stop,), name=f"lock-renew {self.key}",
                             daemon=True).start()
        return self

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self.ttl / 3):
            try:
                if not self._client.eval(_RENEW_LOCK, 1, self.key, self.token, max(1, int(self.ttl * 1000))):
                    return  # lost (it expired while Redis was unreachable): nothing left to renew
            except redis.RedisError as exc:  # Redis away for a moment: try again next time
                log.warning("Could not renew lock %s: %s", self.key, exc)

    def release(self) -> bool:
        if self._stop is not None:
            self._stop.set()
        if not self.acquired:
            return False
        self.acquired = False
        return bool(self._client.eval(_RELEASE_LOCK, 1, self.key, self.token))


class Store:
    """The Redis client and key names; the parts of the read model build on this."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, owner_key: str = "accountOwner") -> None:
        # decode_responses is not assumed: values are decoded here, so any client works.
        self.r = client
        self.keys = Keys(prefix)
        # the customer metadata key naming its account owner (the near-limit owner filter)
        self.owner_key = owner_key

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    def _transaction(self, func: Callable[[Any], T], customer_id: str) -> T:
        """Run ``func`` under WATCH of the customer's own keys, retrying on a concurrent write.

        Only per-customer keys are watched: every write of a customer rewrites its document,
        so that alone detects a concurrent writer, without conflicts across customers."""
        watched = (self.keys.customer(customer_id), self.keys.members(customer_id))
        for _ in range(_MAX_WATCH_RETRIES):
            with self.r.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*watched)
                    result = func(pipe)
                    if pipe.explicit_transaction:
                        pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise RuntimeError(f"gave up writing customer {customer_id!r}: too many concurrent writes")

    def _acquire(self, key: str, ttl: float) -> CustomerLock:
        """SET NX PX with a random token: only its owner can release it (see CustomerLock)."""
        token = secrets.token_hex(16)
        got = self.r.set(key, token, nx=True, px=max(1, int(ttl * 1000)))
        return CustomerLock(key=key, token=token, acquired=bool(got), _client=self.r, ttl=ttl)
