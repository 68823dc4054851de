"""The read model as one object: every part together, plus its upkeep (layout, clear).

Pages read from here and never call Stigg; Celery tasks fetch from Stigg and write here.
Redis is a cache: everything in it can be rebuilt from Stigg (``clear()`` then a sweep).
The key layout is in ``keys.py``."""
from __future__ import annotations

import logging
from typing import Any

from ..redis_client import connect
from .catalog import CatalogStore
from .customers import Customers
from .governance import Governance
from .history import HistoryStore
from .keys import DEFAULT_PREFIX, LAYOUT_VERSION
from .nearlimit import DEFAULT_OWNER_KEY
from .nearlimit_rows import NearLimit
from .promotions import PromotionIndex
from .rankings import Rankings
from .snapshots import CsvSnapshots
from .syncstate import SyncState
from .values import as_str

log = logging.getLogger(__name__)


class ReadModel(Customers, Governance, Rankings, NearLimit, CsvSnapshots, PromotionIndex, SyncState, CatalogStore,
                HistoryStore):
    @classmethod
    def from_settings(cls) -> "ReadModel":
        from django.conf import settings

        url = getattr(settings, "READ_MODEL_REDIS_URL", None) or settings.REDIS_URL
        prefix = getattr(settings, "READ_MODEL_PREFIX", DEFAULT_PREFIX)
        owner_key = getattr(settings, "ACCOUNT_OWNER_METADATA_KEY", DEFAULT_OWNER_KEY)
        return cls(connect(url, decode_responses=True), prefix, owner_key)

    def ensure_layout(self) -> bool:
        """Empty the read model if it was written with another key layout (or none is
        recorded but keys exist), then record ours. True when it had to be emptied.
        Called by the sweep, which then refills everything."""
        found = as_str(self.r.get(self.keys.layout()))
        if found == LAYOUT_VERSION:
            return False
        if found is None and not self.r.exists(self.keys.rows(), self.keys.catalog()):
            self.r.set(self.keys.layout(), LAYOUT_VERSION)  # a new, empty read model
            return False
        log.warning("Read model layout %s found, %s expected: emptying it for a rebuild from Stigg",
                    found or "(none recorded)", LAYOUT_VERSION)
        self.clear()
        return True

    def clear(self) -> int:
        """Delete every key under the prefix (the rebuild command starts here). What is
        left is an empty read model in this code's layout."""
        pattern = _glob_escape(self.prefix) + "*"
        deleted = 0
        batch: list[Any] = []
        for key in self.r.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(self.r.unlink(*batch))
                batch = []
        if batch:
            deleted += int(self.r.unlink(*batch))
        self.r.set(self.keys.layout(), LAYOUT_VERSION)
        return deleted


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
