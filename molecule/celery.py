from __future__ import annotations

import os

from celery import Celery

import molecule.broker  # noqa: F401  (registers the moleculefs:// transport)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule.settings")

app = Celery("molecule")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
