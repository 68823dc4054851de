"""The audit log in Django's admin, read-only: nobody adds, changes or deletes a row
there (the model and the database refuse it anyway; see models.py). And each user's
profile (whose accounts are theirs, how alerts reach them) on the user's admin page."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import models
from django.http import HttpRequest

from .forms_delivery import WebhookField
from .models import AuditEntry, Profile


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


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ("account_owner", "digest", "notice_email", "notice_webhook_url", "last_digest_at")
    readonly_fields = ("last_digest_at",)
    # The settings page's webhook check (http/https, no credentials, not inside this network).
    formfield_overrides = {models.URLField: {"form_class": WebhookField}}


class UserWithProfileAdmin(UserAdmin):
    inlines = (ProfileInline,)


User = get_user_model()
admin.site.unregister(User)
admin.site.register(User, UserWithProfileAdmin)
