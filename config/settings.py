"""Cleared settings, read from environment variables.

With nothing set, Cleared runs on an embedded default: a SQLite file and
kombu's filesystem transport (a broker that needs no server, shared by the
web, worker and beat processes through a folder). ``DATABASE_URL`` and
``CELERY_BROKER_URL`` move the same code onto PostgreSQL and Redis.
"""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from config import backends
from config.databases import databases
from config.env import env_bool, env_decimal, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CLEARED_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "django-insecure-dev-only-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.admin.OperatorsAdminConfig",  # superusers only (config/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Every change on the record: per-model history tables (pipeline/history.py).
    "simple_history",
    "pipeline",
    "billing",
    "receivables",
    "online",  # paying online through the processor (Stripe): stands on billing and receivables
    "audits",
    "reminders",
    "hooks",  # webhooks out, chat, the calendar feed: reads the apps above, none reads it
    "dashboards",  # reads every app above, nobody reads it but the API
    "ninja",  # django-ninja's own Swagger UI files, served from static (no CDN)
    "api",  # last: /api/v1/ and API tokens, on top of everything
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page behind the login: Cache-Control: private, no-store (and the
    # redirects and errors LoginRequiredMiddleware and the views below answer).
    "pipeline.middleware.PrivatePagesNotCachedMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # After LoginRequiredMiddleware: a signed-in manager passes the code step here.
    "pipeline.accounts.TwoFactorMiddleware",
    "pipeline.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Who made a change: the signed-in person, for the history (pipeline/history.py).
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a refused guess into the login page's lockout message.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy on every response: scripts, styles, images and
# requests come from Cleared itself and nowhere else. No inline <script>,
# on*= handler, style="..." or <style> anywhere (templates load
# static/js/*.js and static/css/*.css), and no eval (htmx trigger filters are
# replaced by static/js/cleared.js). Pico's icons are data: SVG images.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "pipeline.context_processors.cleared",
            ],
        },
    },
]

DATABASES = databases(BASE_DIR)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) speed PostgreSQL up; SQLite, the embedded
# default, builds the same index without the included column.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_USER_MODEL = "pipeline.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# django-axes refuses a guess before the password is even checked; it counts
# failures in the database (never the cache), by username and address together
# so one attacker cannot lock a whole office out (README: "Accounts and two-factor").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Axes' database handler, with what it stores masked: a card number typed as a
# username (or sent in any header or field of a log-in) is never kept in full;
# the masked username is also the lockout's key (pipeline.accounts).
AXES_HANDLER = "pipeline.accounts.ThrottleHandler"
AXES_USERNAME_CALLABLE = "pipeline.accounts.throttle_username"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("CLEARED_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CLEARED_LOGIN_COOLOFF_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "pipeline.accounts.lockout_response"
# Behind N reverse proxies, REMOTE_ADDR is the last proxy's: the client's address
# is then the Nth from the right of X-Forwarded-For (pipeline.accounts.client_address).
CLEARED_PROXY_COUNT = env_int("CLEARED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "pipeline.accounts.client_address"
AXES_VERBOSE = False
# Two-factor (django-otp): managers and superusers must, others may.
OTP_TOTP_ISSUER = env_str("CLEARED_TOTP_ISSUER", "Cleared")
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 3600)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# Each user has a time zone of their own (User.time_zone); this is the
# default for new users.
DEFAULT_USER_TIME_ZONE = env_str("DEFAULT_USER_TIME_ZONE", "Europe/London")

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Email ---------------------------------------------------------------
# Django 6.1 configures email through MAILERS; the console backend prints
# mail in development, SMTP delivers it in production.
_EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
_EMAIL_OPTIONS = {}
if _EMAIL_BACKEND.endswith("smtp.EmailBackend"):
    _EMAIL_OPTIONS = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25),
        "username": env_str("EMAIL_HOST_USER", ""),
        "password": env_str("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", False),
        "use_ssl": env_bool("EMAIL_USE_SSL", False),
        "timeout": env_int("EMAIL_TIMEOUT", 20),
    }
elif _EMAIL_BACKEND.endswith("filebased.EmailBackend"):
    # Each message a file in EMAIL_FILE_PATH (default var/mail): mail you can read
    # without a mail server.
    _EMAIL_OPTIONS = {"file_path": env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))}
MAILERS = {"default": {"BACKEND": _EMAIL_BACKEND, "OPTIONS": _EMAIL_OPTIONS}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Cleared <cleared@localhost>")

# --- Celery --------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # One folder is both the in- and the out-box, so the web, worker and beat
    # processes on this machine share the queue without any server.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Short timeouts: a write's publish to a down broker gives up at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = backends.redis_broker_transport_options()
    CELERY_BROKER_CONNECTION_TIMEOUT = backends.BROKER_CONNECTION_TIMEOUT
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}

# --- Follow-up reminders (reminders/) ----------------------------------------
# README.md, "Reminders", documents each of these. Delays are in the unit their
# name says; a reminder on a date falls due at REMINDERS_MORNING_HOUR in its
# owner's own time zone.
REMINDERS_SCAN_SECONDS = env_int("REMINDERS_SCAN_SECONDS", 60)
REMINDERS_LOOKAHEAD_HOURS = env_int("REMINDERS_LOOKAHEAD_HOURS", 24)
REMINDERS_CATCHUP_DAYS = env_int("REMINDERS_CATCHUP_DAYS", 14)
REMINDERS_HOVER_HOURS = env_int("REMINDERS_HOVER_HOURS", 24)
REMINDERS_MORNING_HOUR = env_int("REMINDERS_MORNING_HOUR", 9)
REMINDERS_CHECK_IN_HOURS = env_int("REMINDERS_CHECK_IN_HOURS", 24)
REMINDERS_DELIVERY_GRACE_DAYS = env_int("REMINDERS_DELIVERY_GRACE_DAYS", 1)
REMINDERS_SATISFACTION_DAYS = env_int("REMINDERS_SATISFACTION_DAYS", 2)
REMINDERS_STALE_DAYS = env_int("REMINDERS_STALE_DAYS", 14)
# Payment overdue: days after the due date for each nag; the last rung also
# goes to the rep's manager.
REMINDERS_PAYMENT_LADDER_DAYS = env_list("REMINDERS_PAYMENT_LADDER_DAYS", ["7", "14", "30"])
# Invoice cut-off: this many days before the customer's accounting cut-off.
REMINDERS_INVOICE_CUTOFF_DAYS = env_int("REMINDERS_INVOICE_CUTOFF_DAYS", 3)
REMINDERS_DIGEST_MINUTES = env_int("REMINDERS_DIGEST_MINUTES", 30)
REMINDERS_POLL_SECONDS = env_int("REMINDERS_POLL_SECONDS", 15)
REMINDERS_PANEL_SIZE = env_int("REMINDERS_PANEL_SIZE", 12)
# Where links in emails point: the address people reach the site on. Defaults
# to the port `make run` serves (PORT); set it to the public URL in production.
CLEARED_SITE_URL = env_str(
    "CLEARED_SITE_URL",
    env_str("REMINDERS_SITE_URL", f"http://127.0.0.1:{env_int('PORT', 8000)}"),
).rstrip("/")
# Deals decided at once by the engine (one transaction, a fixed number of queries).
REMINDERS_BATCH = env_int("REMINDERS_BATCH", 200)
# How long a worker holds a claim (a scan, a drain, a batch of changed deals)
# before another may take it over: a killed worker delays work this long. Short
# is safe: a lease that runs out under a slow worker only means two workers
# decide the same deals, and the engine is idempotent.
REMINDERS_LEASE_SECONDS = env_int("REMINDERS_LEASE_SECONDS", 30)
# A digest's claim: longer than the mail server may take to answer (EMAIL_TIMEOUT),
# so a slow send is never taken over and sent twice.
REMINDERS_DIGEST_LEASE_SECONDS = env_int("REMINDERS_DIGEST_LEASE_SECONDS", 120)
# The heartbeat: one scan every REMINDERS_SCAN_SECONDS, on its own queue so no
# backlog of other work delays it, and with no expiry: a late scan still runs
# (a second one running at once returns at once, see reminders.tasks).
CELERY_BEAT_SCHEDULE["reminders-scan"] = {
    "task": "reminders.reminders_scan",
    "schedule": float(REMINDERS_SCAN_SECONDS),
    "options": {"queue": "heartbeat"},
}
CELERY_TASK_ROUTES = {"reminders.reminders_scan": {"queue": "heartbeat"}}
TEMPLATES[0]["OPTIONS"]["context_processors"].append("reminders.context.reminders")

# --- Cleared's own business settings ----------------------------------------
CURRENCY = env_str("CLEARED_CURRENCY", "USD")
CURRENCY_SYMBOL = env_str("CLEARED_CURRENCY_SYMBOL", "$")
# A deal above this is almost certainly a typo (an extra zero or two).
MAX_DEAL_AMOUNT = env_decimal("CLEARED_MAX_DEAL_AMOUNT", "10000000.00")

# --- Billing (billing/) --------------------------------------------------------
# The deposit the terms policy asks for: a percentage of the deal ("20%") or a
# fixed amount ("250.00"), never more than the deal itself.
CLEARED_DEPOSIT = env_str("CLEARED_DEPOSIT", "20%")
# A required deposit is expected this many days after the promise (reminders).
CLEARED_DEPOSIT_EXPECTED_DAYS = env_int("CLEARED_DEPOSIT_EXPECTED_DAYS", 3)
# Invoices: "net N days" terms and the printed number's prefix.
CLEARED_INVOICE_TERMS_DAYS = env_int("CLEARED_INVOICE_TERMS_DAYS", 30)
CLEARED_INVOICE_PREFIX = env_str("CLEARED_INVOICE_PREFIX", "INV-")
# Credit notes (a voided invoice's credit) have their own gap-free series: "CN-00001".
CLEARED_CREDIT_NOTE_PREFIX = env_str("CLEARED_CREDIT_NOTE_PREFIX", "CN-")
# A payment still pending after this many days gets a "payment still pending" reminder
# (the rep's; the manager's too after twice as long).
CLEARED_PENDING_DAYS = env_int("CLEARED_PENDING_DAYS", 10)
# A bounce within this many days makes a customer a slow payer.
CLEARED_BOUNCE_WINDOW_DAYS = env_int("CLEARED_BOUNCE_WINDOW_DAYS", 90)
# Commission on cleared money; a rep may have their own rate (billing.CommissionRate).
CLEARED_COMMISSION_RATE = env_decimal("CLEARED_COMMISSION_RATE", "0.10")
# The payment processor's webhook: HMAC-SHA256 shared secret and how old a
# signed timestamp may be. No secret: the webhook refuses every event.
CLEARED_WEBHOOK_SECRET = env_str(
    "CLEARED_WEBHOOK_SECRET", "dev-only-webhook-secret" if DEBUG else ""
)
CLEARED_WEBHOOK_TOLERANCE_SECONDS = env_int("CLEARED_WEBHOOK_TOLERANCE_SECONDS", 300)
# --- Paying online (online/) ----------------------------------------------------
# The card processor, Stripe, reached only through online/processor.py. With no
# STRIPE_SECRET_KEY (and DEBUG on) Cleared talks to localstripe, the fake Stripe
# server `make run` and the tests start (python -m online.localstripe_server), with
# placeholder test keys: no real money moves and the pages say so. In production
# (DEBUG off) the three keys are required.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_TEST_MODE = not STRIPE_SECRET_KEY
if STRIPE_TEST_MODE and not DEBUG:
    raise ImproperlyConfigured("STRIPE_SECRET_KEY must be set when DEBUG is off.")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY", "pk_test_cleared_localstripe")
STRIPE_WEBHOOK_SECRET = env_str(
    "STRIPE_WEBHOOK_SECRET", "whsec_cleared_dev_only" if STRIPE_TEST_MODE else ""
)
if not STRIPE_TEST_MODE and not (
    STRIPE_PUBLISHABLE_KEY.startswith("pk_") and STRIPE_WEBHOOK_SECRET.startswith("whsec_")
):
    raise ImproperlyConfigured(
        "With STRIPE_SECRET_KEY set, STRIPE_PUBLISHABLE_KEY (pk_…) and "
        "STRIPE_WEBHOOK_SECRET (whsec_…) must be set too."
    )
if STRIPE_TEST_MODE:
    STRIPE_SECRET_KEY = "sk_test_cleared_localstripe"  # noqa: S105 - localstripe takes any sk_
# The API the library calls (localstripe's address in test mode; empty: Stripe's own).
STRIPE_API_BASE = env_str(
    "STRIPE_API_BASE", "http://127.0.0.1:8420" if STRIPE_TEST_MODE else ""
).rstrip("/")
# Stripe.js: Stripe's own, or localstripe's copy served at the same path.
STRIPE_JS_URL = (
    f"{STRIPE_API_BASE}/js.stripe.com/v3/" if STRIPE_TEST_MODE else "https://js.stripe.com/v3/"
)
# Seconds the library waits for the processor before giving up (the page says so).
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 20)
# Reconciliation (online.tasks): a processor payment still pending after this long
# is looked up at the processor, in case its webhook was lost; one the customer left
# unfinished (no answer from the card) is bounced after ONLINE_ABANDONED_MINUTES.
ONLINE_RECONCILE_AFTER_SECONDS = env_int("ONLINE_RECONCILE_AFTER_SECONDS", 120)
ONLINE_ABANDONED_MINUTES = env_int("ONLINE_ABANDONED_MINUTES", 60)
# The card on file and refunds (online/on_file.py, online/refunds.py): charges and
# refunds written but never answered by the processor are asked again (same key).
CELERY_BEAT_SCHEDULE["online-on-file-reconcile"] = {
    "task": "online.on_file_reconcile",
    "schedule": float(env_int("ONLINE_RECONCILE_EVERY_SECONDS", 60)),
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["online-reconcile"] = {
    "task": "online.reconcile",
    "schedule": float(env_int("ONLINE_RECONCILE_EVERY_SECONDS", 60)),
    "options": {"expires": 55},
}

# The customer's own link (receivables/links.py): how long a new link works, how
# often one link and one address may open it, and how far ahead "I'll pay on …" may be.
CLEARED_LINK_DAYS = env_int("CLEARED_LINK_DAYS", 30)
CLEARED_LINK_RATE_LIMIT = env_int("CLEARED_LINK_RATE_LIMIT", 20)
CLEARED_LINK_RATE_WINDOW_SECONDS = env_int("CLEARED_LINK_RATE_WINDOW_SECONDS", 600)
CLEARED_PROMISE_MAX_DAYS = env_int("CLEARED_PROMISE_MAX_DAYS", 60)
# How to pay, shown to the customer on their link and statement: the business's
# own bank account (never a customer's). Empty: the page says to ask the rep.
CLEARED_PAY_TO_NAME = env_str("CLEARED_PAY_TO_NAME", "")
CLEARED_PAY_TO_BANK = env_str("CLEARED_PAY_TO_BANK", "")
CLEARED_PAY_TO_IBAN = env_str("CLEARED_PAY_TO_IBAN", "")
CLEARED_PAY_TO_BIC = env_str("CLEARED_PAY_TO_BIC", "")
CLEARED_PAY_TO_NOTE = env_str("CLEARED_PAY_TO_NOTE", "")
# Standing copies on customers follow lateness and ageing bounces (billing.tasks).
# The Not paid yet summary's old days, folded into one row per rep and stage
# (pipeline/not_paid.py): a few ms an hour; the totals are exact either way.
CELERY_BEAT_SCHEDULE["pipeline-fold-board-totals"] = {
    "task": "pipeline.fold_board_totals",
    "schedule": 3600.0,
    "options": {"expires": 3600.0},
}
CELERY_BEAT_SCHEDULE["billing-refresh-standings"] = {
    "task": "billing.refresh_standings",
    "schedule": 6 * 3600.0,
    "options": {"expires": 3600.0},
}
# Emails to customers (receivables/mail.py): a worker's claim on an email lapses
# after CLEARED_EMAIL_LEASE_SECONDS (longer than a slow SMTP send: EMAIL_TIMEOUT
# per step), a refusing server is retried with a doubling back-off up to
# CLEARED_EMAIL_MAX_ATTEMPTS, and the run sends what is due every
# CLEARED_EMAIL_RUN_SECONDS. Message-IDs are made on CLEARED_EMAIL_DOMAIN.
CLEARED_EMAIL_LEASE_SECONDS = env_int("CLEARED_EMAIL_LEASE_SECONDS", 300)
CLEARED_EMAIL_MAX_ATTEMPTS = env_int("CLEARED_EMAIL_MAX_ATTEMPTS", 8)
CLEARED_EMAIL_RUN_SECONDS = env_int("CLEARED_EMAIL_RUN_SECONDS", 60)
CLEARED_EMAIL_DOMAIN = env_str(
    "CLEARED_EMAIL_DOMAIN", DEFAULT_FROM_EMAIL.rpartition("@")[2].rstrip(">") or "localhost"
)
CELERY_BEAT_SCHEDULE["billing-customer-emails"] = {
    "task": "billing.customer_emails_run",
    "schedule": float(CLEARED_EMAIL_RUN_SECONDS),
    "options": {"expires": float(CLEARED_EMAIL_RUN_SECONDS)},
}

# --- Audits (audits/) --------------------------------------------------------
# A no-answer is retried this many minutes later; an auditor's claim on an
# audit lapses after this many minutes if the call is abandoned; a wrap-up's
# call window defaults to this long ("within the next hour").
CLEARED_AUDIT_RETRY_MINUTES = env_int("CLEARED_AUDIT_RETRY_MINUTES", 30)
CLEARED_AUDIT_CLAIM_MINUTES = env_int("CLEARED_AUDIT_CLAIM_MINUTES", 15)
CLEARED_AUDIT_WINDOW_MINUTES = env_int("CLEARED_AUDIT_WINDOW_MINUTES", 60)

# --- The Not paid yet board ---------------------------------------------------
# A deal "rots" when it has not moved for longer than its stage's limit (days).
CLEARED_ROTTING_DAYS = {
    "promised": env_int("CLEARED_ROTTING_DAYS_PROMISED", 7),
    "deposit": env_int("CLEARED_ROTTING_DAYS_DEPOSIT", 14),
    "audit_confirmed": env_int("CLEARED_ROTTING_DAYS_AUDIT_CONFIRMED", 7),
    "delivered": env_int("CLEARED_ROTTING_DAYS_DELIVERED", 30),
}

# --- Outgoing webhooks and the calendar feed (hooks/) ---------------------------
# Delivery runs on a queue of its own ("webhooks": `make run`'s worker and
# docker-compose's "webhooks" service), never a page's request or the
# reminders' queues. A refused delivery is retried after
# HOOKS_RETRY_BASE_SECONDS x 3^(attempt-1) (at most 6 h) until
# HOOKS_GIVE_UP_HOURS after the event; a subscription failing for
# HOOKS_DISABLE_AFTER_HOURS is disabled and its owner emailed. A worker's
# claim on a delivery lapses after HOOKS_LEASE_SECONDS (longer than a
# receiver may take, HOOKS_TIMEOUT_SECONDS), so a killed worker loses nothing.
HOOKS_TIMEOUT_SECONDS = env_int("HOOKS_TIMEOUT_SECONDS", 10)
HOOKS_LEASE_SECONDS = env_int("HOOKS_LEASE_SECONDS", 60)
# A worker sends a claimed batch (up to 20) this many at once.
HOOKS_SEND_THREADS = env_int("HOOKS_SEND_THREADS", 8)
HOOKS_RETRY_BASE_SECONDS = env_int("HOOKS_RETRY_BASE_SECONDS", 10)
HOOKS_GIVE_UP_HOURS = env_int("HOOKS_GIVE_UP_HOURS", 24)
HOOKS_DISABLE_AFTER_HOURS = env_int("HOOKS_DISABLE_AFTER_HOURS", 24)
HOOKS_RUN_SECONDS = env_int("HOOKS_RUN_SECONDS", 30)
HOOKS_SCAN_SECONDS = env_int("HOOKS_SCAN_SECONDS", 60)
# invoice.overdue: invoices that fell due within this many days (a bounded scan).
HOOKS_OVERDUE_LOOKBACK_DAYS = env_int("HOOKS_OVERDUE_LOOKBACK_DAYS", 7)
# Receivers on private or loopback addresses (SSRF): refused in production
# unless allowed here; allowed with DEBUG (and in the tests).
HOOKS_ALLOW_PRIVATE_TARGETS = env_bool("HOOKS_ALLOW_PRIVATE_TARGETS", DEBUG)
CELERY_TASK_ROUTES["hooks.*"] = {"queue": "webhooks"}
CELERY_BEAT_SCHEDULE["hooks-deliveries-run"] = {
    "task": "hooks.deliveries_run",
    "schedule": float(HOOKS_RUN_SECONDS),
    "options": {"queue": "webhooks", "expires": float(HOOKS_RUN_SECONDS)},
}
CELERY_BEAT_SCHEDULE["hooks-scan"] = {
    "task": "hooks.scan",
    "schedule": float(HOOKS_SCAN_SECONDS),
    "options": {"queue": "webhooks", "expires": float(HOOKS_SCAN_SECONDS)},
}

CELERY_BEAT_SCHEDULE["api-prune-idempotency"] = {
    "task": "api.prune_idempotency",
    "schedule": 3600.0,
    "options": {"expires": 3600.0},
}

# --- Cache ---------------------------------------------------------------------
# Pages are built from the database on every request (the Not paid yet board's
# totals too: kept exact by the database, pipeline/not_paid.py). The cache holds
# the API's rate counters. CACHE_URL=redis://... shares one cache between the
# web processes (docker-compose does); with nothing set each process keeps its
# own in memory.
# API requests per token per minute; past it a 429 with Retry-After (api/gate.py).
CLEARED_API_RATE = env_int("CLEARED_API_RATE", 120)
# How long an Idempotency-Key's first answer is kept (api/gate.py); older ones are
# pruned hourly, and a key reused after the window is a new request.
CLEARED_API_IDEMPOTENCY_HOURS = env_int("CLEARED_API_IDEMPOTENCY_HOURS", 24)
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": backends.redis_cache(CACHE_URL)}
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: only redis:// is supported.")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions live in the database (Django's default engine), never in the cache:
# a cache outage must not log everybody out or fail their requests.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Logging ---------------------------------------------------------------
# Every handler masks card numbers in the whole formatted record, message and
# traceback alike (pipeline/masking.py): a search for a card number, a form
# error quoting one, or an exception about one never writes it in full. The
# Django loggers are listed so that Django's default handlers (which would
# not mask) are replaced. Celery's loggers reach the root handler here; in
# the worker and beat, Celery installs handlers of its own, which
# config/celery.py makes mask too; gunicorn's: config/gunicorn.conf.py.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_cards": {"()": "pipeline.masking.MaskCardNumbersFilter"}},
    "formatters": {
        "masked": {
            "()": "pipeline.masking.MaskingFormatter",
            "format": "{levelname} {name}: {message}",
            "style": "{",
        },
        # runserver's access lines: "[time] "GET /deals/?q=… HTTP/1.1" 200 123".
        "masked_server": {
            "()": "pipeline.masking.MaskingFormatter",
            "wrap": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["mask_cards"],
            "formatter": "masked",
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "filters": ["mask_cards"],
            "formatter": "masked_server",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # WeasyPrint narrates each step of every PDF at INFO; its warnings still show.
        "weasyprint": {"level": "WARNING"},
        # The Stripe library narrates every request at INFO (ids only, never a card).
        "stripe": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# --- Production safety -------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
