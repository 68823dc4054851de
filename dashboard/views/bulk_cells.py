"""A row of a bulk grant's table as HTML (the dry run, the request a lead reads, the
result), built with ``html.escape`` on every value as the near-limit and audit rows are:
a batch holds up to BULK_MAX_ROWS rows. Nothing from the database is marked safe
unescaped."""
from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe

from ..auditlog.cells import customer_url
from ..models import BulkRow
from .cells import e as _e
from .tree_cells import bar

OUTCOME_CLASS = {BulkRow.State.DONE: "granted", BulkRow.State.FAILED: "denied", BulkRow.State.BAD: "denied"}


def _named(name: str, ident: str, url: str | None = None) -> str:
    """A name over its id; the id alone when there is no name (a row the dashboard did not know)."""
    if not name:
        return f'<td>{_e(ident)}</td>'
    shown = f'<a href="{_e(url)}">{_e(name)}</a>' if url else _e(name)
    return f'<td>{shown}<div class="muted small">{_e(ident)}</div></td>'


def _customer(row: BulkRow) -> str:
    url = customer_url(row.customer_id) if row.customer_name else None  # a name: the dashboard knows it
    return _named(row.customer_name, row.customer_id, url)


def _change(row: BulkRow) -> str:
    if row.state == BulkRow.State.BAD:
        return f'<td colspan="3" class="error-text">{_e(row.message)}</td>'
    usage = "" if row.usage is None else f'<div class="muted small">used {row.usage:,.0f}</div>'
    util = (f'{bar(row.utilization_before)}<div class="muted small">after</div>{bar(row.utilization_after)}'
            if row.utilization_before is not None else '<span class="muted">not limited</span>')
    warnings = "".join(f'<li class="{"note" if kind == "usage" else "warning"} warning-{_e(kind)}">{_e(text)}</li>'
                       for kind, text in row.warnings)
    why = f'<li class="warning">Needs a lead on its own: {_e("; ".join(row.why))}.</li>' if row.why else ""
    notes = f'<ul class="warnings small">{warnings}{why}</ul>' if warnings or why else ""
    return (f'<td>{_e(row.grant_text)}</td>'
            f'<td>{_e(row.before)} → <strong>{_e(row.after)}</strong>{usage}</td>'
            f'<td class="util-col">{util}</td>'
            f'<td class="notes">{notes}</td>')


def _outcome(row: BulkRow) -> str:
    state = f'<span class="{OUTCOME_CLASS.get(row.state, "muted")}">{_e(row.get_state_display())}</span>'
    message = f'<div class="small">{_e(row.message)}</div>' if row.message and row.state != BulkRow.State.BAD else ""
    undo = ""
    if row.undo_state:
        done = "granted" if row.undo_state == BulkRow.UndoState.DONE else "muted"
        undo = (f'<div class="small">Undo: <span class="{done}">{_e(row.get_undo_state_display())}</span>'
                f'{" · " + _e(row.undo_message) if row.undo_message else ""}</div>')
    return f'<td class="outcome">{state}{message}{undo}</td>'


def row_html(row: BulkRow, *, tickable: bool) -> SafeString:
    """One <tr>: with its checkbox on the dry run (``tickable``), with its outcome after."""
    label = _e(f"Grant {row.feature_name or row.feature_id} to {row.customer_name or row.customer_id}")
    if tickable:
        box = "" if row.state == BulkRow.State.BAD else (
            f'<input type="checkbox" name="row" value="{int(row.pk)}"{" checked" if row.selected else ""} '
            f'aria-label="{label}">')
        first = f'<td class="tick">{box}</td>'
    else:
        first = f'<td class="num muted">{int(row.position)}</td>'
    feature = _named(row.feature_name, row.feature_id)
    bad = ' class="bad"' if row.state == BulkRow.State.BAD else ""
    tail = "" if tickable else _outcome(row)
    pad = "<td></td>" if row.state == BulkRow.State.BAD else ""
    return mark_safe(f'<tr data-row="{int(row.pk)}"{bad}>{first}{_customer(row)}{feature}{_change(row)}{pad}'
                     f'{tail}</tr>')
