"""Settings for the Molecule console.

Everything an operator changes comes from the environment (django-environ). With nothing set, the
console runs on the embedded default: SQLite under ``var/``, a Celery broker on kombu's filesystem
transport (no server) and the ``local`` backend. Setting ``DATABASE_URL`` and ``CELERY_BROKER_URL``
turns the same code into the distributed deployment described in ``compose.yaml``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("MOLECULE_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)
# var/ holds the database, keys and passwords. 0711, not 0700: local agents, which run as users
# of their own when the console is root, pass through it to their directories under
# var/workspaces; they can list nothing here, and every file of the console's is 0600 (the
# SQLite file is created so before SQLite does: its -wal and -shm files copy its mode).
if VAR_DIR.stat().st_uid == os.geteuid():
    VAR_DIR.chmod(0o711)
if not env.str("DATABASE_URL", default=""):
    os.close(os.open(VAR_DIR / "molecule.sqlite3", os.O_WRONLY | os.O_CREAT, 0o600))
for _private in ("secret_key", "secrets_encryption_key", "admin-password", "molecule.sqlite3"):
    with contextlib.suppress(OSError):
        if (VAR_DIR / _private).stat().st_mode & 0o077:
            (VAR_DIR / _private).chmod(0o600)


def _generated_once(name: str, make: str) -> str:
    """A value kept in ``var/<name>``, written the first time it is needed.

    The file appears atomically (link(2) fails if it exists), so a web process and a worker
    starting together never end up with two different values.
    """
    path = VAR_DIR / name
    if not path.exists():
        draft = VAR_DIR / f".{name}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(make)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _secret_key() -> str:
    # The embedded default must work with nothing configured, but a key that changes at every start
    # would log everybody out; so it is generated once and kept beside the SQLite file.
    if value := env.str("SECRET_KEY", default=""):
        return value
    return _generated_once("secret_key", secrets.token_urlsafe(50))


SECRET_KEY = _secret_key()


# --- API credentials and workspace secrets (README "API tokens, partner keys and secrets") -------
# The break-glass bearer for the JSON API: acts on every org, logged as the actor "admin-token".
# Empty (the default) disables it; org API tokens and partner keys are the everyday credentials.
ADMIN_TOKEN = env.str("ADMIN_TOKEN", default="")
if ADMIN_TOKEN and len(ADMIN_TOKEN) < 32:
    raise ImproperlyConfigured(
        "ADMIN_TOKEN is shorter than 32 characters; use e.g. `openssl rand -base64 32`."
    )


def _aes_key(name: str, value: str) -> str:
    """``value`` if it is 32 bytes in base64 (standard or url-safe); a loud error otherwise."""
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured(
            f"{name} must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)."
        )
    return value


def _secrets_encryption_key() -> str:
    # Workspace secrets are sealed with AES-256-GCM under this key (workspaces/vault.py). Like
    # SECRET_KEY, the embedded default generates one once into var/; set it in production and
    # back it up: without the key every stored secret is unreadable.
    if value := env.str("SECRETS_ENCRYPTION_KEY", default=""):
        return _aes_key("SECRETS_ENCRYPTION_KEY", value)
    made = base64.b64encode(secrets.token_bytes(32)).decode()
    return _aes_key(
        str(VAR_DIR / "secrets_encryption_key"), _generated_once("secrets_encryption_key", made)
    )


SECRETS_ENCRYPTION_KEY = _secrets_encryption_key()
# Older keys that may still decrypt (never encrypt), like SECRET_KEY_FALLBACKS: set the new key
# above, the old one here, restart, run `manage.py rotate_secrets_key`, then drop the fallback.
SECRETS_ENCRYPTION_KEY_FALLBACKS = [
    _aes_key("SECRETS_ENCRYPTION_KEY_FALLBACKS", key)
    for key in env.list("SECRETS_ENCRYPTION_KEY_FALLBACKS", default=[])
]

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Security: HTTPS, cookies, Content-Security-Policy, login throttling --------------------------
# MOLECULE_PROFILE=production turns on what a console served over HTTPS wants (HSTS, the redirect
# to HTTPS, cookies sent only over HTTPS), so `manage.py check --deploy` is clean; each is also
# settable on its own. The embedded default (scripts/run, http://127.0.0.1:8000) is not the
# production profile: it serves plain HTTP, where these would lock everybody out.
MOLECULE_PROFILE = env.str("MOLECULE_PROFILE", default="embedded")
if MOLECULE_PROFILE not in ("embedded", "production"):
    raise ImproperlyConfigured(
        f"MOLECULE_PROFILE is {MOLECULE_PROFILE!r}; use embedded (the default) or production."
    )
PRODUCTION = MOLECULE_PROFILE == "production"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# The agents' registry authenticates every call with its own bearer token and is often reached
# over a private network without TLS (loopback, the container network's gateway, the parity
# check's in-process server): it is not redirected unless this says otherwise.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^registry/"])
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
# The header's consent to the browsers' preload lists; nothing is listed until someone submits it.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
# Behind a proxy that terminates TLS, e.g. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
# (only if the proxy always sets or strips that header).
if _proxy_header := env.tuple("SECURE_PROXY_SSL_HEADER", default=()):
    SECURE_PROXY_SSL_HEADER = _proxy_header

# Pages load only the console's own static files: no inline script or style, no eval (htmx's
# hx-on is not used; static/js/console.js does what it did), nothing from another host.
_SELF, _NONE = "'self'", "'none'"
SECURE_CSP = {
    "default-src": [_SELF],
    "script-src": [_SELF],
    "style-src": [_SELF],
    "img-src": [_SELF, "data:"],
    "font-src": [_SELF],
    "connect-src": [_SELF],
    "form-action": [_SELF],
    "frame-ancestors": [_NONE],
    "base-uri": [_NONE],
    "object-src": [_NONE],
}
# The admin's own widgets (autocomplete, calendars, collapsible fieldsets) write style attributes
# into the markup they build, so its pages allow inline styles, and nothing else more
# (molecule/middleware.py AdminContentSecurityPolicy).
MOLECULE_ADMIN_CSP = {**SECURE_CSP, "style-src": [_SELF, "'unsafe-inline'"]}

# Login throttling (orgs/login_throttle.py): after this many failed logins for one username from
# one address within the lockout, that pair is refused until the lockout has passed. Counted in
# the default cache, which every web process and machine shares (the database unless CACHE_URL
# names another shared cache; never a per-process one).
MOLECULE_LOGIN_FAILURES = env.int("MOLECULE_LOGIN_FAILURES", default=5)
MOLECULE_LOGIN_LOCKOUT = env.int("MOLECULE_LOGIN_LOCKOUT", default=15 * 60)
if MOLECULE_LOGIN_FAILURES < 1 or MOLECULE_LOGIN_LOCKOUT < 1:
    raise ImproperlyConfigured("MOLECULE_LOGIN_FAILURES and MOLECULE_LOGIN_LOCKOUT must be >= 1.")
# The table is created by a migration (orgs/migrations/0006_cache_table.py).
CACHES = {"default": env.cache("CACHE_URL", default="dbcache://molecule_cache")}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "orgs",
    "workspaces",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Pages and their polled partials are tables: compressed, a fleet page is a tenth of the
    # bytes. CSRF tokens are masked per response, which is Django's answer to BREACH.
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Inside the CSP middleware, so the admin's policy is on the response before it is written.
    "molecule.middleware.AdminContentSecurityPolicy",
    "molecule.middleware.RefuseNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Innermost: it turns a view's lost database connection into 503 + Retry-After.
    "molecule.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "molecule.urls"

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

WSGI_APPLICATION = "molecule.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'molecule.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes every transaction take SQLite's write lock when it begins, so the row lock
    # that dispatch takes (a no-op on SQLite) is replaced by a whole-database lock instead of a
    # "database is locked" error halfway through a verb.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # A server database: each web thread and worker thread keeps its connection for a minute
    # instead of opening one per request (about 10 ms of the server's CPU each, most of a
    # heartbeat's cost). The health check (a ping when a request first uses a connection it
    # kept) replaces one that died with the server, so once a restarted PostgreSQL is back no
    # request fails on a dead connection; turning it off measured no faster. psycopg's pool was
    # not measured: a gthread thread holds one connection for its life, which is what a pool
    # sized to the threads would give (docs/registry-protocol.md, "Performance").
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("MOLECULE_DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve straight from the finders so the embedded default needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Logging ------------------------------------------------------------------------------------
# Everything goes to stderr, in every profile: Django's own default sends an unhandled error
# nowhere unless DEBUG is on (it mails ADMINS otherwise, and there are none). One handler, on the
# root logger; the named loggers below only set levels and propagate to it, so a record is
# written once (and a Celery worker, which puts its own handler on the root logger, writes it
# once too). Under ``manage.py run`` gunicorn's access and error logs go to the same stderr.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")


class StderrHandler(logging.StreamHandler):
    """A StreamHandler on whatever ``sys.stderr`` is when a record is written (like logging's
    own last-resort handler), not the stream that was there when logging was configured."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d: %(message)s"},
    },
    "handlers": {"stderr": {"()": StderrHandler, "formatter": "console"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        # Replaces Django's default handlers (a console that only speaks under DEBUG, and
        # mail_admins): its records reach the root handler instead.
        "django": {"handlers": [], "level": "INFO"},
        # Unhandled errors (500, with the traceback) and nothing below: the access log already
        # shows every 404.
        "django.request": {"level": "ERROR"},
        **{name: {"level": LOG_LEVEL} for name in ("molecule", "workspaces", "orgs", "api")},
    },
}

# --- Celery -------------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
# moleculefs:// is kombu's filesystem transport with atomic writes (molecule/broker.py).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="moleculefs://")
if CELERY_BROKER_URL.startswith(("moleculefs://", "filesystem://")):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    BROKER_DIR.chmod(0o700)  # the messages are the console's alone (see VAR_DIR)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # The exchange table (<exchange>.exchange files); kombu's default is "control" in the
        # current directory, which put control/*.exchange into the checkout.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing gives up fast when the broker is down: the verb is recorded, the request answers,
# and the reconcile sweep queues the lost backend call once the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Workspaces ---------------------------------------------------------------------------------


def _positive(name: str, default: float) -> float:
    value = env.float(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number of seconds, not {value}.")
    return value


# Backends this console can reach, by name. A workspace whose recorded backend is not here is
# "without backend": provision marks it failed and stop is a recorded no-op
# (docs/architecture.md §3).
MOLECULE_BACKEND_CLASSES = {
    "local": "workspaces.backends.local.LocalBackend",
    "docker": "workspaces.backends.docker.DockerBackend",
    "controlplane": "workspaces.backends.controlplane.ControlPlaneBackend",
}
MOLECULE_BACKENDS = env.list("MOLECULE_BACKENDS", default=["local"])
for _name in MOLECULE_BACKENDS:
    if _name not in MOLECULE_BACKEND_CLASSES:
        raise ImproperlyConfigured(
            f"MOLECULE_BACKENDS names {_name!r}; known backends are "
            f"{', '.join(sorted(MOLECULE_BACKEND_CLASSES))}."
        )

# Where agents call back; the backends hand it to every workspace they start.
MOLECULE_REGISTRY_URL = env.str("MOLECULE_REGISTRY_URL", default="http://127.0.0.1:8000")
# The bearer token a Prometheus scraper sends to GET /metrics (molecule/metrics.py). Empty: the
# endpoint answers 404, so a console never publishes its fleet's shape by accident.
MOLECULE_METRICS_TOKEN = env.str("MOLECULE_METRICS_TOKEN", default="")
# How many agent instances each web process keeps a redactor for (workspaces/redaction.py): one
# for each agent whose reports carry text. Measured: 0.5 KB an agent without secrets, 1.1 KB with
# two, so the default covers a 100,000-agent fleet in 50-110 MB a process; past it, the agent
# heard from least recently costs one indexed query at its next report with text.
MOLECULE_REDACTION_CACHE = env.int("MOLECULE_REDACTION_CACHE", default=100_000)
MOLECULE_LOCAL_ROOT = Path(
    env.str("MOLECULE_LOCAL_ROOT", default=str(VAR_DIR / "workspaces"))
).resolve()
# When the console runs as root, each local agent runs as a uid (and gid) of its own in
# [BASE, BASE + COUNT), derived from the workspace id; no /etc/passwd entry is needed. The
# default range sits above ordinary users and the usual /etc/subuid ranges (100000-165535).
MOLECULE_LOCAL_UID_BASE = env.int("MOLECULE_LOCAL_UID_BASE", default=200000)
MOLECULE_LOCAL_UID_COUNT = env.int("MOLECULE_LOCAL_UID_COUNT", default=100000)
if MOLECULE_LOCAL_UID_BASE < 1000 or MOLECULE_LOCAL_UID_COUNT < 1:
    raise ImproperlyConfigured(
        "MOLECULE_LOCAL_UID_BASE must be at least 1000 (no agent may share a system user's "
        "uid) and MOLECULE_LOCAL_UID_COUNT at least 1."
    )
if MOLECULE_LOCAL_UID_BASE + MOLECULE_LOCAL_UID_COUNT > 2**31:
    raise ImproperlyConfigured("MOLECULE_LOCAL_UID_BASE + MOLECULE_LOCAL_UID_COUNT exceeds 2^31.")

# The docker backend (workspaces/backends/docker.py; README "Docker backend").
# DOCKER_HOST as the docker CLI reads it; scripts/engine prints one for the engine it starts.
MOLECULE_DOCKER_HOST = env.str("DOCKER_HOST", default="")
# Built locally by scripts/agent-image; never pulled at run time.
MOLECULE_WORKSPACE_IMAGE = env.str("MOLECULE_WORKSPACE_IMAGE", default="molecule-agent:latest")
MOLECULE_DOCKER_NETWORK = env.str("MOLECULE_DOCKER_NETWORK", default="molecule-net")
# Labels this console's containers, so consoles sharing an engine never take each other's
# containers for orphans. Stable for one installation: web and workers must agree on it.
MOLECULE_DOCKER_CONSOLE_ID = env.str(
    "MOLECULE_DOCKER_CONSOLE_ID", default=hashlib.sha256(str(VAR_DIR).encode()).hexdigest()[:12]
)
# Where agents in containers reach the registry. Empty: MOLECULE_REGISTRY_URL, with a loopback
# host replaced by "molecule-console", which each container resolves to molecule-net's gateway
# (the console must listen there too, e.g. manage.py run --host 0.0.0.0).
MOLECULE_DOCKER_REGISTRY_URL = env.str("MOLECULE_DOCKER_REGISTRY_URL", default="")
# The engine's socket as mounted into T4 containers; empty: the path in DOCKER_HOST.
MOLECULE_DOCKER_SOCKET = env.str("MOLECULE_DOCKER_SOCKET", default="")
MOLECULE_DOCKER_STOP_TIMEOUT = _positive("MOLECULE_DOCKER_STOP_TIMEOUT", 10)
if "docker" in MOLECULE_BACKENDS and "molecule-console" not in ALLOWED_HOSTS:
    # The name agents in containers call the console by (see above).
    ALLOWED_HOSTS.append("molecule-console")
if (_docker_registry_host := urlsplit(MOLECULE_DOCKER_REGISTRY_URL).hostname) and (
    _docker_registry_host not in ALLOWED_HOSTS
):
    # An operator's own address for containers to reach the console by: accepted like the rest.
    ALLOWED_HOSTS.append(_docker_registry_host)

MOLECULE_HEARTBEAT_INTERVAL = _positive("MOLECULE_HEARTBEAT_INTERVAL", 30)
# Three of Molecule's 30 s heartbeats: one late or lost beat never takes a workspace offline.
MOLECULE_LIVENESS_TIMEOUT = _positive("MOLECULE_LIVENESS_TIMEOUT", 90)
MOLECULE_PROVISION_TIMEOUT = _positive("MOLECULE_PROVISION_TIMEOUT", 180)
MOLECULE_HEALTH_SWEEP_INTERVAL = _positive("MOLECULE_HEALTH_SWEEP_INTERVAL", 15)
MOLECULE_LIVENESS_SWEEP_INTERVAL = _positive("MOLECULE_LIVENESS_SWEEP_INTERVAL", 10)
# An agent that dies right after every start would otherwise be restarted forever.
MOLECULE_CRASH_LOOP_LIMIT = env.int("MOLECULE_CRASH_LOOP_LIMIT", default=5)
MOLECULE_CRASH_LOOP_WINDOW = _positive("MOLECULE_CRASH_LOOP_WINDOW", 600)
MOLECULE_ORPHAN_GRACE = env.float("MOLECULE_ORPHAN_GRACE", default=120)
MOLECULE_ORPHAN_SWEEP_INTERVAL = _positive("MOLECULE_ORPHAN_SWEEP_INTERVAL", 60)
# A verb whose backend call has not run after this long was lost (a worker died mid-task, the
# broker dropped it): the reconcile sweep queues it again.
MOLECULE_RECONCILE_GRACE = _positive("MOLECULE_RECONCILE_GRACE", 30)
MOLECULE_RECONCILE_SWEEP_INTERVAL = _positive("MOLECULE_RECONCILE_SWEEP_INTERVAL", 15)
# How long a backend call's lease on its workspace lasts unless renewed (it is renewed every
# third of that while the call runs): a worker that died mid-call holds the workspace that long.
MOLECULE_RECONCILE_LEASE = _positive("MOLECULE_RECONCILE_LEASE", 30)
# The runtime catalogue (workspaces/runtimes.py): a TOML file of [runtimes.<name>] command/image
# entries added to the built-in ones (every Molecule runtime name, run by the built-in agent).
MOLECULE_RUNTIMES_FILE = env.str("MOLECULE_RUNTIMES_FILE", default="")

# A2A messages the console forwards to an agent (workspaces/dispatch/a2a.py): seconds to connect,
# seconds for the whole answer, and the largest request and answer, in bytes (Molecule's proxy
# takes 1 MiB requests; answers are shown on a page, so they are held to 1 MiB too).
MOLECULE_A2A_CONNECT_TIMEOUT = _positive("MOLECULE_A2A_CONNECT_TIMEOUT", 5)
MOLECULE_A2A_TIMEOUT = _positive("MOLECULE_A2A_TIMEOUT", 30)
MOLECULE_A2A_MAX_REQUEST_BYTES = env.int("MOLECULE_A2A_MAX_REQUEST_BYTES", default=1 << 20)
MOLECULE_A2A_MAX_ANSWER_BYTES = env.int("MOLECULE_A2A_MAX_ANSWER_BYTES", default=1 << 20)
for _name in ("MOLECULE_A2A_MAX_REQUEST_BYTES", "MOLECULE_A2A_MAX_ANSWER_BYTES"):
    if globals()[_name] < 1024:
        raise ImproperlyConfigured(f"{_name} must be at least 1024 bytes, not {globals()[_name]}.")

# Files in a workspace's storage (workspaces/dispatch/files.py): what is shown and edited as
# text, and what an upload or a download may carry.
MOLECULE_FILE_MAX_BYTES = env.int("MOLECULE_FILE_MAX_BYTES", default=1 << 20)
MOLECULE_FILE_TRANSFER_MAX_BYTES = env.int("MOLECULE_FILE_TRANSFER_MAX_BYTES", default=16 << 20)
if not 1024 <= MOLECULE_FILE_MAX_BYTES <= MOLECULE_FILE_TRANSFER_MAX_BYTES <= 64 << 20:
    raise ImproperlyConfigured(
        "MOLECULE_FILE_MAX_BYTES must be at least 1024 and at most "
        "MOLECULE_FILE_TRANSFER_MAX_BYTES, which must be at most 64 MiB."
    )
# The plugin catalogue (workspaces/plugins.py): one folder per plugin, each with plugin.toml.
MOLECULE_PLUGINS_DIR = env.str("MOLECULE_PLUGINS_DIR", default=str(BASE_DIR / "plugins"))

# The controlplane backend (workspaces/backends/controlplane.py, docs/controlplane-api.md).
MOLECULE_CONTROLPLANE_URL = env.str("MOLECULE_CONTROLPLANE_URL", default="http://127.0.0.1:9100")
# The shared secret the console sends as its bearer token; the control plane's to hand out.
MOLECULE_CONTROLPLANE_TOKEN = env.str("MOLECULE_CONTROLPLANE_TOKEN", default="")
# The image each VM boots; the same one as the docker backend's unless set apart.
MOLECULE_CONTROLPLANE_IMAGE = env.str(
    "MOLECULE_CONTROLPLANE_IMAGE",
    default=env.str("MOLECULE_WORKSPACE_IMAGE", default="molecule-agent:latest"),
)
MOLECULE_CONTROLPLANE_CONNECT_TIMEOUT = _positive("MOLECULE_CONTROLPLANE_CONNECT_TIMEOUT", 5)
MOLECULE_CONTROLPLANE_READ_TIMEOUT = _positive("MOLECULE_CONTROLPLANE_READ_TIMEOUT", 30)
# Extra attempts after a connection error, a timeout or a 5xx; waits BACKOFF, then doubles it.
MOLECULE_CONTROLPLANE_RETRIES = env.int("MOLECULE_CONTROLPLANE_RETRIES", default=3)
MOLECULE_CONTROLPLANE_BACKOFF = _positive("MOLECULE_CONTROLPLANE_BACKOFF", 0.5)
if MOLECULE_CONTROLPLANE_RETRIES < 0:
    raise ImproperlyConfigured(
        f"MOLECULE_CONTROLPLANE_RETRIES must be 0 or more, not {MOLECULE_CONTROLPLANE_RETRIES}."
    )
if "controlplane" in MOLECULE_BACKENDS and not MOLECULE_CONTROLPLANE_TOKEN:
    raise ImproperlyConfigured(
        "MOLECULE_BACKENDS names controlplane but MOLECULE_CONTROLPLANE_TOKEN is empty; set it "
        "to the control plane's shared secret."
    )

CELERY_BEAT_SCHEDULE = {
    "liveness-sweep": {
        "task": "workspaces.tasks.liveness_sweep",
        "schedule": MOLECULE_LIVENESS_SWEEP_INTERVAL,
    },
    "provision-timeout-sweep": {
        "task": "workspaces.tasks.provision_timeout_sweep",
        "schedule": MOLECULE_LIVENESS_SWEEP_INTERVAL,
    },
    "health-sweep": {
        "task": "workspaces.tasks.health_sweep",
        "schedule": MOLECULE_HEALTH_SWEEP_INTERVAL,
    },
    "orphan-sweep": {
        "task": "workspaces.tasks.orphan_sweep",
        "schedule": MOLECULE_ORPHAN_SWEEP_INTERVAL,
    },
    "reconcile-sweep": {
        "task": "workspaces.tasks.reconcile_sweep",
        "schedule": MOLECULE_RECONCILE_SWEEP_INTERVAL,
    },
}
