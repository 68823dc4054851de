"""Governance → Entity types: the kinds of entity (team, user, agent…) this Stigg
environment governs, as the last sweep read them with the catalog."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .. import tasks
from ..codec import load_all
from ..stigg import EntityType
from .common import frame, page_login_required, render_page


@page_login_required
@require_GET
def entity_types(request: HttpRequest) -> HttpResponse:
    rm = tasks.read_model()
    cat = rm.catalog()
    types = load_all(EntityType, cat.entity_types.values()) if cat is not None else []
    context = {
        **frame(rm),
        "types": sorted(types, key=lambda t: (t.display_name.casefold(), t.id)),
        # None: not read from Stigg yet; False: Stigg said governance is not enabled
        "governance_enabled": cat.governance_enabled if cat is not None else None,
        "fetched_at": cat.fetched_at if cat is not None else None,
    }
    return render_page(request, "dashboard/entity_types.html", context)
