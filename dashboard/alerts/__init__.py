"""Alerts: which entitlements and budgets are read for them (``subjects``), their
evaluation from the read model into the database (``evaluate``), and what people do with
them (``triage``: acknowledge, snooze). When one opens or closes is a pure rule:
``dashboard/rules/alerts.py``."""
