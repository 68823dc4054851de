"""The near-limit CSV as a worker built it (export_tasks.py, nearlimit_csv.py): the file
of every row at or above 80 %, and of each account owner's rows, gzip-compressed, ready
to send. Replaced whole (written aside, then renamed over the last one), so a reader gets
one build, never half of two."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from redis.client import NEVER_DECODE

from .base import Store
from .values import epoch

EVERY_OWNER = ""  # the body of every row, whoever owns its account


@dataclass(frozen=True)
class CsvSnapshot:
    at: datetime  # when the build began reading the rows
    body: bytes  # the file, gzip-compressed; b"" for an owner with no row in it


class CsvSnapshots(Store):
    def write_near_limit_csv(self, at: datetime, bodies: Mapping[str, bytes]) -> None:
        """Replace the snapshot: ``bodies`` by account owner (EVERY_OWNER: every row)."""
        staging, pipe = self.keys.near_csv(staging=True), self.r.pipeline(transaction=False)
        pipe.delete(staging)
        pipe.hset(staging, "at", repr(epoch(at)))
        for owner, body in bodies.items():
            pipe.hset(staging, "body:" + owner, body)
        pipe.rename(staging, self.keys.near_csv())
        pipe.execute()

    def near_limit_csv_built_at(self) -> datetime | None:
        """When the last snapshot began reading its rows (None: none was built)."""
        at = self.r.hget(self.keys.near_csv(), "at")
        return _time(at) if at is not None else None

    def near_limit_csv(self, owner: str | None = None) -> CsvSnapshot | None:
        """The last snapshot's file of ``owner``'s rows (None: every row; an owner with no
        row: b""), or None when no snapshot was built."""
        at, body = self.r.execute_command("HMGET", self.keys.near_csv(), "at", "body:" + (owner or EVERY_OWNER),
                                          **{NEVER_DECODE: True})
        if at is None:
            return None
        return CsvSnapshot(_time(at), body or b"")


def _time(at: str | bytes) -> datetime:
    """The stored "at" (epoch seconds) as a time."""
    return datetime.fromtimestamp(float(at), timezone.utc)
