"""Settings, read only from the environment (every variable is listed in .env.example)."""
from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # A throwaway key for this process only (make run passes one shared key to every
        # process it starts); production must set its own.
        import secrets

        SECRET_KEY = "insecure-demo-" + secrets.token_urlsafe(32)
    else:
        SECRET_KEY = "insecure-dev-key"
ALLOWED_HOSTS = [h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",  # the audit log, read-only (dashboard/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "dashboard",
    "emulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "dashboard.middleware.ReadModelUnavailableMiddleware",
]

ROOT_URLCONF = "stiggadmin.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.alerts",
            ],
        },
    }
]
WSGI_APPLICATION = "stiggadmin.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'dashboard.sqlite3'}"), conn_max_age=60
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js is served from the plotly package's own copy, never from a CDN.
    "dashboard.staticfiles.PlotlyJsFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # `make run` (and any deployment) runs collectstatic, which pre-compresses (gzip) into
    # STATIC_ROOT; WhiteNoise serves from there. With DJANGO_DEBUG it serves the sources.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Stigg ---------------------------------------------------------------------------
# With no key configured, everything runs against the embedded emulator.
EMULATOR_PORT = env_int("EMULATOR_PORT", 8700, minimum=1)
STIGG_API_KEY = env_str("STIGG_API_KEY", "")
STIGG_USES_EMULATOR = not STIGG_API_KEY
STIGG_API_URL = env_str("STIGG_API_URL", f"http://127.0.0.1:{EMULATOR_PORT}")
if STIGG_USES_EMULATOR:
    from emulator.config import DEFAULT_SERVER_KEY

    STIGG_API_KEY = DEFAULT_SERVER_KEY
# The request rate to Stigg shared by every process (dashboard.ratelimit).
STIGG_MAX_RPS = env_float("STIGG_MAX_RPS", 20.0, minimum=0.1)
# Shares of that request rate (the environment keeps its "BUDGET_SHARE" names; nothing
# to do with governance budgets). The full sweep may use at most this share; the rest
# stays free for webhooks, the hot tier and the dashboard's own writes.
SYNC_SWEEP_RATE_SHARE = env_float("SYNC_SWEEP_BUDGET_SHARE", 0.6, minimum=0.05)
# The hot tier's polls may use at most this share; what neither takes is always free for
# refreshes somebody waits for (webhooks, Refresh now, after a dashboard write).
SYNC_HOT_RATE_SHARE = env_float("SYNC_HOT_BUDGET_SHARE", 0.25, minimum=0.01)
# A bulk grant's job (dashboard/bulk_tasks.py) may send at most this many requests a second,
# its grants and the read-back of each customer together (about 3 a row), within
# STIGG_MAX_RPS: what the sweep, the hot tier and webhooks use is left to them.
BULK_GRANT_RATE = env_float("BULK_GRANT_RATE", 4.0, minimum=0.1)
if BULK_GRANT_RATE > STIGG_MAX_RPS:
    raise ImproperlyConfigured(f"BULK_GRANT_RATE ({BULK_GRANT_RATE:g}) must not exceed STIGG_MAX_RPS "
                               f"({STIGG_MAX_RPS:g}): it is a share of that request rate")
STIGG_TIMEOUT_SECONDS = env_float("STIGG_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# A write somebody waits for (a budget change): one attempt with this timeout, then the
# form says what happened.
STIGG_WRITE_TIMEOUT_SECONDS = env_float("STIGG_WRITE_TIMEOUT_SECONDS", 5.0, minimum=0.1)
STIGG_WEBHOOK_SECRET = env_str("STIGG_WEBHOOK_SECRET", "")
SYNC_SWEEP_INTERVAL_SECONDS = env_float("SYNC_SWEEP_INTERVAL_SECONDS", 300.0, minimum=1)
SYNC_HOT_INTERVAL_SECONDS = env_float("SYNC_HOT_INTERVAL_SECONDS", 15.0, minimum=1)
# A customer is "hot" (polled every SYNC_HOT_INTERVAL_SECONDS) when anything of it is at
# or above this utilization, or it changed within SYNC_HOT_CHANGED_SECONDS: a webhook
# named it, or somebody pressed Refresh now (0: neither keeps it hot).
SYNC_HOT_UTILIZATION = env_float("SYNC_HOT_UTILIZATION", 0.8, minimum=0)
SYNC_HOT_CHANGED_SECONDS = env_float("SYNC_HOT_CHANGED_SECONDS", 600.0, minimum=0)
# Between discovery sweeps, a sweep asks only customers known to have promotions or
# budgets for them (webhooks announce the rest); a discovery sweep asks everyone.
SYNC_DISCOVERY_INTERVAL_SECONDS = env_float("SYNC_DISCOVERY_INTERVAL_SECONDS", 3600.0, minimum=0)
# Numbers older than this count as "behind" in the sync status.
SYNC_STALE_AFTER_SECONDS = env_float("SYNC_STALE_AFTER_SECONDS", 900.0, minimum=1)
# Usage history (the customer page's charts) is fetched when a page wants it and is
# older than this; it covers the last USAGE_HISTORY_DAYS days.
USAGE_HISTORY_MAX_AGE_SECONDS = env_float("USAGE_HISTORY_MAX_AGE_SECONDS", 600.0, minimum=1)
USAGE_HISTORY_DAYS = env_int("USAGE_HISTORY_DAYS", 62, minimum=1)
# How often on-screen numbers re-read the read model while the tab is visible.
PAGE_POLL_SECONDS = env_int("PAGE_POLL_SECONDS", 10, minimum=1)
# The key of a customer's Stigg metadata that names its account owner (the near-limit page's
# owner filter). It is read when a customer is written: after changing it, rebuild the read
# model (python manage.py rebuild_read_model).
ACCOUNT_OWNER_METADATA_KEY = env_str("ACCOUNT_OWNER_METADATA_KEY", "accountOwner")
# Grants that need approval by another customer-success lead (dashboard/rules/approvals.py).
APPROVAL_LIFETIME = env_bool("APPROVAL_LIFETIME", True)
APPROVAL_MAX_DAYS = env_int("APPROVAL_MAX_DAYS", 90, minimum=1)
APPROVAL_LARGE_FACTOR = env_float("APPROVAL_LARGE_FACTOR", 10.0)  # 0: size never needs approval
APPROVAL_BATCH_SIZE = env_int("APPROVAL_BATCH_SIZE", 20, minimum=1)
APPROVAL_EXPIRY_HOURS = env_int("APPROVAL_EXPIRY_HOURS", 72, minimum=1)
# Bulk grants: at most this many rows in one batch (a CSV upload, or "select all that match"),
# and a CSV upload of at most this many bytes.
BULK_MAX_ROWS = env_int("BULK_MAX_ROWS", 1000, minimum=1)
BULK_CSV_MAX_BYTES = env_int("BULK_CSV_MAX_BYTES", 1_000_000, minimum=1000)
# The dry run's confirm form posts one field per ticked row.
DATA_UPLOAD_MAX_NUMBER_FIELDS = max(1000, BULK_MAX_ROWS + 100)
# Alerts (dashboard/rules/alerts.py): one opens at the warning level (or the limit, or when
# usage runs out before reset) and closes only below the clear level, or when its window resets.
ALERT_WARNING_LEVEL = env_float("ALERT_WARNING_LEVEL", 0.8, minimum=0.01)
ALERT_CLEAR_LEVEL = env_float("ALERT_CLEAR_LEVEL", 0.7, minimum=0.01)
if not ALERT_CLEAR_LEVEL <= ALERT_WARNING_LEVEL <= 1:
    raise ImproperlyConfigured("ALERT_CLEAR_LEVEL ≤ ALERT_WARNING_LEVEL ≤ 1 is needed, not "
                               f"{ALERT_CLEAR_LEVEL:g} and {ALERT_WARNING_LEVEL:g}")
# The pass over every customer's alerts (beat): closes what vanished, catches up after missed evaluations.
ALERT_EVALUATE_INTERVAL_SECONDS = env_float("ALERT_EVALUATE_INTERVAL_SECONDS", 180.0, minimum=10)

# --- Redis and Celery ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# The read model may live in another Redis (or logical DB); its keys share one prefix.
READ_MODEL_REDIS_URL = env_str("READ_MODEL_REDIS_URL", REDIS_URL)
READ_MODEL_PREFIX = env_str("READ_MODEL_PREFIX", "stiggadmin:rm:")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_TASK_ACKS_LATE = True  # a refresh lost with its worker is redelivered (tasks are idempotent)
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Fresh work (webhooks, hot tier, after a write) never waits behind a full sweep.
CELERY_TASK_DEFAULT_QUEUE = "sweep"
CELERY_TASK_ROUTES = {
    "dashboard.tasks.refresh_customer_now": {"queue": "hot"},
    "dashboard.tasks.sweep_hot_customers": {"queue": "hot"},
    "dashboard.tasks.refresh_usage_history": {"queue": "hot"},
    "dashboard.tasks.evaluate_alerts": {"queue": "hot"},  # after a refresh somebody may be waiting for
}
CELERY_IMPORTS = ("dashboard.approval_tasks", "dashboard.bulk_tasks")  # autodiscovery finds only tasks.py
CELERY_BEAT_SCHEDULE = {
    "sweep-customers": {"task": "dashboard.tasks.sweep_customers", "schedule": SYNC_SWEEP_INTERVAL_SECONDS},
    "sweep-hot-customers": {"task": "dashboard.tasks.sweep_hot_customers", "schedule": SYNC_HOT_INTERVAL_SECONDS},
    "expire-grant-requests": {"task": "dashboard.approval_tasks.expire_grant_requests", "schedule": 600.0},
    "evaluate-all-alerts": {"task": "dashboard.tasks.evaluate_all_alerts", "schedule": ALERT_EVALUATE_INTERVAL_SECONDS},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
