"""Auterity settings: one file, every value from the environment (django-environ).

Defaults are safe for a developer machine (SQLite, console email, embedded broker); production
sets the variables listed in .env.example. Nothing here is production-only code.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core -----------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django_prometheus",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rest_framework_simplejwt",
    "waffle",
    "django_celery_beat",
    "axes",
    "core",
    "accounts",
    "providers",
    "routing",
    "analytics",
    "gateway",
    # The provider simulator: a development tool (a fake upstream), here only for its
    # run_simulator command; it has no models and imports nothing from the apps above.
    "simulator",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.request_context.RequestContextMiddleware",
    "core.api_errors.StoreUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.api_input.QueryStringCheckMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.RequestSizeLimitMiddleware",
    "accounts.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-axes: answers a locked-out login with its lockout page (docs/security.md).
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "auterity.urls"
# Served by granian's ASGI interface (auterity/server.py); the gateway's paths never reach
# MIDDLEWARE there (auterity/asgi.py, gateway/app.py). manage.py runserver and the test client
# use Django's default WSGI handler, which hands the gateway's paths to the same application
# (gateway/bridge.py).
ASGI_APPLICATION = "auterity.asgi.application"
WSGI_APPLICATION = None

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

# --- Database -------------------------------------------------------------------------------
# SQLite is the zero-setup default; PostgreSQL (DATABASE_URL=postgres://...) in production and CI.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
# 0: Django runs an ASGI request's synchronous work on a thread of its own choosing, so a kept
# connection could outlive the request that opened it unchecked; the gateway's own database
# work runs on its I/O threads, whose connections stay open (gateway/offload.py).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A database host that stops answering (rather than refusing) must not hold a thread for the
# operating system's TCP timeout (minutes): connecting gives up after this many seconds.
DATABASE_CONNECT_TIMEOUT_SECONDS = env.int("DATABASE_CONNECT_TIMEOUT_SECONDS", default=3)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT_SECONDS)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web workers, Celery and the simulator's callers read while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not :memory:, so the live-server tests' concurrent writers wait instead of
    # failing with "table is locked"; one per process so parallel test runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
# Shared by every process: routing snapshot version, rate-limit counters. Redis in production
# (CACHE_URL=redis://...); the file cache keeps the zero-setup default correct across processes.
CACHES = {
    "default": env.cache_url(
        "CACHE_URL",
        default=env.str("REDIS_URL", default=f"filecache://{VAR_DIR / 'cache'}"),
    ),
}
# While Redis is unreachable the cache answers like an empty one instead of raising
# (core/cache.py), trying Redis again at most every CACHE_RETRY_SECONDS; a Redis that stops
# answering holds a call for at most CACHE_SOCKET_TIMEOUT_SECONDS.
CACHE_RETRY_SECONDS = env.float("CACHE_RETRY_SECONDS", default=1.0)
CACHE_SOCKET_TIMEOUT_SECONDS = env.float("CACHE_SOCKET_TIMEOUT_SECONDS", default=0.5)
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "core.cache.FailSoftRedisCache"
    CACHES["default"].setdefault("OPTIONS", {})
    CACHES["default"]["OPTIONS"].setdefault("socket_timeout", CACHE_SOCKET_TIMEOUT_SECONDS)
    CACHES["default"]["OPTIONS"].setdefault("socket_connect_timeout", CACHE_SOCKET_TIMEOUT_SECONDS)

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)
X_FRAME_OPTIONS = "DENY"
# Sessions serve only the admin and the browsable API (docs/security.md): never readable from
# JavaScript, not sent on cross-site requests, and over after a working day.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HTTPS-only deployments: redirect plain http and send HSTS (start small, then a year).
# Probes and scrapes inside the network may stay on plain http.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation). Empty: a key derived
# from SECRET_KEY, fine for development only (docs/security.md).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.jwt_auth.ScopedJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Reads need routing:view, writes routing:manage (accounts/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.RoutingReadManageWrite"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.CallerRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StandardPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # What the database cannot store is refused at the edge with 400 (core/api_input.py).
    "DEFAULT_PARSER_CLASSES": [
        "core.api_input.StrictJSONParser",
        "core.api_input.StrictFormParser",
        "core.api_input.StrictMultiPartParser",
    ],
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Auterity AI Router API",
    "DESCRIPTION": "Routing policies, providers, analytics and the AI gateway.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The gateway is not DRF: its paths and bodies are added by its own hook (gateway/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gateway.openapi.gateway_schema_hook",
        # The policy language's JSON Schema, from the routing engine's tables.
        "routing.api.schema.add_policy_components",
        # Every REST API operation's error answers (core/api_errors.py).
        "core.api_errors.document_error_responses",
    ],
}

# --- Callers --------------------------------------------------------------------------------
# Seconds a resolved API key is trusted in-process; a revoked key stops working after this.
PRINCIPAL_CACHE_SECONDS = env.float("PRINCIPAL_CACHE_SECONDS", default=5.0)
# While the database is unreachable, a key or token already resolved keeps its last good
# answer for up to this long after it was loaded (never past its own expiry); longer outages
# refuse it with 503, as they do keys never seen (docs/deployment.md, "Outages").
PRINCIPAL_STALE_MAX_SECONDS = env.float("PRINCIPAL_STALE_MAX_SECONDS", default=3600.0)
# How many API keys (most recently used first) each server process loads at start, so that
# through a database outage it serves keys it has not seen yet (accounts/principal.py).
PRINCIPAL_PRELOAD_MAX = env.int("PRINCIPAL_PRELOAD_MAX", default=5000)

# --- Hot-path snapshots (core/snapshot.py) --------------------------------------------------
# background: a thread per process reloads the catalogue, flags and stale principals, so no
# request waits on a store; inline: the request that finds a value due reloads it (what the
# test suite uses: a reload in another thread would not see a test's uncommitted rows).
SNAPSHOT_REFRESH = env.str("SNAPSHOT_REFRESH", default="background")
if SNAPSHOT_REFRESH not in ("background", "inline"):
    raise ImproperlyConfigured(
        f"SNAPSHOT_REFRESH must be background or inline, not {SNAPSHOT_REFRESH!r}"
    )

# --- Access control and abuse limits (docs/security.md) -------------------------------------
# Admin (and JWT) logins: django-axes counts failures in the database (shared by every
# process) and locks out a username from an address after AXES_FAILURE_LIMIT failures, for
# AXES_COOLOFF_MINUTES; `manage.py axes_reset_username NAME` / `axes_reset_ip IP` unlock.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
# Per username and address: a wrong password from elsewhere cannot lock the admin out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner line in every manage.py command's output
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
# The client address is REMOTE_ADDR, as the web server sets it: behind a proxy, make the proxy
# the only way in (docs/deployment.md) or every client shares the proxy's address.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_TOKEN_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=env.int("JWT_REFRESH_TOKEN_HOURS", default=24)),
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "ALGORITHM": "HS256",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": True,
}
# Per API key or user, shared by every process; a key may override both (0: no limit).
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=1000)
RATE_LIMIT_PER_HOUR = env.int("RATE_LIMIT_PER_HOUR", default=10000)
# Where counters live: auto (Redis when CACHE_URL is Redis, else the database), redis, database.
RATE_LIMIT_STORE = env.str("RATE_LIMIT_STORE", default="auto")
RATE_LIMIT_REDIS_URL = env.str("RATE_LIMIT_REDIS_URL", default="")
# POST /api/auth/token/ attempts per client address and minute (password guessing); 0: none.
AUTH_TOKEN_RATE_LIMIT_PER_MINUTE = env.int("AUTH_TOKEN_RATE_LIMIT_PER_MINUTE", default=20)
# Larger request bodies get 413 before they are read (the seed's 1 MiB).
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Gateway --------------------------------------------------------------------------------
# Where the demo providers point: the provider simulator (python manage.py run_simulator).
PROVIDER_SIMULATOR_URL = env.str("PROVIDER_SIMULATOR_URL", default="http://127.0.0.1:9100")
COST_OPTIMIZATION_MAX_COST_INCREASE = env.float("COST_OPTIMIZATION_MAX_COST_INCREASE", default=0.05)
ROUTING_TIME_ZONE = env.str("ROUTING_TIME_ZONE", default=TIME_ZONE)
# Model used by /api/ai/execute when the request names none.
GATEWAY_DEFAULT_MODEL = env.str("GATEWAY_DEFAULT_MODEL", default="gpt-4o-mini")
# How often (seconds) a process checks whether policies/providers changed elsewhere.
ROUTING_SNAPSHOT_CHECK_SECONDS = env.float("ROUTING_SNAPSHOT_CHECK_SECONDS", default=1.0)
# What the cost guard expects an answer to be (docs/policies.md#expected-cost-and-latency): without
# max_tokens, the observed PERCENTILE of the model's (and caller's) visible output over the
# last WINDOW_HOURS of the request log, once MIN_SAMPLES calls were seen, else the DEFAULT
# (424: the p90 of Azure's conversation trace). Recomputed by analytics every
# INTERVAL_SECONDS; each process reads the result from the cache every CHECK_SECONDS.
ROUTING_EXPECTED_OUTPUT_DEFAULT = env.int("ROUTING_EXPECTED_OUTPUT_DEFAULT", default=424)
ROUTING_OUTPUT_ESTIMATES_PERCENTILE = env.float("ROUTING_OUTPUT_ESTIMATES_PERCENTILE", default=90)
ROUTING_OUTPUT_ESTIMATES_MIN_SAMPLES = env.int("ROUTING_OUTPUT_ESTIMATES_MIN_SAMPLES", default=20)
ROUTING_OUTPUT_ESTIMATES_WINDOW_HOURS = env.float(
    "ROUTING_OUTPUT_ESTIMATES_WINDOW_HOURS", default=24
)
ROUTING_OUTPUT_ESTIMATES_INTERVAL_SECONDS = env.float(
    "ROUTING_OUTPUT_ESTIMATES_INTERVAL_SECONDS", default=300
)
ROUTING_OUTPUT_ESTIMATES_CHECK_SECONDS = env.float(
    "ROUTING_OUTPUT_ESTIMATES_CHECK_SECONDS", default=10
)
if not 0 < ROUTING_OUTPUT_ESTIMATES_PERCENTILE <= 100:
    raise ImproperlyConfigured("ROUTING_OUTPUT_ESTIMATES_PERCENTILE must be in (0, 100]")
if ROUTING_EXPECTED_OUTPUT_DEFAULT < 1 or ROUTING_OUTPUT_ESTIMATES_MIN_SAMPLES < 1:
    raise ImproperlyConfigured(
        "ROUTING_EXPECTED_OUTPUT_DEFAULT and ROUTING_OUTPUT_ESTIMATES_MIN_SAMPLES must be >= 1"
    )
# The longest Retry-After the gateway waits out on one target before falling back instead.
GATEWAY_MAX_RETRY_WAIT_SECONDS = env.float("GATEWAY_MAX_RETRY_WAIT_SECONDS", default=2.0)
# Requests (calls and streams) one web process serves at once; the next gets 503 with
# Retry-After at once instead of waiting (docs/deployment.md). /healthz is never refused.
GATEWAY_MAX_CONCURRENT_REQUESTS = env.int("GATEWAY_MAX_CONCURRENT_REQUESTS", default=4000)
# Threads per web process for the gateway's blocking steps (rate-limit counters, credential
# and snapshot loads, usage counters): each holds at most one database connection.
GATEWAY_BLOCKING_THREADS = env.int("GATEWAY_BLOCKING_THREADS", default=8)

# --- Routing: circuit breakers and live provider health (docs/configuration.md) -------------
# Per process and provider (routing/engine/breaker.py): the breaker opens after
# FAILURE_THRESHOLD consecutive failures, or when at least MIN_VOLUME requests in the last
# WINDOW_SECONDS failed at ERROR_RATE_THRESHOLD or more; after COOLDOWN_SECONDS it lets
# HALF_OPEN_TRIALS requests through at a time and closes after SUCCESS_THRESHOLD of them succeed.
# Each failed trial multiplies the cool-down by COOLDOWN_FACTOR up to COOLDOWN_MAX_SECONDS, so
# a recovered provider gets traffic back within that; COOLDOWN_JITTER (a fraction) spreads the
# trials of many workers.
ROUTING_BREAKER_FAILURE_THRESHOLD = env.int("ROUTING_BREAKER_FAILURE_THRESHOLD", default=5)
ROUTING_BREAKER_ERROR_RATE_THRESHOLD = env.float(
    "ROUTING_BREAKER_ERROR_RATE_THRESHOLD", default=0.5
)
ROUTING_BREAKER_MIN_VOLUME = env.int("ROUTING_BREAKER_MIN_VOLUME", default=20)
ROUTING_BREAKER_WINDOW_SECONDS = env.float("ROUTING_BREAKER_WINDOW_SECONDS", default=60.0)
ROUTING_BREAKER_COOLDOWN_SECONDS = env.float("ROUTING_BREAKER_COOLDOWN_SECONDS", default=1.0)
ROUTING_BREAKER_COOLDOWN_MAX_SECONDS = env.float(
    "ROUTING_BREAKER_COOLDOWN_MAX_SECONDS", default=5.0
)
ROUTING_BREAKER_COOLDOWN_FACTOR = env.float("ROUTING_BREAKER_COOLDOWN_FACTOR", default=2.0)
ROUTING_BREAKER_COOLDOWN_JITTER = env.float("ROUTING_BREAKER_COOLDOWN_JITTER", default=0.2)
ROUTING_BREAKER_HALF_OPEN_TRIALS = env.int("ROUTING_BREAKER_HALF_OPEN_TRIALS", default=1)
ROUTING_BREAKER_SUCCESS_THRESHOLD = env.int("ROUTING_BREAKER_SUCCESS_THRESHOLD", default=1)
# Live health figures (routing/engine/stats.py): how fast the latency estimate and the error
# rate forget old samples, how much one outcome moves the error rate, and the latency assumed
# for a provider that has requests in flight but has never answered yet.
ROUTING_STATS_LATENCY_DECAY_SECONDS = env.float("ROUTING_STATS_LATENCY_DECAY_SECONDS", default=10.0)
ROUTING_STATS_ERROR_DECAY_SECONDS = env.float("ROUTING_STATS_ERROR_DECAY_SECONDS", default=60.0)
ROUTING_STATS_ERROR_ALPHA = env.float("ROUTING_STATS_ERROR_ALPHA", default=0.1)
ROUTING_STATS_INFLIGHT_PENALTY_SECONDS = env.float(
    "ROUTING_STATS_INFLIGHT_PENALTY_SECONDS", default=60.0
)
# Decisions share a provider's live figures for this long (cheaper than recomputing them per
# request); a breaker that just opened is still honoured exactly when the call is made.
ROUTING_STATS_VIEW_MAX_AGE_SECONDS = env.float("ROUTING_STATS_VIEW_MAX_AGE_SECONDS", default=0.05)

# --- Performance: the gateway's data plane (bench/README.md) --------------------------------
# Request-log rows are committed by a background thread per process, in groups, within
# milliseconds of the answer (analytics/log_writer.py). True: each request answers only once its
# own row is committed (nothing lost if the process is killed; one more database round trip).
REQUEST_LOG_COMMIT_BEFORE_RESPONSE = env.bool("REQUEST_LOG_COMMIT_BEFORE_RESPONSE", default=False)
# How long the writer lets rows gather before writing them in one statement (not when a
# request waits for its row).
REQUEST_LOG_BATCH_SECONDS = env.float("REQUEST_LOG_BATCH_SECONDS", default=0.05)
# Rows a process may hold while the database is unreachable; past that new rows are dropped
# (logged, counted in auterity_request_log_dropped_total).
REQUEST_LOG_QUEUE_MAX_ROWS = env.int("REQUEST_LOG_QUEUE_MAX_ROWS", default=20000)
# How long an exiting process keeps writing the rows it still holds.
REQUEST_LOG_DRAIN_SECONDS = env.float("REQUEST_LOG_DRAIN_SECONDS", default=10.0)
# Every row is appended to a local spool file before its request answers, and shipped from
# there when the database could not take it in time, including by the next process after a
# crash or kill -9 (analytics/spool.py). Empty: no spool (rows wait in memory only). One folder
# per database below it; keep it on local disk, one per host.
REQUEST_LOG_SPOOL_DIR = env.str("REQUEST_LOG_SPOOL_DIR", default=str(VAR_DIR / "request-log-spool"))
# The spool directory's size limit; past it, rows that cannot be committed are dropped (counted).
REQUEST_LOG_SPOOL_MAX_BYTES = env.int("REQUEST_LOG_SPOOL_MAX_BYTES", default=1024**3)
# Rows are made durable against a machine crash (fsync) at most this often, in batches.
REQUEST_LOG_SPOOL_FSYNC_SECONDS = env.float("REQUEST_LOG_SPOOL_FSYNC_SECONDS", default=1.0)
# How often each web process looks for spool files of dead processes to ship.
REQUEST_LOG_SPOOL_ADOPT_SECONDS = env.float("REQUEST_LOG_SPOOL_ADOPT_SECONDS", default=10.0)
if REQUEST_LOG_QUEUE_MAX_ROWS < 1 or min(REQUEST_LOG_DRAIN_SECONDS, REQUEST_LOG_BATCH_SECONDS) < 0:
    raise ImproperlyConfigured(
        "REQUEST_LOG_QUEUE_MAX_ROWS must be at least 1, REQUEST_LOG_DRAIN_SECONDS and "
        "REQUEST_LOG_BATCH_SECONDS at least 0"
    )

# --- Celery ---------------------------------------------------------------------------------
# The filesystem transport needs no server, so `make run` works anywhere; Redis in production.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery-queue"
    (_queue_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
        # Where the exchange tables live; kombu's default is ./control in the working folder.
        "control_folder": str(_queue_dir / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TIMEZONE = TIME_ZONE
# Jobs write their outcome to the database, so no result backend by default; set one
# (e.g. redis://127.0.0.1:6379/2) to inspect task results with Celery's tools.
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# --- Scheduled jobs: rollups, provider probes, reports, retention (docs/jobs.md) -------------
# Rollups: request log -> routing_analytics per period; each run recomputes the periods of the
# last ANALYTICS_ROLLUP_LOOKBACK_MINUTES so rows written late are counted.
ANALYTICS_ROLLUP_PERIOD_MINUTES = env.int("ANALYTICS_ROLLUP_PERIOD_MINUTES", default=5)
ANALYTICS_ROLLUP_INTERVAL_SECONDS = env.float("ANALYTICS_ROLLUP_INTERVAL_SECONDS", default=60.0)
ANALYTICS_ROLLUP_LOOKBACK_MINUTES = env.int("ANALYTICS_ROLLUP_LOOKBACK_MINUTES", default=60)
# /api/routing/analytics/summary/ and the dashboard: ranges up to this long are computed from
# the request log (exact percentiles, no lag), longer ones from the rollups (fast at any size).
ANALYTICS_SUMMARY_LOG_MAX_HOURS = env.int("ANALYTICS_SUMMARY_LOG_MAX_HOURS", default=6)
# Health probes: each provider's model list, timed; status changes with hysteresis.
PROVIDER_PROBE_INTERVAL_SECONDS = env.float("PROVIDER_PROBE_INTERVAL_SECONDS", default=30.0)
PROVIDER_PROBE_TIMEOUT_SECONDS = env.float("PROVIDER_PROBE_TIMEOUT_SECONDS", default=5.0)
PROVIDER_PROBE_SLOW_SECONDS = env.float("PROVIDER_PROBE_SLOW_SECONDS", default=2.0)
PROVIDER_PROBE_FAILURES_TO_DOWN = env.int("PROVIDER_PROBE_FAILURES_TO_DOWN", default=3)
PROVIDER_PROBE_SLOW_TO_DEGRADED = env.int("PROVIDER_PROBE_SLOW_TO_DEGRADED", default=2)
PROVIDER_PROBE_SUCCESSES_TO_RECOVER = env.int("PROVIDER_PROBE_SUCCESSES_TO_RECOVER", default=2)
# Daily cost report: cron fields "minute hour day-of-month month day-of-week" in TIME_ZONE.
ANALYTICS_REPORT_SCHEDULE = env.str("ANALYTICS_REPORT_SCHEDULE", default="0 6 * * *")
ANALYTICS_REPORT_RECIPIENTS = env.list("ANALYTICS_REPORT_RECIPIENTS", default=[])
# Policy canaries (docs/policies.md#canary-activation): who hears of an automatic rollback
# (default: the report's recipients), and how often beat judges them.
CANARY_ALERT_RECIPIENTS = env.list("CANARY_ALERT_RECIPIENTS", default=[])
CANARY_EVALUATION_INTERVAL_SECONDS = env.float("CANARY_EVALUATION_INTERVAL_SECONDS", default=60)
# Retention: raw rows older than this are deleted in batches; rollups and reports are kept.
REQUEST_LOG_RETENTION_DAYS = env.int("REQUEST_LOG_RETENTION_DAYS", default=30)
PROVIDER_PROBE_RETENTION_DAYS = env.int("PROVIDER_PROBE_RETENTION_DAYS", default=7)
# The audit trail (accounts.AuditEvent) is kept forever unless this is set (days).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=0)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=5000)
RETENTION_SCHEDULE = env.str("RETENTION_SCHEDULE", default="30 3 * * *")
# sync_prices_task: model prices from the pinned price data set (docs/providers.md#pricing).
PRICE_SYNC_SCHEDULE = env.str("PRICE_SYNC_SCHEDULE", default="15 4 * * *")
if ANALYTICS_ROLLUP_PERIOD_MINUTES < 1 or 1440 % ANALYTICS_ROLLUP_PERIOD_MINUTES:
    raise ImproperlyConfigured(
        "ANALYTICS_ROLLUP_PERIOD_MINUTES must divide a day (1, 5, 15, 60...)"
    )
if REQUEST_LOG_RETENTION_DAYS < 1 or PROVIDER_PROBE_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("retention periods must be at least 1 day")
if AUDIT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("AUDIT_RETENTION_DAYS must be 0 (keep forever) or more")


for _name in ("ANALYTICS_REPORT_SCHEDULE", "RETENTION_SCHEDULE", "PRICE_SYNC_SCHEDULE"):
    if len(vars()[_name].split()) != 5:
        raise ImproperlyConfigured(f"{_name} needs 5 cron fields, got {vars()[_name]!r}")

# Beat reads its schedule from the database (django-celery-beat; Admin > Periodic tasks): the
# data migrations analytics/0007 and 0011 and providers/0005 install the seven jobs with the
# values above, and operators edit them there. Nothing is scheduled from settings: the database
# scheduler would copy such entries over the operators' edits at every start.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {}

# --- Email ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="auterity@localhost")

# --- Observability: logs, metrics, health (docs/observability.md) ----------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# json: one JSON object a line, for log shippers (the default unless DEBUG); plain: for people.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
# One line per request (method, path, status, duration, request id) when the response closes.
LOG_ACCESS = env.bool("LOG_ACCESS", default=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {
            "()": "core.logs.RequestIdFilter",
            "default": None if LOG_FORMAT == "json" else "-",
        },
        "redact": {"()": "core.logs.SecretRedactionFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC, with microseconds
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own console handler would print django.* lines a second time, unformatted.
    "loggers": {"django": {"handlers": [], "level": LOG_LEVEL, "propagate": True}},
}
# Celery keeps this configuration instead of installing its own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# django-prometheus' database metrics (queries, errors, connections by alias and vendor) come
# from its wrappers of Django's backends; the vendor, and so every vendor check, stays the same.
for _database in DATABASES.values():
    _database["ENGINE"] = _database["ENGINE"].replace(
        "django.db.backends.", "django_prometheus.db.backends.", 1
    )
# Optional bearer token for GET /metrics; empty leaves it open (scraped from a private network).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# ai_cost_savings_percentage covers requests logged in this many seconds, recomputed at most
# every METRICS_SAVINGS_CACHE_SECONDS per process.
METRICS_SAVINGS_WINDOW_SECONDS = env.int("METRICS_SAVINGS_WINDOW_SECONDS", default=3600)
METRICS_SAVINGS_CACHE_SECONDS = env.float("METRICS_SAVINGS_CACHE_SECONDS", default=15.0)
# /readyz: how long to wait for the broker, and how long one answer about it is reused.
READINESS_BROKER_TIMEOUT_SECONDS = env.float("READINESS_BROKER_TIMEOUT_SECONDS", default=1.0)
READINESS_BROKER_CACHE_SECONDS = env.float("READINESS_BROKER_CACHE_SECONDS", default=5.0)
