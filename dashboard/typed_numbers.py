"""Numbers as people type them into a form: "25,000", "2.5e4", "1 000", "10_000"."""
from __future__ import annotations


def parse_typed_number(text: str) -> float | None:
    """The number, None for an empty box; raises ValueError when it is not a number."""
    cleaned = (text or "").strip().replace(",", "").replace("_", "").replace(" ", "")
    return float(cleaned) if cleaned else None
