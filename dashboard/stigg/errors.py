"""The errors every Stigg call may raise.

Two kinds, so a caller knows what to do: ``StiggRequestError`` (the request was wrong,
or the answer was malformed: never retried) and ``StiggUnavailable`` (Stigg is down,
slow, throttling or erroring: retry later, after ``retry_after`` seconds when Stigg said
so). The other two narrow them: ``GovernanceNotEnabled`` is a request error a caller
may expect, and ``RateLimitExhausted`` is our own request-rate limiter, not Stigg,
saying wait.

The request-rate limiter (``dashboard.ratelimit``) raises these errors, so this module
imports nothing of the project.
"""
from __future__ import annotations


class StiggError(Exception):
    """Base of the two errors below."""


class StiggRequestError(StiggError):
    """The request was wrong (4xx other than 408/429), or Stigg's answer could not be
    understood. Retrying the same call will not help."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


class StiggUnavailable(StiggError):
    """Stigg could not answer now: connection error, timeout, 408, 429 or 5xx, or our
    request-rate limiter has no slot (or no Redis). ``retry_after`` is the hint in
    seconds, if any."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class RateLimitExhausted(StiggUnavailable):
    """Our own request-rate limiter, not Stigg, says wait: no slot within the allowed wait.
    Not Stigg's failure, so it never marks a customer as failing; retry after
    ``retry_after`` seconds."""


class GovernanceNotEnabled(StiggRequestError):
    """Governance is switched off for this Stigg environment (403 GovernanceNotEnabled)."""
