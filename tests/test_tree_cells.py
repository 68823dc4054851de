"""The governance tree's rows, built in Python: every value from Stigg is escaped."""
from __future__ import annotations

from html.parser import HTMLParser

from dashboard.tree import Blocking, Line, Row
from dashboard.views.tree_cells import line_cells, row_html

EVIL = '"><script>alert(1)</script>'


class Parsed(HTMLParser):
    """The tags and attribute values of a piece of HTML, and its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [v for _, v in attrs if v]

    def handle_data(self, data):
        self.text += data


def test_it_escapes_every_value_from_stigg_in_a_row():
    budget = {"capability": EVIL, "scope": [EVIL], "limit": 10, "usage": 12, "utilization": 1.2, "cadence": EVIL,
              "period_end": None, "ttl": None, "urgency": 3.0}
    block = Blocking(capability=EVIL, entity_id=EVIL, entity_name=EVIL, scope=[], limit=5, usage=5, headroom=0,
                     own_headroom=None, ttl=None)
    line = Line(EVIL, budget, block, EVIL, blocking_url=f"/x?node={EVIL}")
    line.cells = line_cells(line, "c1", "me", can_change=True)
    node = {"id": EVIL, "type": EVIL, "name": EVIL, "parent": EVIL, "children": 2, "budgets": [budget],
            "blocking": [], "path": [], "depth": 0, "utilization": 1.2, "usage": 12}
    row = Row(node, 0, [line], False, extra={"url": f"/u?{EVIL}", "open_url": EVIL, "close_url": EVIL,
                                             "children_url": EVIL})
    for ranked in (False, True):
        parsed = Parsed(row_html(row, ranked, "", EVIL))
        assert "script" not in parsed.tags  # every value stayed text or one attribute's value
        assert EVIL in parsed.text and any(EVIL in v for v in parsed.attrs)
        assert "Blocked by" in parsed.text and "120 %" in parsed.text
