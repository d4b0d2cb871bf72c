"""Settings for the Molecule console.

Everything an operator changes comes from the environment (django-environ). With nothing set, the
console runs on the embedded default: SQLite under ``var/``, a Celery broker on kombu's filesystem
transport (no server) and the ``local`` backend. Setting ``DATABASE_URL`` and ``CELERY_BROKER_URL``
turns the same code into the distributed deployment described in ``compose.yaml``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("MOLECULE_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    # The embedded default must work with nothing configured, but a key that changes at every start
    # would log everybody out; so it is generated once and kept beside the SQLite file.
    if value := env.str("SECRET_KEY", default=""):
        return value
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

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
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "molecule": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "workspaces": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    },
}

# --- Celery -------------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
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
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Workspaces ---------------------------------------------------------------------------------


def _positive(name: str, default: float) -> float:
    value = env.float(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number of seconds, not {value}.")
    return value


# Backends this console can reach, by name. A workspace whose recorded backend is not here is
# "without backend": provision marks it failed and stop is a recorded no-op (DESIGN.md §6).
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
MOLECULE_LOCAL_ROOT = Path(
    env.str("MOLECULE_LOCAL_ROOT", default=str(VAR_DIR / "workspaces"))
).resolve()

MOLECULE_HEARTBEAT_INTERVAL = _positive("MOLECULE_HEARTBEAT_INTERVAL", 30)
MOLECULE_LIVENESS_TIMEOUT = _positive("MOLECULE_LIVENESS_TIMEOUT", 60)
MOLECULE_PROVISION_TIMEOUT = _positive("MOLECULE_PROVISION_TIMEOUT", 180)
MOLECULE_HEALTH_SWEEP_INTERVAL = _positive("MOLECULE_HEALTH_SWEEP_INTERVAL", 15)
MOLECULE_LIVENESS_SWEEP_INTERVAL = _positive("MOLECULE_LIVENESS_SWEEP_INTERVAL", 10)
# An agent that dies right after every start would otherwise be restarted forever.
MOLECULE_CRASH_LOOP_LIMIT = env.int("MOLECULE_CRASH_LOOP_LIMIT", default=5)
MOLECULE_CRASH_LOOP_WINDOW = _positive("MOLECULE_CRASH_LOOP_WINDOW", 600)
MOLECULE_ORPHAN_GRACE = env.float("MOLECULE_ORPHAN_GRACE", default=120)
MOLECULE_ORPHAN_SWEEP_INTERVAL = _positive("MOLECULE_ORPHAN_SWEEP_INTERVAL", 60)

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
}
