"""{% budget_change_url customer_id entity_id capability scope %}: where a budget is changed
(or, without a capability, added). The URL is the product's interface:
/customers/<id>/governance/budget?entity=…&capability=…&scope=a,b"""
from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def budget_change_url(customer_id: str, entity_id: str, capability: str = "", scope: str | Iterable[Any] = "") -> str:
    query = {"entity": entity_id}
    if capability:
        query["capability"] = capability
    query["scope"] = scope if isinstance(scope, str) else ",".join(str(s) for s in scope)
    return f"{reverse('budget-change', args=[customer_id])}?{urlencode(query)}"
