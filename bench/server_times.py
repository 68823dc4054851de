"""The web's own time per page, as it reports it on /metrics (dashboard/metrics.py: the
request histogram by view, method and status, summed over gunicorn's workers): read before
and after a run, the difference is that run's requests. Beside the time a client measured,
it says how much of that was the web at work and how much was waiting for it (a free
gunicorn thread, the network, the client itself)."""
from __future__ import annotations

import re

HISTOGRAM = "stiggadmin_http_request_duration_seconds"
# The scenarios' page kinds (bench/fault_load.py PAGE_KINDS) and their views' URL names (stiggadmin/urls.py).
VIEW_OF_KIND = {"overview": "overview", "customers": "customers", "customer": "customer",
                "governance": "customer-governance", "near-limit": "near-limit", "expiring": "promotions-expiring",
                "alerts": "alerts", "audit": "audit-log"}

Buckets = dict[float, float]  # a bucket's upper bound (seconds, inf for +Inf) -> requests at or under it

_SAMPLE = re.compile(rf"^{HISTOGRAM}_bucket\{{(.*)\}} (\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def page_histograms(text: str) -> dict[str, Buckets]:
    """Each view's GET requests (every status summed), from /metrics in Prometheus's text format."""
    found: dict[str, Buckets] = {}
    for labels_text, value in _SAMPLE.findall(text):
        labels = dict(_LABEL.findall(labels_text))
        if labels.get("method") != "GET" or "view" not in labels or "le" not in labels:
            continue
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        buckets = found.setdefault(labels["view"], {})
        buckets[le] = buckets.get(le, 0.0) + float(value)
    return found


def difference(after: dict[str, Buckets], before: dict[str, Buckets]) -> dict[str, Buckets]:
    """The requests counted between two readings, by view."""
    return {view: {le: n - before.get(view, {}).get(le, 0.0) for le, n in buckets.items()}
            for view, buckets in after.items()}


def merged(histograms: list[Buckets]) -> Buckets:
    total: Buckets = {}
    for buckets in histograms:
        for le, n in buckets.items():
            total[le] = total.get(le, 0.0) + n
    return total


def count(buckets: Buckets) -> int:
    return int(buckets.get(float("inf"), 0.0))


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q`` quantile in seconds, as Prometheus's histogram_quantile estimates it:
    linear within the bucket it falls in, and the highest finite bound when it falls past
    it. None when no request was counted."""
    total = count(buckets)
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in sorted(buckets):
        n = buckets[le]
        if n >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * ((rank - below) / (n - below) if n > below else 1.0)
        lower, below = le, n
    return lower
