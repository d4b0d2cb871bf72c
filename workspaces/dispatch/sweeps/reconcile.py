"""The reconcile sweep: backend calls that were lost, queued again."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from workspaces import backends
from workspaces.dispatch.core import enqueue_generation
from workspaces.dispatch.sweeps.runs import SweepRun, run
from workspaces.models import Workspace

log = logging.getLogger("workspaces.dispatch.sweeps")


def _sweep(result: SweepRun, grace: float) -> None:
    now = timezone.now()
    rows = (
        Workspace.objects.filter(
            reconciled_generation__lt=F("generation"),
            backend__in=backends.enabled(),
            updated_at__lt=now - timedelta(seconds=grace),
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", "generation")
    )
    # One message per row: lost calls are few, and each goes through the single-call task's
    # retries (and the broker-down warning) like the call that was lost.
    for workspace_id, generation in rows:
        enqueue_generation(workspace_id, generation)
        result.acted.append(str(workspace_id))
    if result.acted:
        log.warning("reconcile sweep: queued %d lost backend call(s) again", len(result.acted))


def reconcile_sweep(*, grace: float | None = None) -> list[str]:
    """Queue again the backend call of every row whose latest verb was never reconciled.

    A verb writes its row and queues the call on commit; the call can still be lost (the worker
    died mid-task, the broker dropped or never got the message, the queue file was bad). A row
    whose ``reconciled_generation`` stayed behind ``generation`` for ``grace`` seconds
    (``MOLECULE_RECONCILE_GRACE``), with no live lease, is queued again; a task that did run in
    the meantime makes the second one a no-op.
    """
    wait = settings.MOLECULE_RECONCILE_GRACE if grace is None else grace
    return run("reconcile", lambda result: _sweep(result, wait)).acted
