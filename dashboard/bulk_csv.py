"""The bulk grant's CSV files: the upload read into rows (or one message in words when the
file as a whole is wrong), the template people download, and the result file.

The upload (also said on /bulk/ and in the README):

- UTF-8 text (a byte-order mark, as spreadsheets write one, is fine), comma-separated, a
  header row naming exactly these five columns, in any order:
  ``customer,feature,limit,period,end_date``;
- ``customer``: the Stigg customer id, exactly; ``feature``: the feature id, exactly;
- ``limit``: a whole number (``25000`` or ``25,000``) or ``unlimited``; empty for an
  on/off feature (the grant turns it on);
- ``period``: ``1 week``, ``1 month``, ``6 months``, ``1 year``, ``lifetime`` or
  ``custom``; ``custom`` needs ``end_date``, and an empty period with an end date is custom;
- ``end_date``: ``YYYY-MM-DD``, inclusive (the promotion runs to the end of that day, UTC);
- at most BULK_MAX_ROWS rows and BULK_CSV_MAX_BYTES bytes; blank lines are skipped.

A row with a bad value is still a row: the dry run shows it with the message, unticked.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

from .actions.promotions import PromotionInputError
from .forms_promotion import LAST_END_DATE, end_of_day, parse_limit
from .rules.bulk import Amount, RowError
from .rules.promotions import PERIODS
from .spreadsheet import safe_text

COLUMNS = ("customer", "feature", "limit", "period", "end_date")
TEMPLATE_ROWS = (("acme-corp", "api-calls", "50000", "1 month", ""),
                 ("globex", "seats", "unlimited", "custom", "2027-03-31"),
                 ("initech", "sso", "", "1 year", ""))
# What a person may write in the period column: Stigg's values, and "6 months" as said.
PERIOD_WORDS = {**{p: p for p in PERIODS}, "6 months": "6 month"}
MAX_CELL = 1000  # characters kept of one cell (a customer id is far shorter)


class CsvError(ValueError):
    """The file as a whole cannot be read; ``message`` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CsvRow:
    line: int  # the line of the file, for people to find it
    customer: str
    feature: str
    limit: str
    period: str
    end_date: str
    problem: str = ""  # the row's shape is wrong (too many or too few cells)


@dataclass(frozen=True)
class CsvGrant:
    """What a row asks for, before the feature's type is known."""

    amount: Amount | None  # None: no limit given (right for an on/off feature)
    period: str
    end_date: datetime | None


def read_upload(data: bytes, *, max_rows: int) -> list[CsvRow]:
    """The rows of an uploaded file; raises CsvError for a file that is not such a CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvError("The file is not UTF-8 text. Save it from the spreadsheet as “CSV UTF-8” and upload "
                       "it again.") from None
    if "\x00" in text:
        raise CsvError("The file is not a CSV (it holds binary data). Upload a .csv file like the template.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise CsvError("The file is empty. Start from the template: a header row, then one row per grant.")
        index = _columns(header)
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == max_rows:
                raise CsvError(f"The file has more than {max_rows:,} rows: a batch holds at most {max_rows:,}. "
                               "Split it into several files.")
            rows.append(_row(reader.line_num, cells, index, len(header)))
    except csv.Error as exc:
        raise CsvError(f"Line {reader.line_num} is not valid CSV ({exc}). Check its quotes.") from None
    if not rows:
        raise CsvError("The file has a header but no rows to grant.")
    return rows


def _columns(header: list[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    unknown = [n or "(empty)" for n in names if n not in COLUMNS]
    twice = sorted({n for n in names if names.count(n) > 1 and n in COLUMNS})
    if missing or unknown or twice:
        said = [f"missing {', '.join(missing)}" if missing else "",
                f"not known: {', '.join(u[:40] for u in unknown[:5])}" if unknown else "",
                f"twice: {', '.join(twice)}" if twice else ""]
        raise CsvError(f"The header must name exactly the columns {', '.join(COLUMNS)} (the template has them); "
                       f"this one has {'; '.join(s for s in said if s)}.")
    return {name: names.index(name) for name in COLUMNS}


def _row(line: int, cells: list[str], index: dict[str, int], width: int) -> CsvRow:
    values = {name: (cells[i].strip()[:MAX_CELL] if i < len(cells) else "") for name, i in index.items()}
    problem = "" if len(cells) == width else (
        f"This line has {len(cells)} cells where the header has {width}: check for a stray comma "
        "(quote a value that holds one).")
    return CsvRow(line, values["customer"], values["feature"], values["limit"], values["period"],
                  values["end_date"], problem)


def grant_values(row: CsvRow) -> CsvGrant:
    """A row's limit, period and end date; raises RowError with what is wrong, in words."""
    if row.problem:
        raise RowError(row.problem)
    if not row.customer or not row.feature:
        raise RowError("Give both the customer id and the feature id.")
    return CsvGrant(_amount(row.limit), *_period(row.period, row.end_date))


def _amount(text: str) -> Amount | None:
    if not text:
        return None
    if text.lower() == "unlimited":
        return Amount("unlimited")
    try:
        limit = parse_limit(text)
    except PromotionInputError as exc:
        raise RowError(f"Limit: {exc.message} Or write “unlimited”.") from None
    return Amount("to", limit)


def _period(text: str, end_text: str) -> tuple[str, datetime | None]:
    period = PERIOD_WORDS.get(" ".join(text.lower().split())) if text else ("custom" if end_text else None)
    if period is None:
        raise RowError(f"Period “{text[:40]}” is not one of: {', '.join(PERIOD_WORDS)}." if text
                       else "Give a period (1 week, 1 month, 6 months, 1 year, lifetime), or an end date.")
    if period != "custom":
        if end_text:
            raise RowError(f"An end date goes with the period “custom”, not “{text}”: leave one of them empty.")
        return period, None
    if not end_text:
        raise RowError("A custom period needs an end date (YYYY-MM-DD).")
    try:
        day = date.fromisoformat(end_text)
    except ValueError:
        raise RowError(f"End date “{end_text[:40]}” is not a date: write it as YYYY-MM-DD, e.g. 2027-03-31.") from None
    if day >= LAST_END_DATE:
        raise RowError(f"Choose an end date before {LAST_END_DATE:%Y-%m-%d}.")
    return period, end_of_day(day)


def template() -> str:
    """The file people start from: the header and three example rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    return out.getvalue()


RESULT_HEADER = ("line", "customer_id", "customer_name", "feature_id", "feature_name", "grant", "before", "after",
                 "outcome", "message", "undo", "undo_message")


def result(rows: Iterable[tuple[str, ...]]) -> str:
    """The result file: RESULT_HEADER, then one line per row, every text cell safe from
    spreadsheets' formulas."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RESULT_HEADER)
    for cells in rows:
        writer.writerow([safe_text(c) for c in cells])
    return out.getvalue()
