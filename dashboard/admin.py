"""The audit log in Django's admin, read-only: nobody adds, changes or deletes a row
there (the model and the database refuse it anyway; see models.py)."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "username", "action", "customer_id", "entity_id", "capability", "outcome", "ticket")
    list_filter = ("action", "outcome")
    search_fields = ("customer_id", "entity_id", "username", "reason", "ticket")
    date_hierarchy = "at"
    actions = None  # not even "delete selected"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
