"""The budget-change form: what a person types, turned into a BudgetChange, or into
messages in words next to the fields (never a 500). The rules themselves live in
actions/budgets.py, so the form and the action check the same things."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django import forms

from .actions import budgets
from .actions.budgets import BudgetChange, BudgetInputError, BudgetTarget, BudgetValues
from .readmodel import BudgetDoc, NodeDoc, ReadModel
from .typed_numbers import parse_typed_number

COMMON_CADENCES = (("P1M", "monthly"), ("P1W", "weekly"), ("P1D", "daily"), ("PT1H", "hourly"), ("P1Y", "yearly"),
                   ("P30D", "every 30 days"), ("PT1M", "every minute"))


@dataclass(frozen=True)
class BudgetSubject:
    """What the page is about, read from the read model: a node and, unless a budget is
    being added, one of its budgets."""

    customer_id: str
    node: NodeDoc
    budget: BudgetDoc | None  # None: adding a budget
    capabilities: list[tuple[str, str]]  # (capability, name) a new budget may be for
    scope: tuple[str, ...]  # the budget's scope, or the one the URL suggests for a new budget

    @property
    def adding(self) -> bool:
        return self.budget is None


def parse_scope(text: str) -> tuple[str, ...]:
    """Comma-separated entity ids, sorted and without repeats ('' = node-wide)."""
    return tuple(sorted({part.strip() for part in (text or "").split(",") if part.strip()}))


def parse_limit(text: str) -> float | None:
    """'25,000' or '2.5e4' -> 25000.0; '' -> None; raises BudgetInputError for the rest."""
    try:
        value = parse_typed_number(text)
    except ValueError:
        raise BudgetInputError("limit", f"“{text}” is not a number. A limit is a number of 0 or more, "
                                        "e.g. 5000.") from None
    return None if value is None else budgets.clean_limit(value)


class BudgetForm(forms.Form):
    capability = forms.ChoiceField(label="Budget for", required=False)
    scope = forms.CharField(label="Scope", required=False, max_length=2000,
                            help_text="Entity ids, comma-separated: the budget then counts only usage that passes "
                                      "through all of them. Empty: the whole node.")
    limit = forms.CharField(label="Limit", required=False, max_length=40,
                            widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    unlimited = forms.BooleanField(label="Unlimited (usage still tracked)", required=False)
    cadence = forms.CharField(label="Cadence", max_length=20,
                              help_text="One ISO-8601 unit: P1M monthly, P1W weekly, P30D, PT1H hourly…",
                              widget=forms.TextInput(attrs={"list": "cadences", "autocomplete": "off"}))
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Kept in the audit log with your name.")
    ticket = forms.CharField(label="Ticket (optional)", required=False, max_length=200)
    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, data: Any, *, subject: BudgetSubject, rm: ReadModel) -> None:
        budget = subject.budget
        initial = {"token": uuid.uuid4(), "scope": ",".join(subject.scope), "cadence": "P1M"}
        if budget is not None:
            initial.update(limit=_plain(budget["limit"]), unlimited=budget["limit"] is None,
                           cadence=budget["cadence"] or "")
        super().__init__(data, initial=initial)
        self.subject, self.rm = subject, rm
        self.fields["reason"].error_messages["required"] = "Say why the budget changes: the audit log keeps it."
        self.fields["cadence"].error_messages["required"] = "Give a cadence, e.g. P1M for monthly."
        self.fields["token"].error_messages["required"] = self.fields["token"].error_messages["invalid"] = (
            "This form is out of date; open it again.")
        if subject.adding:
            self.fields["capability"].choices = [("", "Choose a feature or currency"), *subject.capabilities]
        else:
            del self.fields["capability"], self.fields["scope"]
        self.change: BudgetChange | None = None

    def with_new_token(self) -> BudgetForm:
        """The same input with a fresh token: the last one is spent on a recorded attempt."""
        data = self.data.copy()
        data["token"] = str(uuid.uuid4())
        return BudgetForm(data, subject=self.subject, rm=self.rm)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        subject, budget = self.subject, self.subject.budget
        try:
            # Unlimited wins over whatever the limit box still holds.
            limit = None if data.get("unlimited") else parse_limit(data.get("limit", ""))
            if limit is None and not data.get("unlimited"):
                raise BudgetInputError("limit", "Give a limit, or tick Unlimited.")
            cadence = budgets.clean_cadence(data["cadence"]) if "cadence" in data else None
        except BudgetInputError as exc:
            self.add_error(exc.field, exc.message)
            return data
        if self.errors or cadence is None:
            return data
        if budget is not None:
            capability, scope = budget["capability"], tuple(budget["scope"])
            before: BudgetValues | None = BudgetValues.of(budget)
        else:
            capability, scope, before = data.get("capability", ""), parse_scope(data.get("scope", "")), None
        target = BudgetTarget(subject.customer_id, subject.node["id"], capability, scope)
        change = BudgetChange(target, before, BudgetValues(limit, cadence), data.get("reason", ""),
                              data.get("ticket", ""))
        try:
            budgets.validate(change, self.rm)
        except BudgetInputError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return data
        data["cadence"] = cadence
        self.change = change
        return data


def _plain(value: float | None) -> str:
    """A limit as a person would type it: 25000, 2.5."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
