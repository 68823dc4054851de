"""Serve plotly.js from the installed plotly package, so the page never needs a CDN and
the browser library always matches the Python package's version."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_SOURCE = Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyJsFinder(BaseFinder):
    """Exposes only ``vendor/plotly.min.js`` (not the package's datasets)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(_SOURCE))
        self.storage.prefix = "vendor"  # collectstatic copies it to STATIC_ROOT/vendor/

    def check(self, **kwargs: Any) -> list:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        # Django 5.2 renamed ``all`` to ``find_all``; accept both.
        find_all = find_all or kwargs.get("all", False)
        if path != PLOTLY_JS:
            return [] if find_all else ""
        match = str(_SOURCE / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        yield "plotly.min.js", self.storage
