"""CSV for spreadsheets, shared by every export (/near-limit.csv, /audit.csv): text cells
a spreadsheet would run as a formula get a quote first, and lines are written one at a
time, never into a buffer."""
from __future__ import annotations

import csv
from typing import Any

# Spreadsheets run a cell starting with these as a formula (tab and CR too).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str | None) -> str:
    """Text as a cell a spreadsheet shows as text, never runs as a formula."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class _Line:
    """csv.writer writes into this and gets the line back: one line at a time, no buffer."""

    def write(self, text: str) -> str:
        return text


def line_writer() -> Any:
    """A csv.writer whose ``writerow`` returns the line it wrote."""
    return csv.writer(_Line())
