"""The catalog: Stigg's features, plans and add-ons as the last sweep read them."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Sequence

from .base import Store
from .values import Catalog, iso, parse_time, to_json


class CatalogStore(Store):
    def write_catalog(self, features: Sequence[dict[str, Any]], packages: Sequence[dict[str, Any]],
                      fetched_at: datetime) -> None:
        """Features and packages as JSON objects, each with its "id"."""
        doc = {"features": {f["id"]: f for f in features},
               "packages": {p["id"]: p for p in packages},
               "fetched_at": iso(fetched_at)}
        self.r.set(self.keys.catalog(), to_json(doc))

    def catalog(self) -> Catalog | None:
        raw = self.r.get(self.keys.catalog())
        if raw is None:
            return None
        doc = json.loads(raw)
        return Catalog(doc["features"], doc["packages"], parse_time(doc["fetched_at"]))

    def plans(self) -> list[tuple[str, str]]:
        """(plan id, name) choices for the customers filter, from the catalog."""
        cat = self.catalog()
        if cat is None:
            return []
        return sorted(((p["id"], p["display_name"]) for p in cat.packages.values() if p["kind"] == "plan"),
                      key=lambda t: t[1].casefold())
