"""Alerts: which entitlements and budgets are read for them (``subjects``), their
evaluation from the read model into the database (``evaluate``), and what people do with
them (``triage``: acknowledge, snooze). When one opens or closes is a pure rule:
``dashboard/rules/alerts.py``.

Delivery: whose alerts are whose (``audience``), digests (``digest``), immediate notices of a
limit reached (``notices``, through ``webhook`` and Django's email backend), an alert in words
and links (``present``), and what a person receives, for their settings page (``receiving``);
when a digest is due and which webhooks are allowed: ``dashboard/rules/delivery.py``."""
