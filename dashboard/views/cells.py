"""What the table rows built as HTML in Python share (the governance tree's, near-limit's,
the alerts', a bulk batch's, the expiring list's): 50 rows of template tags and includes
were most of those pages' time, so a row is plain f-strings in which every value that is
not our own markup goes through ``e`` (``html.escape``, quotes included), and the result
is marked safe once."""
from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from django.urls import reverse


def e(value: Any) -> str:
    """A value as HTML text or as an attribute's value."""
    return escape(str(value), quote=True)


def csrf_field(token: str) -> str:
    """A form's CSRF field, as ``{% csrf_token %}`` writes it."""
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{e(token)}">'


def grant_link(customer_id: str, feature_id: str, feature_name: str) -> str:
    """"Grant promotion" for one feature, as dashboard/_grant_button.html: a link to the
    plain form page, opened in the modal by htmx. Only for people who may grant."""
    url = e(f"{reverse('promotion-new', args=[customer_id])}?feature={quote(feature_id, safe='')}")
    return (f'<a class="row-action" href="{url}" hx-get="{url}" hx-target="#modal-body" hx-swap="innerHTML" '
            f'aria-label="Grant a promotion for {e(feature_name)}">Grant promotion</a>')
