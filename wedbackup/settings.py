"""Settings, all read from the environment in this one place (see .env.example)."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from .env import (
    ConfigError,
    database_config,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    local_secret,
    new_django_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("WEDBACKUP_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Production: secrets must come from the environment and the secure defaults below apply.
PRODUCTION = env_bool("WEDBACKUP_PRODUCTION", False)
if PRODUCTION and DEBUG:
    raise ConfigError("DEBUG must be off when WEDBACKUP_PRODUCTION is on")
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = local_secret(VAR_DIR, "secret_key", new_django_secret)

# Fernet key (or comma-separated keys, newest first, for rotation) for provider credentials.
CREDENTIALS_KEYS = env_list("WEDBACKUP_CREDENTIALS_KEY", [])
if not CREDENTIALS_KEYS:
    if PRODUCTION:
        raise ConfigError("WEDBACKUP_CREDENTIALS_KEY must be set in production")
    CREDENTIALS_KEYS = [local_secret(VAR_DIR, "credentials_key", lambda: Fernet.generate_key().decode())]

# AES-256 master key (url-safe base64 of 32 bytes) that wraps each wedding's data key for client-side
# encryption. Losing it loses every encrypted backup: keep it outside the database and back it up.
ENCRYPTION_MASTER_KEY = env_str("WEDBACKUP_ENCRYPTION_KEY")
if not ENCRYPTION_MASTER_KEY:
    if PRODUCTION:
        raise ConfigError("WEDBACKUP_ENCRYPTION_KEY must be set in production")
    ENCRYPTION_MASTER_KEY = local_secret(VAR_DIR, "encryption_key", lambda: Fernet.generate_key().decode())

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_rq",
    "providers",
    "backups",
    "protection",
    "costs",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wedbackup.middleware.SuperuserOnlyPaths",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# django-rq's views (queues, jobs, workers, cron history) check only is_staff: superusers only here.
WEDBACKUP_SUPERUSER_PATHS = ["/admin/rq/"]

ROOT_URLCONF = "wedbackup.urls"
WSGI_APPLICATION = "wedbackup.wsgi.application"

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
    },
]

DATABASES = {
    "default": database_config(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'wedbackup.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Queue names in the order one worker serves them.
QUEUE_NAMES = ["critical", "default", "bulk", "health"]
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": env_int("RQ_DEFAULT_TIMEOUT", 3600)} for name in QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = True
RQ = {"WORKER_CLASS": "wedbackup.worker.Worker"}
# What a worker imports before it forks work horses, so each horse inherits the SDKs instead of importing them
# per job: modules, or "module:function" to call (see wedbackup.worker).
WEDBACKUP_WORKER_PRELOAD = ["backups.tasks", "costs.tasks", "console.tasks", "providers.backends:backends_preload"]
# Abandoned jobs (wedbackup.worker): while a job runs, its worker renews the job's entry in rq's started registry
# every HEARTBEAT seconds; an entry not renewed for ABANDONED_AFTER seconds is an abandoned job (its worker or machine
# died), which any live worker's maintenance, every MAINTENANCE_INTERVAL seconds, re-queues (the job's Retry) or
# fails. A dead worker's job is re-queued within ABANDONED_AFTER + MAINTENANCE_INTERVAL + HEARTBEAT seconds at most.
WEDBACKUP_WORKER_HEARTBEAT = env_int("WEDBACKUP_WORKER_HEARTBEAT", 10)
# glibc malloc arenas of a worker and its work horses (wedbackup.worker.malloc_arenas_limit); 0: glibc's default.
WEDBACKUP_WORKER_MALLOC_ARENAS = env_int("WEDBACKUP_WORKER_MALLOC_ARENAS", 2)
WEDBACKUP_WORKER_ABANDONED_AFTER = env_int("WEDBACKUP_WORKER_ABANDONED_AFTER", 30)
WEDBACKUP_WORKER_MAINTENANCE_INTERVAL = env_int("WEDBACKUP_WORKER_MAINTENANCE_INTERVAL", 15)
if not 0 < WEDBACKUP_WORKER_HEARTBEAT < WEDBACKUP_WORKER_ABANDONED_AFTER:
    raise ConfigError("WEDBACKUP_WORKER_HEARTBEAT must be positive and shorter than WEDBACKUP_WORKER_ABANDONED_AFTER")
if WEDBACKUP_WORKER_MAINTENANCE_INTERVAL < 1:
    raise ConfigError("WEDBACKUP_WORKER_MAINTENANCE_INTERVAL must be at least 1 second")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "wedbackup.staticfiles.PlotlyFinder",
]
# Static files are served by WhiteNoise (gunicorn in production: `manage.py collectstatic` first, which writes
# compressed files with hashed names); outside production it serves them from the finders, no collectstatic needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage" if PRODUCTION
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise looks there too (empty until a collectstatic)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "wedbackup@localhost")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Who hears about failovers (comma-separated).
WEDBACKUP_NOTIFY_EMAILS = env_list("WEDBACKUP_NOTIFY_EMAILS", [])
# Alerts (protection.alerts): who hears (e-mails, comma-separated; a JSON webhook, Slack-compatible), and how
# often an alert that stays open is sent again.
WEDBACKUP_ALERT_EMAILS = env_list("WEDBACKUP_ALERT_EMAILS", WEDBACKUP_NOTIFY_EMAILS)
WEDBACKUP_ALERT_WEBHOOK_URL = env_str("WEDBACKUP_ALERT_WEBHOOK_URL", "")
WEDBACKUP_ALERT_REPEAT_MINUTES = env_int("WEDBACKUP_ALERT_REPEAT_MINUTES", 240)
# An alert check that has more than this many alerts to send (a big outage) sends one digest listing them instead.
WEDBACKUP_ALERT_DIGEST_OVER = env_int("WEDBACKUP_ALERT_DIGEST_OVER", 5)
# When the checks (protection.checks, every 5 minutes) raise: a wedding below policy this long, a job queued or
# running this long, a wedding-day source folder without a new file this long; a cost snapshot above this monthly
# amount in the snapshot's currency (0: no budget).
WEDBACKUP_ALERT_BELOW_POLICY_MINUTES = env_int("WEDBACKUP_ALERT_BELOW_POLICY_MINUTES", 60)
WEDBACKUP_ALERT_STUCK_MINUTES = env_int("WEDBACKUP_ALERT_STUCK_MINUTES", 120)
WEDBACKUP_ALERT_SOURCE_IDLE_MINUTES = env_int("WEDBACKUP_ALERT_SOURCE_IDLE_MINUTES", 90)
WEDBACKUP_COST_BUDGET_MONTHLY = env_float("WEDBACKUP_COST_BUDGET_MONTHLY", 0.0)
# Restore drills (protection.drills): files restored from each provider per drill.
WEDBACKUP_DRILL_FILES = env_int("WEDBACKUP_DRILL_FILES", 5)
# Scrubbing (protection.scrub): bytes read between two progress writes (a chunk; one copy larger is its own chunk).
WEDBACKUP_SCRUB_CHUNK_BYTES = env_int("WEDBACKUP_SCRUB_CHUNK_BYTES", 1024 * 1024 * 1024)

# Engine tunables.
WEDBACKUP_PART_SIZE = env_int("WEDBACKUP_PART_SIZE", 8 * 1024 * 1024)
WEDBACKUP_PROVIDER_CONCURRENCY = env_int("WEDBACKUP_PROVIDER_CONCURRENCY", 4)
# Assets a batch uploads at once (each thread puts a small file to its targets one after another, a large one to
# all at once): the concurrency of small-file uploads per worker. Raise it for clouds far away (latency-bound).
WEDBACKUP_ASSET_THREADS = env_int("WEDBACKUP_ASSET_THREADS", 4)
if WEDBACKUP_ASSET_THREADS < 1:
    raise ConfigError("WEDBACKUP_ASSET_THREADS must be at least 1")
# Seconds an upload slot is leased for; renewed every third of it while held, so a killed worker's slot frees soon:
# by default when its job counts as abandoned, so the job's next run finds the slots free.
WEDBACKUP_SLOT_LEASE = env_int("WEDBACKUP_SLOT_LEASE", WEDBACKUP_WORKER_ABANDONED_AFTER)
# Seconds a slot taken for a batch, restore or verify stays with it unused before it goes back to Redis for
# workers elsewhere (kept for the next file meanwhile: two Redis round trips per slot, not per file).
WEDBACKUP_SLOT_IDLE = env_float("WEDBACKUP_SLOT_IDLE", 1.0)
# Seconds a batch may go on reusing a slot it took from Redis; an older one goes back on release, so workers
# elsewhere get their turn during a long batch. (WEDBACKUP_SLOT_IDLE=0 keeps no slot at all.)
WEDBACKUP_SLOT_KEEP = env_float("WEDBACKUP_SLOT_KEEP", 10.0)
WEDBACKUP_HEALTH_INTERVAL = env_int("WEDBACKUP_HEALTH_INTERVAL", 30)
WEDBACKUP_HEALTH_QUEUE = env_str("WEDBACKUP_HEALTH_QUEUE", "health")
WEDBACKUP_PROBE_TIMEOUT = env_int("WEDBACKUP_PROBE_TIMEOUT", 20)
# Circuit breaker: open after N consecutive failures, or an error rate over a window with enough calls.
WEDBACKUP_BREAKER_FAILURES = env_int("WEDBACKUP_BREAKER_FAILURES", 3)
WEDBACKUP_BREAKER_ERROR_RATE = env_float("WEDBACKUP_BREAKER_ERROR_RATE", 0.5)
WEDBACKUP_BREAKER_WINDOW = env_int("WEDBACKUP_BREAKER_WINDOW", 120)
WEDBACKUP_BREAKER_MIN_CALLS = env_int("WEDBACKUP_BREAKER_MIN_CALLS", 10)
WEDBACKUP_BREAKER_COOLDOWN = env_int("WEDBACKUP_BREAKER_COOLDOWN", 30)
# Recurring jobs (console.cron, run by `manage.py rqcron console.cron`): the console's stored figures every N s,
# the cost model every M s; the health probes every WEDBACKUP_HEALTH_INTERVAL s.
WEDBACKUP_SNAPSHOT_INTERVAL = env_int("WEDBACKUP_SNAPSHOT_INTERVAL", 300)
WEDBACKUP_COST_SNAPSHOT_INTERVAL = env_int("WEDBACKUP_COST_SNAPSHOT_INTERVAL", 3600)
WEDBACKUP_HEALTH_RETENTION_DAYS = env_int("WEDBACKUP_HEALTH_RETENTION_DAYS", 30)
# Provider endpoints on private or loopback addresses (the local fleet, servers on your own network); link-local
# and cloud-metadata addresses are always refused.
WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = env_bool("WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS", not PRODUCTION)
# The only server folders the console may import from and restore into (comma-separated absolute paths).
WEDBACKUP_IMPORT_ROOTS = env_list("WEDBACKUP_IMPORT_ROOTS", [str(VAR_DIR / "incoming")])
WEDBACKUP_RESTORE_ROOTS = env_list("WEDBACKUP_RESTORE_ROOTS", [str(VAR_DIR / "restores")])
# Watched sources (manage.py watch_sources, protection.sources): a file is taken once its size and mtime have not
# changed for QUIET seconds; wedding-day weddings are also rescanned in full every RESCAN seconds (missed events,
# network mounts); the watched weddings are re-read every REFRESH seconds; one watcher owns a wedding through a Redis
# lease of LEASE seconds, renewed while it lives (a killed watcher's weddings move on after that).
WEDBACKUP_WATCH_QUIET_SECONDS = env_float("WEDBACKUP_WATCH_QUIET_SECONDS", 5.0)
WEDBACKUP_WATCH_RESCAN_SECONDS = env_float("WEDBACKUP_WATCH_RESCAN_SECONDS", 60.0)
WEDBACKUP_WATCH_REFRESH_SECONDS = env_float("WEDBACKUP_WATCH_REFRESH_SECONDS", 10.0)
WEDBACKUP_WATCH_LEASE_SECONDS = env_float("WEDBACKUP_WATCH_LEASE_SECONDS", 30.0)
if WEDBACKUP_WATCH_QUIET_SECONDS < 0 or WEDBACKUP_WATCH_LEASE_SECONDS < 3:
    raise ConfigError("WEDBACKUP_WATCH_QUIET_SECONDS must be >= 0 and WEDBACKUP_WATCH_LEASE_SECONDS >= 3")
# New weddings: a folder holding a wedding.yaml dropped here is imported and backed up; it must be inside
# WEDBACKUP_IMPORT_ROOTS (the default is inside the default import root); empty: no inbox.
WEDBACKUP_INBOX_ROOT = env_str("WEDBACKUP_INBOX_ROOT", str(VAR_DIR / "incoming" / "inbox"))
# Object Lock: one lock reaches at most this many days ahead; a daily job renews it while retention runs.
WEDBACKUP_LOCK_WINDOW_DAYS = env_int("WEDBACKUP_LOCK_WINDOW_DAYS", 30)
# Zip downloads: built by a worker in this folder (removed once downloaded), for weddings up to this size.
WEDBACKUP_ZIP_DIR = env_str("WEDBACKUP_ZIP_DIR", str(VAR_DIR / "zips"))
WEDBACKUP_ZIP_MAX_BYTES = env_int("WEDBACKUP_ZIP_MAX_BYTES", 20 * 1024**3)
# Photo thumbnails for the console's grid, made at ingest and kept here (never on the providers).
WEDBACKUP_THUMB_DIR = env_str("WEDBACKUP_THUMB_DIR", str(VAR_DIR / "thumbnails"))
# /readyz: at least one RQ worker must have sent a heartbeat within this many seconds.
WEDBACKUP_READY_WORKER_SECONDS = env_int("WEDBACKUP_READY_WORKER_SECONDS", 120)
# /metrics: a bearer token, and/or client addresses allowed without one (comma-separated; none by default: behind a
# reverse proxy every request comes from the proxy's address); neither set: refused.
WEDBACKUP_METRICS_TOKEN = env_str("WEDBACKUP_METRICS_TOKEN", "")
WEDBACKUP_METRICS_ALLOW = env_list("WEDBACKUP_METRICS_ALLOW", [])
# An object no copy accounts for is removed by verification only once it is this many seconds old.
WEDBACKUP_ORPHAN_MIN_AGE = env_int("WEDBACKUP_ORPHAN_MIN_AGE", 24 * 3600)
# Bytes per second assumed for failover estimates until throughput has been measured.
WEDBACKUP_FAILOVER_THROUGHPUT = env_int("WEDBACKUP_FAILOVER_THROUGHPUT", 10 * 1024 * 1024)

SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None

# WEDBACKUP_LOG_FORMAT=json: one JSON object per line (python-json-logger), for log shippers; else plain text.
LOG_FORMAT = env_str("WEDBACKUP_LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ConfigError("WEDBACKUP_LOG_FORMAT must be text or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"botocore": {"level": "WARNING"}, "azure": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
