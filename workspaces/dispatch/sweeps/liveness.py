"""The liveness sweep: online/degraded workspaces silent past the timeout → offline → restart."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workspaces import backends, lifecycle
from workspaces.dispatch.core import locked
from workspaces.dispatch.sweeps.offline import (
    Silent,
    judged,
    offline_then_restart,
    offline_then_restart_all,
)
from workspaces.dispatch.sweeps.runs import SweepRun, run
from workspaces.models import SweepState, Workspace

CAUSE = "heartbeat_lost"
ACTOR = "system:liveness"
# Rows per transaction: at 1% of 100,000 silent, one page; a fleet that all went silent at once
# (a network split) is handled a page at a time, each page a few statements, no lock held long.
PAGE = 1000


def _watching_long_enough(name: str, *, needed: float, gap: float) -> bool:
    """Record a sweep run; True once runs came without a gap longer than ``gap`` for ``needed``s.

    While the console or its beat was down nobody received heartbeats, so every agent looks
    silent; judging them right after a restart would restart the whole fleet.
    """
    now = timezone.now()
    with transaction.atomic():
        state = SweepState.objects.select_for_update().filter(name=name).first()
        if state is None:
            state = SweepState(name=name, last_run_at=now, watching_since=now)
        elif (now - state.last_run_at).total_seconds() > gap:
            state.watching_since = now
        state.last_run_at = now
        state.save()
    return (now - state.watching_since).total_seconds() >= needed


def _reason(silent: float) -> str:
    return f"no heartbeat for {silent:.0f}s (timeout {settings.MOLECULE_LIVENESS_TIMEOUT:g}s)"


def _sweep(result: SweepRun) -> None:
    timeout = settings.MOLECULE_LIVENESS_TIMEOUT
    gap = max(3 * settings.MOLECULE_LIVENESS_SWEEP_INTERVAL, timeout / 2)
    if not _watching_long_enough("liveness", needed=timeout, gap=gap):
        return
    cutoff = timezone.now() - timedelta(seconds=timeout)
    silent = Workspace.objects.filter(
        status__in=lifecycle.TRANSITIONS[CAUSE].sources, last_heartbeat_at__lt=cutoff
    )
    # The set-based path: the WHERE of the locking SELECT is the judgement, so a heartbeat that
    # committed first is simply not selected, and one that comes after finds the token cleared.
    # Every row of a page is moved out of the WHERE, so the next page is new rows: a short page
    # is the last.
    while True:
        with transaction.atomic():
            page = judged(silent.filter(backend__in=backends.enabled()), limit=PAGE)
            now = timezone.now()
            rows = [
                Silent(
                    pk=row["pk"],
                    org_id=row["org_id"],
                    status=row["status"],
                    generation=row["generation"],
                    reason=_reason((now - row["last_heartbeat_at"]).total_seconds()),
                )
                for row in page
            ]
            offline_then_restart_all(rows, CAUSE, actor=ACTOR)
        result.acted += [str(row.pk) for row in rows]
        if len(page) < PAGE:
            break
    # A row on a backend this console does not run (taken out of MOLECULE_BACKENDS while it
    # ran): nothing will start it, and the per-row path marks it failed with the reason.
    others = silent.exclude(backend__in=backends.enabled()).order_by()
    for workspace_id in others.values_list("pk", flat=True):
        with transaction.atomic():
            workspace = locked(workspace_id)
            stale = workspace.last_heartbeat_at and workspace.last_heartbeat_at < cutoff
            if not lifecycle.is_allowed(CAUSE, workspace.status) or not stale:
                continue
            offline_then_restart(
                workspace,
                CAUSE,
                actor=ACTOR,
                reason=_reason((timezone.now() - workspace.last_heartbeat_at).total_seconds()),
            )
            result.acted.append(str(workspace_id))
            result.count("without a backend")


def liveness_sweep() -> list[str]:
    """Online/degraded workspaces silent past the liveness timeout → offline → auto-restart.

    Skipped until the sweep itself has run without a gap for a whole timeout (see
    ``_watching_long_enough``), and when another worker is running it.
    """
    return run("liveness", _sweep).acted
