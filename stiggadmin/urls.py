from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("customers/", views.customers, name="customers"),
    path("near-limit/", views.near_limit, name="near-limit"),
    path("near-limit.csv", views.near_limit_csv, name="near-limit-csv"),
    path("audit/", views.audit_log, name="audit-log"),
    path("audit.csv", views.audit_log_csv, name="audit-log-csv"),
    # Stigg customer ids may hold any character, "/" included: the id is the rest of the path.
    # <path:> is greedy, so every "customers/<id>/something" route must come BEFORE the bare
    # customer route below, or the customer page would take "<id>/something" as an id.
    path("customers/<path:customer_id>/governance/budget", views.budget_change, name="budget-change"),
    path("customers/<path:customer_id>/governance/children", views.governance_children, name="governance-children"),
    path("customers/<path:customer_id>/governance", views.governance, name="customer-governance"),
    path("customers/<path:customer_id>/promotions/new", views.promotion_new, name="promotion-new"),
    path("customers/<path:customer_id>/promotions/extend", views.promotion_extend, name="promotion-extend"),
    path("customers/<path:customer_id>/promotions/revoke", views.promotion_revoke, name="promotion-revoke"),
    path("customers/<path:customer_id>", views.customer, name="customer"),
    path("governance/entity-types", views.entity_types, name="entity-types"),
    path("promotions/expiring", views.promotions_expiring, name="promotions-expiring"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:pk>/acknowledge", views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:pk>/snooze", views.alert_snooze, name="alert-snooze"),
    path("approvals/", views.approvals_list, name="approvals"),
    path("approvals/<int:pk>/approve", views.approval_decide, {"decision": "approve"}, name="approval-approve"),
    path("approvals/<int:pk>/reject", views.approval_decide, {"decision": "reject"}, name="approval-reject"),
    path("settings/", views.user_settings, name="settings"),
    path("settings/digest", views.digest_preview, name="settings-digest"),
    path("bulk/", views.bulk_index, name="bulk"),
    path("bulk/template.csv", views.bulk_template, name="bulk-template"),
    path("bulk/new", views.bulk_select, name="bulk-select"),
    path("bulk/<int:pk>/", views.bulk_batch, name="bulk-batch"),
    path("bulk/<int:pk>.csv", views.bulk_result_csv, name="bulk-csv"),
    path("bulk/<int:pk>/progress", views.bulk_progress, name="bulk-progress"),
    path("bulk/<int:pk>/undo", views.bulk_undo, name="bulk-undo"),
    path("bulk/<int:pk>/resume", views.bulk_resume, name="bulk-resume"),
    path("bulk/<int:pk>/approve", views.bulk_decide, {"decision": "approve"}, name="bulk-approve"),
    path("bulk/<int:pk>/reject", views.bulk_decide, {"decision": "reject"}, name="bulk-reject"),
    path("refresh/<path:customer_id>", views.refresh_customer, name="refresh-customer"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("webhooks/stigg", views.stigg_webhook, name="stigg-webhook"),
    path("admin/", admin.site.urls),  # the audit log, read-only
]
