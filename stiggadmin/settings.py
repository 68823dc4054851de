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
    "csp",
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
    "dashboard.observability.RequestObservationMiddleware",  # one log line and one metric per request
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
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

# Content-Security-Policy (django-csp): only our own scripts, styles and fonts, nothing
# inline, no eval. htmx runs with allowEval off (base.html) and pages poll through app.js
# instead of htmx trigger filters; bars are widths by class, not style attributes; chart
# figures travel as JSON data blocks, which no policy executes. data: images: the favicon.
EMPTY_CONTENT_HASH = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"  # sha256 of ""
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # plotly.js appends an empty <style> element and fills it through the CSSOM (its own
        # rules: hover cursors, the legend), and clears its colour bars' style attributes
        # (style=""). The hash of empty content admits exactly those empty values, never any
        # CSS text ('unsafe-hashes' is what lets a hash apply to attributes at all).
        "style-src": ["'self'", EMPTY_CONTENT_HASH],
        "style-src-attr": ["'unsafe-hashes'", EMPTY_CONTENT_HASH],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
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
# Alerts (dashboard/rules/alerts.py): one opens at the warning level (or the limit, or when
# usage runs out before reset) and closes only below the clear level, or when its window resets.
ALERT_WARNING_LEVEL = env_float("ALERT_WARNING_LEVEL", 0.8, minimum=0.01)
ALERT_CLEAR_LEVEL = env_float("ALERT_CLEAR_LEVEL", 0.7, minimum=0.01)
if not ALERT_CLEAR_LEVEL <= ALERT_WARNING_LEVEL <= 1:
    raise ImproperlyConfigured("ALERT_CLEAR_LEVEL ≤ ALERT_WARNING_LEVEL ≤ 1 is needed, not "
                               f"{ALERT_CLEAR_LEVEL:g} and {ALERT_WARNING_LEVEL:g}")
# The pass over every customer's alerts (beat): closes what vanished, catches up after missed evaluations.
ALERT_EVALUATE_INTERVAL_SECONDS = env_float("ALERT_EVALUATE_INTERVAL_SECONDS", 180.0, minimum=10)
# Alert delivery, chosen by each person on /settings/ (dashboard/alerts/digest.py, notices.py).
# The dashboard's address as its users reach it: digests and notices link to pages with it.
DASHBOARD_URL = env_str("DASHBOARD_URL", f"http://127.0.0.1:{env_int('WEB_PORT', 8000, minimum=1)}").rstrip("/")
if not DASHBOARD_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"DASHBOARD_URL must start with http:// or https://, not {DASHBOARD_URL!r}")
# One alert sends at most one immediate notice (limit reached) per cool-down.
ALERT_NOTICE_COOLDOWN_HOURS = env_float("ALERT_NOTICE_COOLDOWN_HOURS", 6.0, minimum=0)
# Digests go out at this hour (UTC): daily ones every day, weekly ones on Mondays.
ALERT_DIGEST_HOUR = env_int("ALERT_DIGEST_HOUR", 7, minimum=0)
if ALERT_DIGEST_HOUR > 23:
    raise ImproperlyConfigured(f"ALERT_DIGEST_HOUR is an hour of the day, 0 to 23, not {ALERT_DIGEST_HOUR}")
# Notice webhooks may reach loopback, private and link-local addresses only when this is
# true (an in-house chat server); otherwise a webhook URL cannot be used to reach the
# machines beside the worker (dashboard/rules/delivery.py).
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)

# --- email (digests and notices) -------------------------------------------------------
# With no EMAIL_HOST, mail is printed to the worker's log (the console backend): a laptop
# or demo sends nothing; production sets EMAIL_HOST and the rest.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT_SECONDS", 10.0, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Stigg admin <stigg-admin@localhost>")
EMAIL_BACKEND = ("django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                 else "django.core.mail.backends.console.EmailBackend")

# LOG_FORMAT=json: one JSON object a line (dashboard/logs.py), with a request's or a task's
# fields and the customer id where there is one; "plain" (the default) is for people.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f'LOG_FORMAT is "plain" or "json", not {LOG_FORMAT!r}')

# --- Redis and Celery ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# The read model may live in another Redis (or logical DB); its keys share one prefix.
READ_MODEL_REDIS_URL = env_str("READ_MODEL_REDIS_URL", REDIS_URL)
READ_MODEL_PREFIX = env_str("READ_MODEL_PREFIX", "stiggadmin:rm:")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Time limits act only in a prefork pool: the thread pools `make run` starts ignore
# them. What bounds a task there is that every wait in it has its own limit: each
# request to Stigg (STIGG_TIMEOUT_SECONDS), each Redis call (socket timeouts), the request
# budget's wait; and a customer's lock is renewed while its refresh works and frees itself
# within a minute of a worker's death (dashboard/tasks.py REFRESH_LOCK_SECONDS).
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_TASK_ACKS_LATE = True  # a refresh lost with its worker is redelivered (tasks are idempotent)
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With JSON logs the workers keep Django's LOGGING (one JSON line per task too) instead of
# Celery's own console format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
# Fresh work (webhooks, hot tier, after a write) never waits behind a full sweep.
CELERY_TASK_DEFAULT_QUEUE = "sweep"
CELERY_TASK_ROUTES = {
    "dashboard.tasks.refresh_customer_now": {"queue": "hot"},
    "dashboard.tasks.sweep_hot_customers": {"queue": "hot"},
    "dashboard.tasks.refresh_usage_history": {"queue": "hot"},
    "dashboard.tasks.evaluate_alerts": {"queue": "hot"},  # after a refresh somebody may be waiting for
    # immediate notices: never behind a full sweep (digests take the default queue)
    "dashboard.delivery_tasks.send_limit_notices": {"queue": "hot"},
    "dashboard.delivery_tasks.deliver_limit_notice": {"queue": "hot"},
}
CELERY_IMPORTS = ("dashboard.approval_tasks", "dashboard.delivery_tasks")  # autodiscovery finds only tasks.py
CELERY_BEAT_SCHEDULE = {
    "sweep-customers": {"task": "dashboard.tasks.sweep_customers", "schedule": SYNC_SWEEP_INTERVAL_SECONDS},
    "sweep-hot-customers": {"task": "dashboard.tasks.sweep_hot_customers", "schedule": SYNC_HOT_INTERVAL_SECONDS},
    "expire-grant-requests": {"task": "dashboard.approval_tasks.expire_grant_requests", "schedule": 600.0},
    "evaluate-all-alerts": {"task": "dashboard.tasks.evaluate_all_alerts", "schedule": ALERT_EVALUATE_INTERVAL_SECONDS},
    # hourly: each person's digest goes out on the first run at or after its hour
    "send-alert-digests": {"task": "dashboard.delivery_tasks.send_due_digests", "schedule": 3600.0},
}

# /metrics (dashboard/metrics.py): open when empty (keep it off the proxy's public side),
# else a scraper sends "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                   "json": {"()": "dashboard.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
