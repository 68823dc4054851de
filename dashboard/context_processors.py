"""What every page's frame shows beyond its own context: the nav's count of open alerts."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from django.http import HttpRequest


def alerts(request: HttpRequest) -> dict[str, Callable[[], int] | int]:
    """The count of alerts needing attention, for signed-in people. A callable, so the one
    indexed COUNT runs only when a template shows it (the nav), never for an htmx partial."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"open_alert_count": 0}

    def count() -> int:
        from .models import Alert
        from .views.alerts import needs_attention

        return Alert.objects.filter(needs_attention(datetime.now(timezone.utc))).count()

    return {"open_alert_count": count}
