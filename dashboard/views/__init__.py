"""The dashboard's pages and endpoints, one module per page family. A page view reads
only the Redis read model, never Stigg; it renders the whole page, or one named partial
for htmx. A write to Stigg (a budget change, a promotion) goes through ``dashboard.actions``."""
from .alerts import alert_acknowledge, alert_snooze, alerts
from .approvals import approval_decide, approvals_list, bulk_decide
from .audit import audit_log, audit_log_csv
from .budgets import budget_change
from .bulk import bulk_batch, bulk_index, bulk_progress, bulk_result_csv, bulk_resume, bulk_template, bulk_undo
from .bulk_select import bulk_select
from .customer import customer, refresh_customer
from .customers import customers
from .entity_types import entity_types
from .expiring import promotions_expiring
from .governance import governance, governance_children
from .health import healthz
from .metrics import metrics_view
from .nearlimit import near_limit, near_limit_csv
from .overview import overview
from .promotions import promotion_extend, promotion_new, promotion_revoke
from .settings import digest_preview, user_settings
from .webhooks import stigg_webhook

__all__ = ["alert_acknowledge", "alert_snooze", "alerts", "approval_decide", "approvals_list", "audit_log",
           "audit_log_csv", "budget_change", "bulk_batch", "bulk_decide", "bulk_index", "bulk_progress",
           "bulk_result_csv", "bulk_resume", "bulk_select", "bulk_template", "bulk_undo", "customer", "customers",
           "digest_preview", "entity_types", "governance", "governance_children", "healthz", "metrics_view",
           "near_limit", "near_limit_csv", "overview", "promotion_extend", "promotion_new", "promotion_revoke",
           "promotions_expiring", "refresh_customer", "stigg_webhook", "user_settings"]
