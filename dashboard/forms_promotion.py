"""The promotion forms: what a person types, turned into a Grant (or an extension, or a
revoke), or into messages in words next to the fields, never a 500. The rules themselves
are actions/promotions.py's, so the form and the action check the same things."""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from django import forms

from .actions import promotions as actions
from .actions.promotions import PromotionInputError, Subject
from .rules import promotions as rules
from .rules.promotions import Grant
from .typed_numbers import parse_typed_number

PERIOD_CHOICES = list(rules.PERIODS.items())
# A promotion without a reset period wins with it: usage would then never reset (§5.4), so
# "never" is said as such, and the form starts from the reset the customer has today.
RESET_CHOICES = list(rules.RESET_PERIODS.items()) + [("", "never (usage accumulates)")]
ANCHOR_WORDS = {"SubscriptionStart": "the subscription's start date", "StartOfTheMonth": "the 1st of the month",
                **{f"Every{d}": f"every {d}" for d in ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday",
                                                        "Friday", "Saturday")}}
ANCHOR_CHOICES = [("", "the default")] + [(a, f"{w}") for a, w in ANCHOR_WORDS.items()]


LAST_END_DATE = date(9998, 1, 1)  # far enough; later ones overflow date arithmetic


def end_of_day(day: date) -> datetime:
    """A custom end date is inclusive: the promotion runs to the end of that day (UTC)."""
    return datetime.combine(day + timedelta(days=1), time(0, tzinfo=timezone.utc))


def parse_limit(text: str) -> float | None:
    """'25,000' -> 25000.0; '' -> None; raises PromotionInputError for the rest."""
    try:
        value = parse_typed_number(text)
    except ValueError:
        raise PromotionInputError("limit", f"“{text[:40]}” is not a number. A limit is a whole number of 0 or "
                                           "more, e.g. 5000.") from None
    if value is not None:
        actions.check_limit(value)
    return value


class NoteFields(forms.Form):
    """Reason, ticket and the one-time token: every promotion form has them."""

    reason = forms.CharField(label="Reason", max_length=actions.MAX_REASON, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Kept in the audit log with your name.")
    ticket = forms.CharField(label="Ticket link (optional)", required=False, max_length=actions.MAX_TICKET)
    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, data: Any, *, subject: Subject, **kwargs: Any) -> None:
        super().__init__(data, initial={"token": uuid.uuid4(), **kwargs.pop("initial", {})}, **kwargs)
        self.subject = subject
        self.fields["reason"].error_messages["required"] = "Say why: the audit log keeps it with your name."
        self.fields["reason"].error_messages["max_length"] = f"A reason is at most {actions.MAX_REASON:,} characters."
        self.fields["token"].error_messages["required"] = self.fields["token"].error_messages["invalid"] = (
            "This form is out of date; open it again.")

    def with_new_token(self) -> NoteFields:
        """The same input with a fresh token: the last one is spent on a recorded attempt."""
        data = self.data.copy()
        data["token"] = str(uuid.uuid4())
        return type(self)(data, subject=self.subject)

    def fail(self, exc: PromotionInputError) -> None:
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class PeriodFields(NoteFields):
    period = forms.ChoiceField(label="For", choices=PERIOD_CHOICES, initial="1 month")
    end_date = forms.DateField(label="End date (custom)", required=False, help_text="Inclusive, UTC.",
                               widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data: Any, *, subject: Subject, **kwargs: Any) -> None:
        super().__init__(data, subject=subject, **kwargs)
        self.fields["end_date"].error_messages["invalid"] = "Give the date as YYYY-MM-DD."

    def clean_end_date(self) -> date | None:
        day = self.cleaned_data.get("end_date")
        if day is not None and day >= LAST_END_DATE:
            raise forms.ValidationError(f"Choose an end date before {LAST_END_DATE:%Y-%m-%d}.")
        return day

    def end(self) -> datetime | None:
        day = self.cleaned_data.get("end_date")
        return end_of_day(day) if day and self.cleaned_data.get("period") == "custom" else None


class GrantForm(PeriodFields):
    """The grant form; its fields follow the feature's type (stigg-api.md §6)."""

    feature = forms.CharField(widget=forms.HiddenInput, max_length=500)
    limit = forms.CharField(label="Limit", required=False, max_length=40,
                            widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    unlimited = forms.BooleanField(label="Unlimited", required=False)
    soft_limit = forms.BooleanField(label="Soft limit (usage may go past it)", required=False)
    reset_period = forms.ChoiceField(label="Usage resets", choices=RESET_CHOICES, required=False)
    reset_anchor = forms.ChoiceField(label="Counted from", choices=ANCHOR_CHOICES, required=False)
    enum_values = forms.MultipleChoiceField(label="Values", required=False, widget=forms.CheckboxSelectMultiple)

    field_order = ["feature", "limit", "unlimited", "soft_limit", "reset_period", "reset_anchor", "enum_values",
                   "period", "end_date", "reason", "ticket", "token"]

    def __init__(self, data: Any, *, subject: Subject, **kwargs: Any) -> None:
        super().__init__(data, subject=subject, initial={"feature": subject.feature_id,
                                                         "reset_period": actions.reset_now(subject)}, **kwargs)
        feature = subject.feature
        kind = feature.feature_type if feature else ""
        if kind != "NUMBER":
            for name in ("limit", "unlimited", "soft_limit"):
                del self.fields[name]
        if not (feature and feature.metered):
            del self.fields["reset_period"], self.fields["reset_anchor"]
        if kind == "ENUM":
            self.fields["enum_values"].choices = [(o.value, o.display_name or o.value) for o in feature.enum_options]
            # a format string: a "%" in the feature's name (Stigg's catalog) must not format
            self.fields["enum_values"].error_messages["invalid_choice"] = (
                "%(value)s is not a value of " + feature.display_name.replace("%", "%%") + ".")
        else:
            del self.fields["enum_values"]
        self.grant: Grant | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            unlimited = bool(data.get("unlimited"))
            limit = None if unlimited else parse_limit(data.get("limit", ""))
            grant = Grant(feature_id=data["feature"], period=data["period"], end_date=self.end(), limit=limit,
                          unlimited=unlimited, soft_limit=bool(data.get("soft_limit")),
                          reset_period=data.get("reset_period") or None, reset_anchor=data.get("reset_anchor") or None,
                          enum_values=tuple(data.get("enum_values") or ()))
            actions.validate(self.subject, grant, data.get("reason", ""), data.get("ticket", ""))
        except PromotionInputError as exc:
            self.fail(exc)
            return data
        self.grant = grant
        return data


class ExtendForm(PeriodFields):
    """How much longer: a period counted from now, or a later end date."""

    def __init__(self, data: Any, *, subject: Subject, **kwargs: Any) -> None:
        super().__init__(data, subject=subject, **kwargs)
        # Stigg has no "extend": the same values are granted again, from today.
        self.fields["period"].help_text = "Counted from today, not from the current end date."


class RevokeForm(NoteFields):
    pass
