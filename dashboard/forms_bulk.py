"""The bulk grant's forms: the one choice made for rows ticked on the near-limit view, the
CSV upload, and undo. Bad input becomes a message next to its field, never a 500; the
rules are the single grant's (actions/promotions.py) and the batch's (rules/bulk.py)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from .actions import promotions as actions
from .actions.promotions import PromotionInputError
from .bulk_csv import CsvError, CsvRow, read_upload
from .forms_promotion import NoteFields, PeriodFields, parse_limit
from .rules.bulk import AMOUNTS, Amount
from .typed_numbers import parse_typed_number

MAX_PERCENT = 10_000.0


class BulkChoiceForm(PeriodFields):
    """How much every selected row gets, and for how long: ``amount`` "to" (raise the limit
    to ``limit``), "percent" (the plan's limit plus ``percent`` %) or "unlimited"; then
    ``period`` / ``end_date``, ``reason``, ``ticket`` and the one-time ``token``, as in the
    single grant's form."""

    amount = forms.ChoiceField(label="Grant", choices=list(AMOUNTS.items()), initial="to", widget=forms.RadioSelect)
    limit = forms.CharField(label="Limit", required=False, max_length=40,
                            widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}))
    percent = forms.CharField(label="Percent of the plan's limit", required=False, max_length=20,
                              widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))

    field_order = ["amount", "limit", "percent", "period", "end_date", "reason", "ticket", "token"]

    def __init__(self, data: Any, **kwargs: Any) -> None:
        super().__init__(data, subject=None, **kwargs)  # type: ignore[arg-type]
        self.fields["limit"].help_text = "The new limit of every selected entitlement, e.g. 50,000."
        self.fields["percent"].help_text = "e.g. 50: a plan giving 1,000 gets a promotion of 1,500."
        self.choice: Amount | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        mode = data.get("amount")
        try:
            if mode == "to":
                limit = parse_limit(data.get("limit", ""))
                if limit is None:
                    raise PromotionInputError("limit", "Give the limit to raise to, e.g. 50000.")
                self.choice = Amount("to", limit)
            elif mode == "percent":
                self.choice = Amount("percent", percent=_percent(data.get("percent", "")))
            elif mode == "unlimited":
                self.choice = Amount("unlimited")
            if "period" in data:
                actions.check_period(data["period"], self.end(), actions.now())
        except PromotionInputError as exc:
            self.fail(exc)
            self.choice = None
        return data


def _percent(text: str) -> float:
    try:
        value = parse_typed_number(text.strip().rstrip("%"))
    except ValueError:
        raise PromotionInputError("percent", f"“{text[:20]}” is not a number: give the percentage to add, "
                                             "e.g. 50.") from None
    if value is None:
        raise PromotionInputError("percent", "Give the percentage to add, e.g. 50.")
    if not 0 < value <= MAX_PERCENT:
        raise PromotionInputError("percent", f"A percentage is a number above 0 and at most {MAX_PERCENT:,.0f}.")
    return value


class BulkUploadForm(NoteFields):
    """A CSV of grants (bulk_csv.py says the format), with the batch's ``reason``,
    ``ticket`` and one-time ``token``; ``file`` is read here, whole, into ``rows``."""

    file = forms.FileField(label="CSV file", allow_empty_file=False,
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))

    field_order = ["file", "reason", "ticket", "token"]

    def __init__(self, data: Any = None, files: Any = None, **kwargs: Any) -> None:
        super().__init__(data, files=files, subject=None, **kwargs)  # type: ignore[arg-type]
        self.fields["file"].error_messages.update({
            "required": "Choose the CSV file to upload.", "empty": "The file is empty.",
            "invalid": "That is not a file: choose a CSV file."})
        self.rows: list[CsvRow] = []

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.BULK_CSV_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"The file is {upload.size:,} bytes; at most {limit:,} are read. Split it "
                                        f"into files of at most {settings.BULK_MAX_ROWS:,} rows.")
        try:
            self.rows = read_upload(upload.read(), max_rows=settings.BULK_MAX_ROWS)
        except CsvError as exc:
            raise forms.ValidationError(exc.message) from None
        return upload


class UndoForm(forms.Form):
    """Undo a batch: ``reason`` (kept in every revoke's audit row)."""

    reason = forms.CharField(label="Why undo it", max_length=actions.MAX_REASON,
                             error_messages={"required": "Say why: the audit log keeps it with your name."})
