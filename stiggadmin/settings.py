"""Settings, read only from the environment (every variable is listed in .env.example)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
# Every web and worker process must sign sessions and CSRF tokens with the same key, and
# keep it across restarts: a missing key is a start-up error, never a random key per
# process (sign-ins and forms would break between workers). DEBUG alone gets a fixed
# development key.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-dev-key" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Set it in the environment of every web and worker process to the same "
        "long random value, kept secret, e.g. the output of: python -c \"import secrets; "
        "print(secrets.token_urlsafe(50))\" (make run keeps one in var/django-secret-key; "
        "DJANGO_DEBUG=true uses an insecure development key)")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")

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
    "axes",  # sign-in throttling; its attempts and lockouts in its own tables (migrations)
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
    "axes.middleware.AxesMiddleware",  # last, as axes asks: turns a lockout into the sign-in page
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
# Applied where a person chooses a password (the admin, changepassword, createsuperuser);
# make run's demo logins are set directly (ensure_demo_user) and exist with the emulator only.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes, dashboard/signin.py): after SIGN_IN_FAILURE_LIMIT wrong
# passwords in a row for one username from one address, that pair is refused for
# SIGN_IN_COOL_OFF_SECONDS (the right password too; each attempt meanwhile restarts the
# wait), and the lockout is logged. A success resets the count. Attempts are kept in the
# database, so every web process shares them.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("SIGN_IN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("SIGN_IN_COOL_OFF_SECONDS", 900, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dashboard.signin.locked_out"
AXES_CLIENT_IP_CALLABLE = "dashboard.signin.client_ip"
# The lockout's log line names the username and address (an operator needs both); the
# password is never logged.
AXES_SENSITIVE_PARAMETERS: list[str] = []

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- HTTPS, usually behind a TLS-terminating proxy (nginx, Caddy, a load balancer) -----
# The proxy speaks plain HTTP to gunicorn, so without being told Django takes every
# request for HTTP and refuses every POST from the https:// page ("Origin checking
# failed"). Trust X-Forwarded-Proto only behind a proxy that sets it itself, overwriting
# whatever the browser sent, and is the only way in.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Where forms are posted from, when that is not the Host the proxy passes on (scheme
# included: https://dash.example.com).
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"DJANGO_CSRF_TRUSTED_ORIGINS: {_origin!r} needs its scheme, e.g. https://{_origin}")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# A load balancer's or proxy's health check, and Prometheus on the same host, may ask
# gunicorn directly, over plain HTTP (with 127.0.0.1 in DJANGO_ALLOWED_HOSTS).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
# Browsers then refuse plain HTTP to this host for that long: set it once HTTPS works
# (31536000, a year, is what check --deploy and the preload list expect).
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
# The dashboard's own subdomains only (dash.example.com's, not example.com's).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Consent to browsers' built-in HTTPS-only lists, which the owner of the registrable domain
# applies for: off unless they have (check --deploy warns while it is off).
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)

# --- Stigg ---------------------------------------------------------------------------
# With no key configured, everything runs against the embedded emulator.
EMULATOR_PORT = env_int("EMULATOR_PORT", 8700, minimum=1)
STIGG_API_KEY = env_str("STIGG_API_KEY", "")
STIGG_USES_EMULATOR = not STIGG_API_KEY
# With a key and no URL: Stigg itself; with neither: the emulator on this machine.
STIGG_API_URL = env_str("STIGG_API_URL", f"http://127.0.0.1:{EMULATOR_PORT}" if STIGG_USES_EMULATOR
                        else "https://api.stigg.io")
if STIGG_USES_EMULATOR and urlsplit(STIGG_API_URL).hostname not in ("127.0.0.1", "localhost", "::1"):
    # No key means the emulator, which runs on this machine: a Stigg anywhere else needs its key.
    raise ImproperlyConfigured(f"STIGG_API_KEY is required for the Stigg at {STIGG_API_URL}: set it to your "
                               "environment's server key (Stigg console → Integrations → API keys). Without a "
                               "key the dashboard runs against the emulator on this machine.")
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
# The near-limit CSV as the view opens (and each owner's), built whole this often (0: never;
# every CSV is then read live): dashboard/nearlimit_csv.py.
NEAR_LIMIT_CSV_SNAPSHOT_SECONDS = env_float("NEAR_LIMIT_CSV_SNAPSHOT_SECONDS", 30.0, minimum=0)
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
# Every Redis connection (ours in dashboard/redis_client.py, and the broker's) gives up on
# a Redis that accepts the connection but does not answer: a page answers 503 within
# seconds instead of hanging a web thread, a publish fails (a webhook answers 503 so Stigg
# retries) instead of blocking. A connection idle longer than the health-check interval is
# pinged before use, so one cut while idle (a Redis restart) is redialled, not failed on.
REDIS_SOCKET_TIMEOUT_SECONDS = env_float("REDIS_SOCKET_TIMEOUT_SECONDS", 5.0, minimum=0.1)
REDIS_SOCKET_CONNECT_TIMEOUT_SECONDS = env_float("REDIS_SOCKET_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.1)
REDIS_HEALTH_CHECK_INTERVAL_SECONDS = env_int("REDIS_HEALTH_CHECK_INTERVAL_SECONDS", 30, minimum=0)
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
# A task the Redis broker handed out and that nobody acknowledged within this many seconds
# goes back to its queue: the task of a killed worker (acks_late) runs again within about
# this long plus the broker's ~100 s sweep, not kombu's default hour. What it costs:
# - a task held unacknowledged longer also comes back while it may still be held: a
#   countdown/eta (the worker holds such a task unacknowledged until it is due) or a wait in
#   the worker's prefetch. Our longest countdown is the retry backoff, capped at
#   dashboard.tasks.MAX_BACKOFF_SECONDS (60 s, 75 with its jitter; our rate limiter's own
#   waits are shorter), far below this. Prefetch is one task per thread (below), so a task waits only while it
#   runs. A sweep page run longer than this (Stigg answering very slowly at the sweep's
#   share of the rate) may run twice.
# - running twice is safe: every task writes whole values by key (a second run writes the
#   same customer again), a customer's refreshes never overlap (its lock), the sweep takes
#   an expiring lock, and each run spends Stigg requests from the shared rate, never past it.
# Lower makes a lost task return sooner and a slow one more likely to run twice; never
# below the longest countdown plus the task time limit (75 + 120 s). (Not named CELERY_*:
# Celery reads every setting of that prefix as its own.)
BROKER_VISIBILITY_TIMEOUT_SECONDS = env_int("CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS", 600, minimum=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS,
    "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,  # above the worker's 1 s BRPOP wait
    "socket_connect_timeout": REDIS_SOCKET_CONNECT_TIMEOUT_SECONDS,
    "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL_SECONDS,
}
# One task per worker thread at a time: with acks_late a prefetched task counts as
# handed out from the moment it is fetched, so a deep prefetch behind long sweep pages
# (8 threads x 4 pages of minutes each) could outwait the visibility timeout and run twice.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A busy worker must outlive a broker restart (stiggadmin/broker_consumer.py).
CELERY_WORKER_CONSUMER = "stiggadmin.broker_consumer:Consumer"
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
    # a snapshot older than 3 intervals is not sent: it must not wait behind a full sweep
    "dashboard.export_tasks.snapshot_near_limit_csv": {"queue": "hot"},
}
# Beat says "the broker is unreachable" in one line, not a traceback per due task (stiggadmin/beat.py).
CELERY_BEAT_SCHEDULER = "stiggadmin.beat:Scheduler"
CELERY_IMPORTS = ("dashboard.approval_tasks", "dashboard.delivery_tasks", "dashboard.bulk_tasks",
                  "dashboard.export_tasks")  # autodiscovery finds only tasks.py
CELERY_BEAT_SCHEDULE = {
    "sweep-customers": {"task": "dashboard.tasks.sweep_customers", "schedule": SYNC_SWEEP_INTERVAL_SECONDS},
    "sweep-hot-customers": {"task": "dashboard.tasks.sweep_hot_customers", "schedule": SYNC_HOT_INTERVAL_SECONDS},
    "expire-grant-requests": {"task": "dashboard.approval_tasks.expire_grant_requests", "schedule": 600.0},
    "evaluate-all-alerts": {"task": "dashboard.tasks.evaluate_all_alerts", "schedule": ALERT_EVALUATE_INTERVAL_SECONDS},
    **({"snapshot-near-limit-csv": {"task": "dashboard.export_tasks.snapshot_near_limit_csv",
                                    "schedule": NEAR_LIMIT_CSV_SNAPSHOT_SECONDS}} if NEAR_LIMIT_CSV_SNAPSHOT_SECONDS else {}),
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
    "filters": {"lost_ack": {"()": "dashboard.logs.LostAckFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Sign-in throttling: failures and lockouts (WARNING), not four lines per sign-in.
        "axes": {"level": "WARNING"},
        # A task's acknowledgement lost to an unreachable broker: one warning line, no traceback.
        "celery.worker.request": {"filters": ["lost_ack"]},
    },
}
