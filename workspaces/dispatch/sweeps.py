"""The sweeps Celery beat runs: liveness, provision timeout, health and orphans."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from workspaces import backends
from workspaces.backends import BackendError, Instance
from workspaces.dispatch.core import (
    console_tail,
    enqueue_generation,
    locked,
    recorded_instance,
    transition,
)
from workspaces.events import record as record_event
from workspaces.models import (
    EventType,
    OrphanSuspect,
    Status,
    StructureEvent,
    SweepState,
    Workspace,
)

log = logging.getLogger(__name__)


def _crash_looping(workspace: Workspace) -> bool:
    since = timezone.now() - timedelta(seconds=settings.MOLECULE_CRASH_LOOP_WINDOW)
    restarts = StructureEvent.objects.filter(
        workspace=workspace,
        event_type=EventType.WORKSPACE_PROVISIONING,
        payload__cause="auto_restart",
        created_at__gte=since,
    ).count()
    return restarts >= settings.MOLECULE_CRASH_LOOP_LIMIT


def _offline_then_restart(
    workspace: Workspace, cause: str, *, actor: str, reason: str, console: str = ""
) -> None:
    transition(workspace, cause, actor=actor, payload={"reason": reason, "console": console})
    workspace.last_exit_reason, workspace.last_exit_at = reason, timezone.now()
    fields = ["last_exit_reason", "last_exit_at"]
    if _crash_looping(workspace):
        workspace.crash_looping = True
        workspace.save(update_fields=[*fields, "crash_looping", "updated_at"])
        record_event(
            EventType.WORKSPACE_OFFLINE,
            workspace=workspace,
            actor=actor,
            payload={
                "reason": f"not restarted: {settings.MOLECULE_CRASH_LOOP_LIMIT} automatic "
                f"restarts within {settings.MOLECULE_CRASH_LOOP_WINDOW:g}s; restart it by hand",
                "cause": "crash_loop",
            },
        )
        return
    transition(workspace, "auto_restart", actor=actor, payload={"reason": reason})
    workspace.restart_count += 1
    workspace.save(update_fields=[*fields, "restart_count", "updated_at"])


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


def liveness_sweep() -> list[str]:
    """Online/degraded workspaces silent past the liveness timeout → offline → auto-restart.

    Skipped until the sweep itself has run without a gap for a whole timeout (see
    ``_watching_long_enough``), so a console outage does not restart every workspace.
    """
    timeout = settings.MOLECULE_LIVENESS_TIMEOUT
    gap = max(3 * settings.MOLECULE_LIVENESS_SWEEP_INTERVAL, timeout / 2)
    if not _watching_long_enough("liveness", needed=timeout, gap=gap):
        return []
    cutoff = timezone.now() - timedelta(seconds=timeout)
    candidates = Workspace.objects.filter(
        status__in=[Status.ONLINE, Status.DEGRADED], last_heartbeat_at__lt=cutoff
    ).values_list("pk", flat=True)
    swept = []
    for workspace_id in candidates:
        with transaction.atomic():
            workspace = locked(workspace_id)
            stale = workspace.last_heartbeat_at and workspace.last_heartbeat_at < cutoff
            if workspace.status not in (Status.ONLINE, Status.DEGRADED) or not stale:
                continue  # a heartbeat or a verb got there first
            silent = (timezone.now() - workspace.last_heartbeat_at).total_seconds()
            _offline_then_restart(
                workspace,
                "heartbeat_lost",
                actor="system:liveness",
                reason=f"no heartbeat for {silent:.0f}s "
                f"(timeout {settings.MOLECULE_LIVENESS_TIMEOUT:g}s)",
            )
            swept.append(str(workspace_id))
    return swept


def provision_timeout_sweep() -> list[str]:
    """Provisioning workspaces that never registered within the timeout → failed."""
    timeout = settings.MOLECULE_PROVISION_TIMEOUT
    cutoff = timezone.now() - timedelta(seconds=timeout)
    candidates = Workspace.objects.filter(status=Status.PROVISIONING, status_changed_at__lt=cutoff)
    failed = []
    for workspace_id, backend_name, instance_id, url, state in candidates.values_list(
        "pk", "backend", "instance_id", "url", "backend_state"
    ):
        # The console's last lines, read before any lock: no backend call inside a transaction.
        backend = backends.get(backend_name)
        instance = Instance(instance_id, url, state) if instance_id else None
        tail = console_tail(backend, instance) if backend else ""
        with transaction.atomic():
            workspace = locked(workspace_id)
            if workspace.status != Status.PROVISIONING or workspace.status_changed_at >= cutoff:
                continue
            if workspace.instance_id != instance_id:
                tail = ""  # a new instance since: the lines read belong to another one
            transition(
                workspace,
                "provision_failed",
                actor="system:provision-timeout",
                payload={"error": f"no registration within {timeout:g}s", "console": tail},
            )
            failed.append(str(workspace_id))
    return failed


def health_sweep() -> list[str]:
    """Ask each backend whether recorded instances still run; act on the ones that do not.

    Online/degraded → offline → auto-restart. Provisioning → failed (the agent died before it
    registered; restarting it would only loop). The probe runs without locks; the row is then
    locked and re-checked, so a verb that changed it meanwhile wins.
    """
    # Only instances of the row's current generation: after a restart or an auto-restart the
    # row still records the previous generation's (dead) instance until reconcile replaces it,
    # and judging the new generation by it would fail a workspace that is starting fine.
    rows = (
        Workspace.objects.filter(status__in=[Status.PROVISIONING, Status.ONLINE, Status.DEGRADED])
        .exclude(instance_id="")
        .filter(instance_generation=F("generation"))
    )
    acted = []
    for workspace in rows:
        backend = backends.get(workspace.backend)
        instance = recorded_instance(workspace)
        if backend is None or instance is None:
            continue
        try:
            if backend.is_running(instance):
                continue
        except BackendError as error:
            log.warning("health probe of %s failed: %s", workspace.pk, error.message)
            continue
        # Why it died (an out-of-memory kill, a crash) is in its last lines; read them before
        # taking the row's lock: no backend call runs inside a transaction.
        tail = console_tail(backend, instance)
        with transaction.atomic():
            current = locked(workspace.pk)
            if (current.generation, current.instance_generation, current.instance_id) != (
                workspace.generation,
                workspace.instance_generation,
                workspace.instance_id,
            ):
                continue
            if current.status == Status.PROVISIONING:
                transition(
                    current,
                    "provision_failed",
                    actor="system:health",
                    payload={
                        "error": "the instance exited before the agent registered",
                        "console": tail,
                    },
                )
            elif current.status in (Status.ONLINE, Status.DEGRADED):
                _offline_then_restart(
                    current,
                    "instance_lost",
                    actor="system:health",
                    reason=f"the {current.backend} backend reports the instance is not running",
                    console=tail,
                )
            else:
                continue
            acted.append(str(workspace.pk))
    return acted


def reconcile_sweep(*, grace: float | None = None) -> list[str]:
    """Queue again the backend call of every row whose latest verb was never reconciled.

    A verb writes its row and queues the call on commit; the call can still be lost (the worker
    died mid-task, the broker dropped or never got the message, the queue file was bad). A row
    whose ``reconciled_generation`` stayed behind ``generation`` for ``grace`` seconds
    (``MOLECULE_RECONCILE_GRACE``), with no live lease, is queued again; a task that did run in
    the meantime makes the second one a no-op.
    """
    grace = settings.MOLECULE_RECONCILE_GRACE if grace is None else grace
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
    queued = []
    for workspace_id, generation in rows:
        enqueue_generation(workspace_id, generation)
        queued.append(str(workspace_id))
    if queued:
        log.warning("reconcile sweep: queued %d lost backend call(s) again", len(queued))
    return queued


def orphan_sweep(*, grace: float | None = None) -> list[str]:
    """Stop instances that no live workspace owns, once they stayed unowned past a grace period.

    The grace period (``MOLECULE_ORPHAN_GRACE`` unless given) covers an instance whose start has
    not committed yet. Storage is kept: an orphan's data is the operator's to delete. Each stop
    writes an ORPHAN_REMOVED event.
    """
    grace = timedelta(seconds=settings.MOLECULE_ORPHAN_GRACE if grace is None else grace)
    now = timezone.now()
    removed = []
    for name in backends.enabled():
        backend = backends.get(name)
        assert backend is not None
        try:
            running = set(backend.list_instances())
        except BackendError as error:
            log.warning("orphan sweep: cannot list %s instances: %s", name, error.message)
            continue
        owned = set(
            Workspace.objects.filter(backend=name, instance_id__in=running)
            .exclude(status=Status.REMOVED)
            .values_list("instance_id", flat=True)
        )
        unowned = running - owned
        OrphanSuspect.objects.filter(backend=name).exclude(instance_id__in=unowned).delete()
        for instance_id in sorted(unowned):
            suspect, _ = OrphanSuspect.objects.get_or_create(
                backend=name, instance_id=instance_id, defaults={"first_seen_at": now}
            )
            if now - suspect.first_seen_at < grace:
                continue
            try:
                backend.stop(Instance(instance_id))
            except BackendError as error:
                log.warning("orphan sweep: cannot stop %s: %s", instance_id, error.message)
                continue
            with transaction.atomic():
                record_event(
                    EventType.ORPHAN_REMOVED,
                    actor="system:orphan-sweep",
                    payload={"backend": name, "instance_id": instance_id},
                )
                suspect.delete()
            removed.append(instance_id)
    return removed
