"""Forms for the pages' query strings: bad input becomes a message, never a 500."""
from __future__ import annotations

from django import forms

# Stigg's subscription statuses, in the order people think of them.
STATUSES = (
    ("ACTIVE", "Active"), ("IN_TRIAL", "In trial"), ("PAYMENT_PENDING", "Payment pending"),
    ("NOT_STARTED", "Not started"), ("CANCELED", "Canceled"), ("EXPIRED", "Expired"),
)
SORTS = (("name", "Name"), ("utilization", "Highest utilization"))
PAGE_SIZE = 50
MAX_OFFSET = 1_000_000


class CustomerFilter(forms.Form):
    q = forms.CharField(required=False, max_length=200, strip=True, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "id, name or email",
                                                      "autocomplete": "off"}))
    plan = forms.ChoiceField(required=False, label="Plan")
    status = forms.ChoiceField(required=False, label="Status", choices=(("", "Any status"), *STATUSES))
    sort = forms.ChoiceField(required=False, label="Sort by", choices=SORTS)
    offset = forms.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET, widget=forms.HiddenInput)

    def __init__(self, data, plans: list[tuple[str, str]]) -> None:
        super().__init__(data)
        self.fields["plan"].choices = [("", "Any plan"), *plans]

    def values(self) -> dict:
        """The filters to apply: the valid fields, defaults for the invalid ones."""
        cleaned = getattr(self, "cleaned_data", {})
        return {
            "search": cleaned.get("q") or "",
            "plan": cleaned.get("plan") or None,
            "status": cleaned.get("status") or None,
            "sort": cleaned.get("sort") or "name",
            "offset": cleaned.get("offset") or 0,
        }


ORDERS = (("utilization", "Utilization"), ("usage", "Usage"))
VIEWS = (("tree", "Tree"), ("ranked", "Ranked list"))
SCOPES = (("all", "All budgets"), ("node-wide", "Node-wide"), ("scoped", "Scoped"))
MAX_OPEN = 200  # opened nodes kept in a link; more is not a tree anyone reads


class GovernanceFilter(forms.Form):
    """The governance page's query: order, view and filters (names kept for scripts)."""

    order = forms.ChoiceField(required=False, label="Order by", choices=ORDERS)
    view = forms.ChoiceField(required=False, label="View", choices=VIEWS)
    capability = forms.ChoiceField(required=False, label="Budget for")
    entity_type = forms.ChoiceField(required=False, label="Entity type")
    min_utilization = forms.FloatField(required=False, min_value=0, max_value=100, label="Min. utilization",
                                       widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "e.g. 0.8"}))
    scope = forms.ChoiceField(required=False, label="Scope", choices=SCOPES)
    q = forms.CharField(required=False, max_length=200, strip=True, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "entity id or name",
                                                      "autocomplete": "off"}))
    node = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)
    offset = forms.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET, widget=forms.HiddenInput)

    def __init__(self, data, capabilities: list[str], types: list[str]) -> None:
        super().__init__(data)
        self.fields["capability"].choices = [("", "Every feature and currency"),
                                             *((c, c[1:] + " (currency)" if c.startswith("$") else c)
                                               for c in capabilities)]
        self.fields["entity_type"].choices = [("", "Every type"), *((t, t) for t in types)]
        self.opened = [v for v in data.getlist("open")[:MAX_OPEN] if v] if hasattr(data, "getlist") else []

    def values(self) -> dict:
        cleaned = getattr(self, "cleaned_data", {})
        return {
            "order": cleaned.get("order") or "utilization",
            "view": cleaned.get("view") or "tree",
            "capability": cleaned.get("capability") or "",
            "entity_type": cleaned.get("entity_type") or "",
            "min_utilization": cleaned.get("min_utilization"),
            "scope": cleaned.get("scope") or "all",
            "search": cleaned.get("q") or "",
            "node": cleaned.get("node") or "",
            "offset": cleaned.get("offset") or 0,
        }
