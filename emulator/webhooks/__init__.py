"""Stigg-style webhooks (stigg-api.md §10), in two halves that never import each other's
callers: ``outbox`` records an event inside the write that caused it (called by the
domain rules and routes), ``delivery`` is the background job that POSTs what is recorded."""
