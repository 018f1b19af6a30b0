"""Django settings. Every value comes from the environment, with a default that runs on one machine.

Production sets ``DATABASE_URL`` (PostgreSQL), ``FABRIC_OPS_SECRET_KEY`` and
``FABRIC_OPS_DEBUG=0``; the defaults are for the demo and for local tests.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state (SQLite file, lab state, spools, logs) lives under var/, never in the source tree.
VAR_DIR = Path(os.environ.get("FABRIC_OPS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean flag; accepts 1/0, true/false, yes/no."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# The insecure default only serves the embedded demo; DEBUG off without a real key fails fast below.
SECRET_KEY = os.environ.get("FABRIC_OPS_SECRET_KEY", "insecure-demo-key-change-me-in-production-0123456789")
DEBUG = env_bool("FABRIC_OPS_DEBUG", True)
if not DEBUG and SECRET_KEY.startswith("insecure-"):
    raise RuntimeError("FABRIC_OPS_SECRET_KEY must be set when FABRIC_OPS_DEBUG=0")
ALLOWED_HOSTS = [h for h in os.environ.get("FABRIC_OPS_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "fabric_ops.topology",
    "fabric_ops.devices",
    "fabric_ops.lab",
    "fabric_ops.config",
    "fabric_ops.telemetry",
    "fabric_ops.health",
    "fabric_ops.alerting",
    # REST API (fabric_ops/web): DRF, token auth, filters, OpenAPI schema with self-hosted Swagger UI assets.
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "fabric_ops.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the UI's JS/CSS) straight from gunicorn with DEBUG off; with DEBUG on runserver serves them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "fabric_ops.web.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fabric_ops.urls"
WSGI_APPLICATION = "fabric_ops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# SQLite under var/ by default so `make demo` needs no database server; PostgreSQL when DATABASE_URL is set.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'fabric_ops.sqlite3'}",
        conn_max_age=int(os.environ.get("FABRIC_OPS_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's processes (web, worker, detection, collector) share one SQLite file: WAL lets readers run beside
    # the writer, IMMEDIATE transactions take the write lock up front (no lock-upgrade deadlock), and writers
    # wait up to 30 s for each other instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
if DEBUG:  # runserver serves static files from the apps; WhiteNoise's "no collected files yet" is expected then
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

# Network configuration templates (Jinja2), one folder per platform.
NETWORK_TEMPLATES_DIR = Path(os.environ.get("FABRIC_OPS_TEMPLATES_DIR", BASE_DIR / "templates"))
INVENTORY_DIR = Path(os.environ.get("FABRIC_OPS_INVENTORY_DIR", BASE_DIR / "inventory"))
PLAYBOOKS_DIR = Path(os.environ.get("FABRIC_OPS_PLAYBOOKS_DIR", BASE_DIR / "playbooks"))
# Device secrets are files in this folder (one per credential name) or FABRIC_OPS_CRED_<NAME>_* variables.
SECRETS_DIR = Path(os.environ.get("FABRIC_OPS_SECRETS_DIR", VAR_DIR / "secrets"))

# Celery: Redis on this machine by default; production points CELERY_BROKER_URL at its own broker.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Device jobs are long: take one at a time so a slow switch does not hold other work hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "300"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "360"))
# Per-site queues for device work when FABRIC_OPS_SITE_QUEUES=1 (fabric_ops/routing.py, docs/deploy.md).
CELERY_TASK_ROUTES = ("fabric_ops.routing.route_task",)
# Exactly one beat runs these. Backups hourly and compliance every 15 minutes by default.
CELERY_BEAT_SCHEDULE = {
    "config-backup": {
        "task": "config.backup_all",
        "schedule": float(os.environ.get("FABRIC_OPS_BACKUP_INTERVAL", "3600")),
    },
    "config-compliance": {
        "task": "config.compliance_all",
        "schedule": float(os.environ.get("FABRIC_OPS_COMPLIANCE_INTERVAL", "900")),
    },
    # Health (docs/health.md): restore clean drains, resolve cleared incidents, retry needs-human, optic trends.
    "health-restore-due": {"task": "health.restore_due", "schedule": 30.0},
    "health-resolve-cleared": {"task": "health.resolve_cleared", "schedule": 60.0},
    "health-reevaluate": {"task": "health.reevaluate", "schedule": 300.0},
    # Alerting (docs/alerting.md): due group flushes, escalations, telemetry rules, incident sync, lost deliveries.
    "alerting-tick": {
        "task": "alerting.tick",
        "schedule": float(os.environ.get("FABRIC_OPS_ALERTING_TICK_S", "10")),
    },
    # The detection consumer (docs/health.md): a run that finds it running returns at once; expiring messages
    # do not pile up behind a busy worker.
    "health-detect": {
        "task": "health.detect",
        "schedule": float(os.environ.get("FABRIC_OPS_HEALTH_DETECT_BEAT_S", "5")),
        "options": {
            "expires": 5.0,
            **({"queue": q} if (q := os.environ.get("FABRIC_OPS_HEALTH_DETECT_QUEUE")) else {}),
        },
    },
    "health-optical-scan": {
        "task": "health.optical_scan",
        "schedule": float(os.environ.get("FABRIC_OPS_HEALTH_OPTICAL_SCAN_INTERVAL", "300")),
    },
}
# Health: detector threshold overrides ({"congestion": {...}, "link": {...}, "device": {...}}, JSON) and guardrail
# limits (JSON, e.g. {"min_uplink_fraction": 0.75}); the defaults and their reasons are in docs/health.md.
FABRIC_OPS_HEALTH_THRESHOLDS = json.loads(os.environ.get("FABRIC_OPS_HEALTH_THRESHOLDS", "{}"))
FABRIC_OPS_HEALTH_GUARDRAILS = json.loads(os.environ.get("FABRIC_OPS_HEALTH_GUARDRAILS", "{}"))
# Seconds a remediation's commit stays unconfirmed before the switch reverts by itself.
FABRIC_OPS_HEALTH_REVERT_IN = int(os.environ.get("FABRIC_OPS_HEALTH_REVERT_IN", "120"))
# Incidents whose alarms all cleared this long ago are resolved (drains wait for their restore instead).
FABRIC_OPS_HEALTH_RESOLVE_AFTER_S = float(os.environ.get("FABRIC_OPS_HEALTH_RESOLVE_AFTER_S", "300"))
# A remediation run whose worker shows no sign of life for this long is resumed by a re-delivered task.
FABRIC_OPS_HEALTH_STALE_RUN_S = float(os.environ.get("FABRIC_OPS_HEALTH_STALE_RUN_S", "60"))
# Detection as Celery work (health.detect): seconds one run consumes before it checkpoints and re-queues itself,
# the consumer lease's TTL, the checkpoint interval, and an optional queue of its own (it holds a worker slot).
FABRIC_OPS_HEALTH_DETECT_RUN_S = float(os.environ.get("FABRIC_OPS_HEALTH_DETECT_RUN_S", "60"))
FABRIC_OPS_HEALTH_DETECT_LEASE_S = float(os.environ.get("FABRIC_OPS_HEALTH_DETECT_LEASE_S", "10"))
FABRIC_OPS_HEALTH_DETECT_CHECKPOINT_S = float(os.environ.get("FABRIC_OPS_HEALTH_DETECT_CHECKPOINT_S", "10"))
FABRIC_OPS_HEALTH_DETECT_QUEUE = os.environ.get("FABRIC_OPS_HEALTH_DETECT_QUEUE", "")
# How long a remediation queues behind another job holding a device's lock before giving up.
FABRIC_OPS_HEALTH_LOCK_WAIT_S = float(os.environ.get("FABRIC_OPS_HEALTH_LOCK_WAIT_S", "60"))

# Alerting: "celery" enqueues flushes and deliveries; "outbox" keeps them in-process (tests drive the tasks).
FABRIC_OPS_ALERTING_DISPATCH = os.environ.get("FABRIC_OPS_ALERTING_DISPATCH", "celery")
# Queue for alerting tasks (empty: Celery's default queue); notifications should not wait behind device jobs.
FABRIC_OPS_ALERTING_QUEUE = os.environ.get("FABRIC_OPS_ALERTING_QUEUE", "")
# Base URL of the UI in notifications (ack/resolve links), and how long a signed action link stays valid.
FABRIC_OPS_EXTERNAL_URL = os.environ.get("FABRIC_OPS_EXTERNAL_URL", "http://127.0.0.1:8000")
FABRIC_OPS_ALERTING_LINK_MAX_AGE_S = float(os.environ.get("FABRIC_OPS_ALERTING_LINK_MAX_AGE_S", "86400"))

# Telemetry storage. The product writes with influxdb-client to <URL>/api/v2/write and reads InfluxQL from
# <URL>/query, so one URL serves InfluxDB 1.8+, 2.x (DBRP mapping) and 3.x. The default is the demo's local
# InfluxDB 1.6 behind the write-path proxy (`manage.py telemetry influx-local`).
FABRIC_OPS_INFLUX_URL = os.environ.get("FABRIC_OPS_INFLUX_URL", "http://127.0.0.1:8086")
# 2.x/3.x: an API token; 1.x with auth: "user:password"; empty when auth is off. Never logged.
FABRIC_OPS_INFLUX_TOKEN = os.environ.get("FABRIC_OPS_INFLUX_TOKEN", "")
# ... or a file holding it (docker/compose.yml mounts the bucket-scoped token there); the file wins when set.
FABRIC_OPS_INFLUX_TOKEN_FILE = os.environ.get("FABRIC_OPS_INFLUX_TOKEN_FILE", "")
if FABRIC_OPS_INFLUX_TOKEN_FILE:
    try:
        FABRIC_OPS_INFLUX_TOKEN = Path(FABRIC_OPS_INFLUX_TOKEN_FILE).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"FABRIC_OPS_INFLUX_TOKEN_FILE={FABRIC_OPS_INFLUX_TOKEN_FILE}: {exc}") from exc
    if not FABRIC_OPS_INFLUX_TOKEN:
        raise ImproperlyConfigured(f"FABRIC_OPS_INFLUX_TOKEN_FILE={FABRIC_OPS_INFLUX_TOKEN_FILE} is empty")
FABRIC_OPS_INFLUX_ORG = os.environ.get("FABRIC_OPS_INFLUX_ORG", "fabric_ops")
# "database/retention-policy": a 1.x database, or the 2.x bucket that a DBRP mapping of that name points at.
FABRIC_OPS_INFLUX_BUCKET = os.environ.get("FABRIC_OPS_INFLUX_BUCKET", "fabric_ops/autogen")
FABRIC_OPS_INFLUX_TIMEOUT_S = float(os.environ.get("FABRIC_OPS_INFLUX_TIMEOUT_S", "10"))
# 5000 lines per request is InfluxData's recommended batch size; a flush at least every second keeps data fresh.
FABRIC_OPS_INFLUX_BATCH_SIZE = int(os.environ.get("FABRIC_OPS_INFLUX_BATCH_SIZE", "5000"))
FABRIC_OPS_INFLUX_FLUSH_INTERVAL_S = float(os.environ.get("FABRIC_OPS_INFLUX_FLUSH_INTERVAL_S", "1.0"))
# Points held in memory per writer before they spill to the spool (~25 MB): bounds memory during bursts.
FABRIC_OPS_INFLUX_QUEUE_MAX_POINTS = int(os.environ.get("FABRIC_OPS_INFLUX_QUEUE_MAX_POINTS", "100000"))
# On-disk spool used while InfluxDB is unreachable; one directory per writer process (it is locked).
FABRIC_OPS_INFLUX_SPOOL_DIR = Path(os.environ.get("FABRIC_OPS_INFLUX_SPOOL_DIR", VAR_DIR / "spool" / "influx"))
# Points/s one collector process is sized for; the spool holds 10 minutes of it at 256 bytes a point.
FABRIC_OPS_TELEMETRY_TARGET_POINTS_PER_S = int(os.environ.get("FABRIC_OPS_TELEMETRY_TARGET_POINTS_PER_S", "10000"))
FABRIC_OPS_INFLUX_SPOOL_MAX_BYTES = int(
    os.environ.get("FABRIC_OPS_INFLUX_SPOOL_MAX_BYTES", str(FABRIC_OPS_TELEMETRY_TARGET_POINTS_PER_S * 600 * 256))
)
# How often the spool's open segment is fsynced while spooling (a host crash loses at most this much).
FABRIC_OPS_INFLUX_SPOOL_FSYNC_S = float(os.environ.get("FABRIC_OPS_INFLUX_SPOOL_FSYNC_S", "1.0"))
# gzip request bodies (~5x less traffic); worth it across a network, not on the demo's loopback.
FABRIC_OPS_INFLUX_GZIP = env_bool("FABRIC_OPS_INFLUX_GZIP", False)

# gNMI to the switches (collector streams, post-push checks): TLS verified against FABRIC_OPS_GNMI_TLS_CA (a PEM
# bundle of the CA that signed the switches' gNMI certificates). On by default whenever DEBUG is off; the embedded
# demo and the lab serve plain gRPC, so it is off by default with DEBUG on.
FABRIC_OPS_GNMI_TLS = env_bool("FABRIC_OPS_GNMI_TLS", not DEBUG)
FABRIC_OPS_GNMI_TLS_CA = os.environ.get("FABRIC_OPS_GNMI_TLS_CA", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("FABRIC_OPS_LOG_LEVEL", "INFO")},
    "loggers": {name: {"level": "WARNING"} for name in ("paramiko", "napalm", "pygnmi", "netmiko")},
}

# REST API. Token first, so an anonymous request gets 401 with a WWW-Authenticate header; sessions (with CSRF
# on unsafe methods, enforced by DRF's SessionAuthentication) serve the browser UI.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["fabric_ops.web.permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "fabric_ops.web.api.filters.FilterBackend",  # django-filter's, without building a FilterSet to filter nothing
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "fabric_ops.web.api.pagination.Pagination",
    # JSON only: the browsable API would render FK choice lists of thousands of switches.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "fabric_ops.web.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FabricOps API",
    "DESCRIPTION": "Source of truth, configuration push jobs, what-if analysis, lab control and health of FabricOps.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI assets from drf-spectacular-sidecar: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One schema name per shared choice set (device roles appear on devices, assignments and push requests).
    "ENUM_NAME_OVERRIDES": {
        "DeviceRoleEnum": "fabric_ops.topology.choices.DeviceRole",
        "LinkStateEnum": "fabric_ops.topology.choices.LinkState",
        "RemediationModeEnum": "fabric_ops.health.choices.Mode",
    },
}

# Two-person rule: every push job created through the API that is not a dry run waits for someone else's approval.
FABRIC_OPS_PUSH_REQUIRE_APPROVAL = env_bool("FABRIC_OPS_PUSH_REQUIRE_APPROVAL", False)

# Production hardening, on whenever DEBUG is off (what `manage.py check --deploy` asks for). Behind a TLS-terminating
# proxy set FABRIC_OPS_SECURE_PROXY_SSL_HEADER=1 (it sends X-Forwarded-Proto) so redirects and secure cookies work.
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("FABRIC_OPS_SECURE_SSL_REDIRECT", True)
    # One year of HSTS once HTTPS is proven; lower it with FABRIC_OPS_HSTS_SECONDS while trying a deployment out.
    SECURE_HSTS_SECONDS = int(os.environ.get("FABRIC_OPS_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FABRIC_OPS_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("FABRIC_OPS_HSTS_PRELOAD", True)
    if env_bool("FABRIC_OPS_SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("FABRIC_OPS_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
