from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

import molecule.broker  # noqa: F401  (registers the moleculefs:// transport)
from molecule import metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule.settings")

app = Celery("molecule")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Every task's duration (the sweeps are tasks) for /metrics; weak=False: the handlers are
# module functions that must outlive any reference the caller holds.
task_prerun.connect(metrics.task_started, weak=False)
task_postrun.connect(metrics.task_finished, weak=False)
