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
