"""The emulator's notion of now, and Stigg's timestamp format.

The clock can be moved forward at run time (``POST /_emulator/clock``), so tests and
demos can cross a reset boundary or a promotion's end date without waiting.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

_state = threading.local()


def set_request_offset(seconds: float) -> None:
    """Pin the clock offset for this request, read once from the control state."""
    _state.offset = seconds


def now() -> datetime:
    from datetime import timedelta

    return datetime.now(timezone.utc) + timedelta(seconds=getattr(_state, "offset", 0.0))


def iso(value: datetime | None) -> str | None:
    """UTC with milliseconds and a Z, e.g. 2025-06-01T12:00:00.000Z (Inferred format)."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; naive values are taken as UTC. Raises ValueError."""
    if not isinstance(text, str) or not text:
        raise ValueError("not a timestamp")
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
