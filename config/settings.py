"""Tessera settings, all from the environment, with embedded defaults that need no external service.

Development (the default): SQLite under var/, a SQLite-backed Celery broker, generated secrets.
Production (TESSERA_ENV=production): DJANGO_SECRET_KEY, TESSERA_SIGNING_KEY and DJANGO_ALLOWED_HOSTS
are required, DATABASE_URL should point at PostgreSQL and CELERY_BROKER_URL at Redis or RabbitMQ.
"""
import datetime as dt
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str, load_dev_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TESSERA_VAR_DIR", str(BASE_DIR / "var")))

TESSERA_ENV = env_str("TESSERA_ENV", "development")
IS_PRODUCTION = TESSERA_ENV == "production"
DEBUG = env_bool("DJANGO_DEBUG", default=not IS_PRODUCTION)

if IS_PRODUCTION:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY")
    SIGNING_KEY = env_str("TESSERA_SIGNING_KEY")
    if len(SECRET_KEY) < 50 or len(SIGNING_KEY) < 32:
        raise ImproperlyConfigured(
            "In production set DJANGO_SECRET_KEY (50+ characters) and TESSERA_SIGNING_KEY (32+)."
        )
else:
    _dev_secrets = load_dev_secrets(VAR_DIR / "dev-secrets.json")
    SECRET_KEY = env_str("DJANGO_SECRET_KEY") or _dev_secrets["SECRET_KEY"]
    SIGNING_KEY = env_str("TESSERA_SIGNING_KEY") or _dev_secrets["SIGNING_KEY"]

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", default=[] if IS_PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.admin_site.TesseraAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "simple_history",
    "core",
    "merchants",
    "wallet",
    "pos_integration",
    "crm_sync",
    "backoffice",
    "engagement",
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
    # Names the signed-in user on audit history rows written during a request.
    "simple_history.middleware.HistoryRequestMiddleware",
]
# History is an audit trail: reverting from it would bypass the services' checks.
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "core.User"

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

# Database: PostgreSQL when DATABASE_URL says so, else an embedded SQLite file.
_database_url = env_str("DATABASE_URL")
if _database_url:
    # Connections are kept (DATABASE_CONN_MAX_AGE seconds) so a request does not pay a connect.
    # DATABASE_CONN_HEALTH_CHECKS=1 checks a kept connection ("SELECT 1") before each request's first
    # query: a round trip per request (about 6% of the counter's throughput). Off, as in Django: after
    # a database restart each worker's first request fails (500, the error shape; a till retries it
    # with the same idempotency key) and its connection is replaced.
    DATABASES = {
        "default": dj_database_url.parse(
            _database_url,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", False),
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # DATABASE_POOL=N: a psycopg pool of up to N connections per process (Django 5.1+), for
        # threaded servers; it replaces kept connections (CONN_MAX_AGE must then be 0).
        if env_int("DATABASE_POOL", 0) > 0:
            DATABASES["default"]["CONN_MAX_AGE"] = 0
            DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
                "min_size": 1, "max_size": env_int("DATABASE_POOL", 0), "timeout": 10,
            }
        # Server-side binding (psycopg's Cursor, not Django's default ClientCursor): parameters travel
        # apart from the SQL text, and psycopg prepares a statement on the server once it has run
        # DATABASE_PREPARE_THRESHOLD (default 5, 0 = never) times on a connection. Django then skips
        # quoting every value into the text in Python and PostgreSQL skips re-planning: the counter
        # answers about 1.5x the scans and 1.25x the purchases per second (README, Benchmarks).
        # Set DATABASE_SERVER_SIDE_BINDING=0 behind PgBouncer in transaction mode (it cannot keep
        # prepared statements across transactions).
        if env_bool("DATABASE_SERVER_SIDE_BINDING", True):
            _options = DATABASES["default"].setdefault("OPTIONS", {})
            _options["server_side_binding"] = True
            if env_int("DATABASE_PREPARE_THRESHOLD", 5) > 0:
                _options["prepare_threshold"] = env_int("DATABASE_PREPARE_THRESHOLD", 5)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "tessera.sqlite3",
            # IMMEDIATE takes the write lock at BEGIN, so the web process and the Celery worker
            # queue for it instead of failing with "database is locked" on a lock upgrade.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
    # The ledger's report indexes cover extra columns on PostgreSQL (INCLUDE); SQLite keeps their keys
    # only, which is all it needs at its scale.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Outside production WhiteNoise serves straight from the apps' static folders (no collectstatic),
# so the API docs' Swagger UI bundle is served locally by every process, test client included.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    # DRF's defaults with our JSON parser first (deep nesting is a 400, not a RecursionError's 500).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JsonParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("THROTTLE_LOGIN", "10/minute"),
        "register": env_str("THROTTLE_REGISTER", "5/minute"),
        # A receipt code and total can be guessed; claims are few per customer, so guessing is slow.
        "claim": env_str("THROTTLE_CLAIM", "10/hour"),
        # Guesses at one account (email or phone) from any number of addresses (core.throttling).
        "login_account": env_str("THROTTLE_LOGIN_ACCOUNT", "20/hour"),
        # The admin's "Forgotten your password?" form (merchants/password_reset.py): per client address, and
        # per email address asked about (whether or not it has an account), so no inbox can be mail-bombed.
        "password_reset": env_str("THROTTLE_PASSWORD_RESET", "20/hour"),
        "password_reset_email": env_str("THROTTLE_PASSWORD_RESET_EMAIL", "5/day"),
    },
    # Client addresses for throttling come from the last X-Forwarded-For hop our own proxy added, never
    # from what the client wrote there (production runs behind one TLS-terminating proxy).
    "NUM_PROXIES": env_int("NUM_PROXIES", 1 if IS_PRODUCTION else 0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": dt.timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": dt.timedelta(days=env_int("JWT_REFRESH_DAYS", 30)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # Access tokens carry a hash of the password: changing it (or erasure) ends every session at once.
    "CHECK_REVOKE_TOKEN": True,
}

# Cache (throttle counters, later rate limits and rendered images): Redis when REDIS_URL is set,
# else an in-process cache, which is enough for one development server.
_redis_url = env_str("REDIS_URL")
# Short socket timeouts: a hung Redis must cost a request a moment, never hang it (the throttles and
# the outbox listener read the cache inside requests).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_url,
                "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 1}}
    if _redis_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tessera API",
    "DESCRIPTION": "One wallet per customer holding many merchant loyalty cards.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from our own static files (drf-spectacular-sidecar): the docs work without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.add_error_responses",
    ],
}

# Celery: a SQLite-backed broker by default (kombu's SQLAlchemy transport), Redis or RabbitMQ in production.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith(("redis", "rediss")):
    # Publishing happens on commit inside requests (webhook deliveries, pass updates): a Redis that
    # accepts the connection and never answers must not hang them (kombu sets no timeout itself).
    # The CRM outbox listener publishes with its own, shorter limits (crm_sync.outbox).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 2}
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    # Expiry runs hourly: each card's points expire at the end of the merchant's local business day,
    # so an hourly pass catches every time zone's midnight soon after it passes.
    "expire-points": {"task": "wallet.tasks.expire_points_task", "schedule": 3600.0},
    # POS webhooks whose task never ran (broker down) or failed are retried with backoff; connectors
    # that can poll (Clover) are asked for what their webhooks missed.
    "pos-retry-deliveries": {"task": "pos_integration.retry_deliveries", "schedule": 120.0},
    "pos-poll-connections": {"task": "pos_integration.poll_connections", "schedule": 600.0},
    # CRM delivery: events are shipped on commit; the sweep catches what that missed and the retries.
    "crm-sweep": {"task": "crm_sync.sweep", "schedule": 30.0},
    # Customers hear about points that will expire (each program's warning days) before they do.
    "warn-expiring-points": {"task": "wallet.tasks.warn_expiring_points_task", "schedule": 3600.0},
    # Engagement: each planned message is decided and sent when its recipient's local time comes.
    "engagement-dispatch": {"task": "engagement.dispatch_due_messages", "schedule": 60.0},
    # The offer line on wallet passes follows offers opening and closing.
    "engagement-pass-offers": {"task": "engagement.refresh_pass_offer_lines", "schedule": 900.0},
}

# Engagement plugs into the core here (wallet/hooks.py): offers at the counter, welcome offers on
# enrolment, the offer line on passes, their part of a customer's data export and erasure.
TESSERA_EARNING_BONUS_HOOK = "engagement.bonuses.earning_bonus"
TESSERA_ENROLMENT_HOOKS = ["engagement.welcome.card_enrolled"]
TESSERA_ERASURE_HOOKS = ["engagement.push_devices.forget_customer", "engagement.privacy.forget_send_logs"]
TESSERA_EXPORT_HOOKS = ["engagement.privacy.export_sections"]
TESSERA_PASS_OFFER_HOOK = "engagement.ranking.pass_offer_line"  # noqa: S105 (a dotted path)
# Engagement channels: channel key -> the ChannelSender class that sends on it.
TESSERA_ENGAGEMENT_CHANNELS = {
    "email": "engagement.channels.email.EmailChannel",
    "sms": "engagement.channels.sms.SmsChannel",
    "push": "engagement.channels.push.PushChannel",
    "wallet_pass": "engagement.channels.wallet_pass.WalletPassChannel",
}

# Email (engagement messages): Django's email framework; real providers through django-anymail, e.g.
# EMAIL_BACKEND=anymail.backends.postmark.EmailBackend with ANYMAIL_POSTMARK_SERVER_TOKEN=...
# Development prints emails to the console.
_EMAIL_DEFAULT_BACKEND = "smtp" if IS_PRODUCTION else "console"
EMAIL_BACKEND = env_str("EMAIL_BACKEND", f"django.core.mail.backends.{_EMAIL_DEFAULT_BACKEND}.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tessera <no-reply@localhost>")
# Every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"] (the provider's keys).
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items() if name.startswith("ANYMAIL_")}
# SMS through Twilio (no SID and token: the SMS channel is unavailable and the send log says so).
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER")
TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID")
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")
TESSERA_SMS_PROVIDER = env_str("TESSERA_SMS_PROVIDER", "engagement.channels.sms.TwilioSmsProvider")
# Texts one phone number may receive, across every merchant and customer record (fixed UTC hour and
# day; engagement/sms_caps.py). Beyond them a send is logged `number_capped`: against SMS pumping.
SMS_MAX_PER_NUMBER_PER_HOUR = env_int("SMS_MAX_PER_NUMBER_PER_HOUR", 5)
SMS_MAX_PER_NUMBER_PER_DAY = env_int("SMS_MAX_PER_NUMBER_PER_DAY", 10)

# Push to the wallet app: Android through FCM HTTP v1 (a service account), iPhone through APNs with the
# .p8 key of APNS below and the app's bundle id. A platform left unset is skipped.
FCM_PROJECT_ID = env_str("FCM_PROJECT_ID")
FCM_SERVICE_ACCOUNT_FILE = env_str("FCM_SERVICE_ACCOUNT_FILE")
FCM_API_BASE = env_str("FCM_API_BASE", "https://fcm.googleapis.com")
FCM_TOKEN_URL = env_str("FCM_TOKEN_URL")
APNS_APP_BUNDLE_ID = env_str("APNS_APP_BUNDLE_ID")
APNS_APP_BASE_URL = env_str("APNS_APP_BASE_URL")

# Told after commit that a merchant has new outbox events (dotted paths to callables).
TESSERA_OUTBOX_LISTENERS = ["crm_sync.outbox.events_committed"]
# CRM connectors: dotted paths here, plus installed packages' `tessera.crm_connectors` entry points.
TESSERA_CRM_CONNECTORS = [
    "crm_sync.connectors.hubspot.connector.HubSpotConnector",
    "crm_sync.connectors.klaviyo.connector.KlaviyoConnector",
    "crm_sync.connectors.salesforce.connector.SalesforceConnector",
    "crm_sync.connectors.webhook.connector.WebhookCrmConnector",
]

# POS connectors: dotted paths here, plus any installed package's `tessera.pos_connectors` entry points.
TESSERA_POS_CONNECTORS = [
    "pos_integration.connectors.generic.connector.GenericConnector",
    "pos_integration.connectors.square.connector.SquareConnector",
    "pos_integration.connectors.shopify.connector.ShopifyConnector",
    "pos_integration.connectors.stripe.connector.StripeConnector",
    "pos_integration.connectors.clover.connector.CloverConnector",
]
# Anyone who knows a connection's URL can post to it: of the requests that fail verification, this
# many per connection and hour are kept for the admin (8 kB each at most); the rest are only logged.
POS_REJECTED_DELIVERIES_KEPT_PER_HOUR = env_int("POS_REJECTED_DELIVERIES_KEPT_PER_HOUR", 60)
# POS sales refused while a merchant's subscription lapsed are replayed when it pays, if this recent.
TESSERA_BILLING_HELD_SALES_DAYS = env_int("TESSERA_BILLING_HELD_SALES_DAYS", 30)

# Billing merchants through Stripe (see merchants/billing). Billing is enforced only where a Stripe
# secret key is configured: a self-hosted Tessera without Stripe never pauses earning.
STRIPE_BILLING = {
    "SECRET_KEY": env_str("STRIPE_BILLING_SECRET_KEY", ""),
    "WEBHOOK_SECRET": env_str("STRIPE_BILLING_WEBHOOK_SECRET", ""),
    # Only tests and local fakes change this; the SDK's default is Stripe's own API.
    "API_BASE": env_str("STRIPE_BILLING_API_BASE", "https://api.stripe.com"),
}
TESSERA_BILLING_ENABLED = env_bool("TESSERA_BILLING_ENABLED", bool(STRIPE_BILLING["SECRET_KEY"]))
# Days a past-due merchant keeps earning while Stripe retries the payment (0: pause at once).
TESSERA_BILLING_GRACE_DAYS = env_int("TESSERA_BILLING_GRACE_DAYS", 7)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # At DEBUG, django.template logs whole template contexts (the admin's user page holds a password hash).
    "loggers": {"django.template": {"level": "INFO"}},
}

if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# Passes (QR/barcodes, Apple Wallet, Google Wallet). The public URL is what passes and links point at.
# Rendered QR and Code 128 images kept per process (about 1-3 kB each; an image never goes stale).
TESSERA_IMAGE_CACHE_SIZE = env_int("TESSERA_IMAGE_CACHE_SIZE", 2048)
TESSERA_PUBLIC_URL = env_str("TESSERA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
_PASS_DIR = VAR_DIR / "passes"
APPLE_WALLET = {
    "PASS_TYPE_IDENTIFIER": env_str("APPLE_PASS_TYPE_IDENTIFIER", "pass.dev.tessera.loyalty"),
    "TEAM_IDENTIFIER": env_str("APPLE_TEAM_IDENTIFIER", "TESSERADEV"),
    # PEM files; `manage.py make_dev_pass_certificates` writes a self-signed set here for development.
    "CERTIFICATE_PATH": env_str("APPLE_PASS_CERTIFICATE", str(_PASS_DIR / "pass-certificate.pem")),
    "KEY_PATH": env_str("APPLE_PASS_KEY", str(_PASS_DIR / "pass-key.pem")),
    "KEY_PASSWORD": env_str("APPLE_PASS_KEY_PASSWORD"),
    "WWDR_CERTIFICATE_PATH": env_str("APPLE_WWDR_CERTIFICATE", str(_PASS_DIR / "wwdr.pem")),
}
APNS = {
    "BASE_URL": env_str("APNS_BASE_URL", "https://api.push.apple.com"),
    "KEY_PATH": env_str("APNS_KEY_PATH"),  # the .p8 token-auth key
    "KEY_ID": env_str("APNS_KEY_ID"),
    "TEAM_ID": env_str("APNS_TEAM_ID"),
}
GOOGLE_WALLET = {
    "ISSUER_ID": env_str("GOOGLE_WALLET_ISSUER_ID", "3388000000000000000"),
    "SERVICE_ACCOUNT_FILE": env_str("GOOGLE_WALLET_SERVICE_ACCOUNT_FILE"),
    "API_BASE_URL": env_str("GOOGLE_WALLET_API_BASE_URL", "https://walletobjects.googleapis.com/walletobjects/v1"),
    "TOKEN_URL": env_str("GOOGLE_OAUTH_TOKEN_URL", "https://oauth2.googleapis.com/token"),
    "ORIGINS": env_list("GOOGLE_WALLET_ORIGINS"),
}
