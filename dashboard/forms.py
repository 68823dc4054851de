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


NEAR_LIMIT_ORDERS = (("utilization", "Utilization"), ("usage", "Usage"), ("urgency", "Urgency (time to limit)"))
NEAR_LIMIT_THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
DEFAULT_MIN_UTILIZATION = 0.8
MAX_MIN_UTILIZATION = 100.0  # 10,000 %


def threshold_label(value: float) -> str:
    return f"≥ {value * 100:g} %"


class NearLimitFilter(forms.Form):
    """The near-limit page's query: ``min_utilization`` (0.8 = 80 %), ``order`` and the
    filters. Choices are the values customers have (the read model's facets); a value
    outside them, or any bad value, is named on the page and ignored."""

    min_utilization = forms.FloatField(required=False, min_value=0, max_value=MAX_MIN_UTILIZATION,
                                       label="Utilization")
    order = forms.ChoiceField(required=False, label="Order by", choices=NEAR_LIMIT_ORDERS)
    customer = forms.CharField(required=False, max_length=1000, strip=False, label="Customer id",
                               widget=forms.TextInput(attrs={"placeholder": "any customer", "autocomplete": "off"}))
    capability = forms.ChoiceField(required=False, label="Feature or currency")
    entity_type = forms.ChoiceField(required=False, label="Entity type")
    plan = forms.ChoiceField(required=False, label="Plan")
    owner = forms.ChoiceField(required=False, label="Account owner")
    offset = forms.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET, widget=forms.HiddenInput)

    def __init__(self, data, choices: dict[str, list[tuple[str, int]]], plan_names: dict[str, str]) -> None:
        super().__init__(data)
        self.fields["capability"].choices = [("", "Any feature or currency"), *(
            (v, f"{v[1:]} (currency)" if v.startswith("$") else v) for v, _ in choices.get("capability", []))]
        self.fields["entity_type"].choices = [("", "Any (entitlements too)"),
                                              *((v, v) for v, _ in choices.get("entity_type", []))]
        self.fields["plan"].choices = [("", "Any plan"), *((v, plan_names.get(v, v)) for v, _ in choices.get("plan", []))]
        self.fields["owner"].choices = [("", "Any owner"), *((v, f"{v} ({n})") for v, n in choices.get("owner", []))]

    def values(self) -> dict:
        """The query to run: the valid fields, defaults for the invalid ones."""
        cleaned = getattr(self, "cleaned_data", {})
        min_utilization = cleaned.get("min_utilization")
        return {
            "min_utilization": DEFAULT_MIN_UTILIZATION if min_utilization is None else min_utilization,
            "order": cleaned.get("order") or "utilization",
            "customer": cleaned.get("customer") or None,
            "capability": cleaned.get("capability") or None,
            "entity_type": cleaned.get("entity_type") or None,
            "plan": cleaned.get("plan") or None,
            "owner": cleaned.get("owner") or None,
        }

    def offset_value(self) -> int:
        return getattr(self, "cleaned_data", {}).get("offset") or 0
