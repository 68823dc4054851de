"""What every page's frame shows beyond its own context: the nav's count of open alerts."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from django.http import HttpRequest

NAV_COUNT_CAP = 99  # past it the nav's badge says "99+"; /alerts/ gives the exact number


def alerts(request: HttpRequest) -> dict[str, Callable[[], int] | int]:
    """The count of alerts needing attention, for signed-in people: of their accounts for a
    user who owns accounts (what /alerts/ opens on: My accounts), every one otherwise. A
    callable, so the queries run only when a template shows it (the nav), never for an htmx
    partial."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"open_alert_count": 0, "nav_count_cap": NAV_COUNT_CAP}

    def count() -> int:
        from .models import Alert, account_owner_of
        from .rules.my_accounts import my_accounts
        from .views.alerts import needs_attention

        found: Any = Alert.objects.filter(needs_attention(datetime.now(timezone.utc)))
        mine = my_accounts(None, account_owner_of(request.user)).owner_filter
        # Counted up to NAV_COUNT_CAP + 1 (the nav says "99+"): at 100,000 customers ~60,000
        # alerts are open, and counting them all cost every page ~13 ms (bench_scale.py).
        return (found.filter(account_owner=mine) if mine else found)[:NAV_COUNT_CAP + 1].count()

    return {"open_alert_count": count, "nav_count_cap": NAV_COUNT_CAP}
