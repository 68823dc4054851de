"""A stateful emulator of Stigg's REST API (see ../shared/stigg-api.md).

It runs as its own process (``python manage.py runemulator``), keeps its state in its
own SQLite file, and is reached only over HTTP, exactly as real Stigg is.
"""
