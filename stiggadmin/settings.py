"""Settings, read only from the environment (every variable is listed in .env.example)."""
from __future__ import annotations

from pathlib import Path

import dj_database_url

from .env import env_bool, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # A laptop/demo run gets a throwaway key; production must set its own.
        import secrets

        SECRET_KEY = "insecure-demo-" + secrets.token_urlsafe(32)
    else:
        SECRET_KEY = "insecure-dev-key"
ALLOWED_HOSTS = [h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()]

INSTALLED_APPS = [
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
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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

# --- Stigg ---------------------------------------------------------------------------
# With no key configured, everything runs against the embedded emulator.
EMULATOR_PORT = env_int("EMULATOR_PORT", 8700, minimum=1)
STIGG_API_KEY = env_str("STIGG_API_KEY", "")
STIGG_USES_EMULATOR = not STIGG_API_KEY
STIGG_API_URL = env_str("STIGG_API_URL", f"http://127.0.0.1:{EMULATOR_PORT}")
if STIGG_USES_EMULATOR:
    from emulator.config import DEFAULT_SERVER_KEY

    STIGG_API_KEY = DEFAULT_SERVER_KEY
STIGG_MAX_RPS = env_float("STIGG_MAX_RPS", 20.0, minimum=0.1)
STIGG_TIMEOUT_SECONDS = env_float("STIGG_TIMEOUT_SECONDS", 5.0, minimum=0.1)
STIGG_WEBHOOK_SECRET = env_str("STIGG_WEBHOOK_SECRET", "")
SYNC_SWEEP_INTERVAL_SECONDS = env_float("SYNC_SWEEP_INTERVAL_SECONDS", 300.0, minimum=1)
SYNC_HOT_INTERVAL_SECONDS = env_float("SYNC_HOT_INTERVAL_SECONDS", 15.0, minimum=1)

# --- Redis and Celery ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
