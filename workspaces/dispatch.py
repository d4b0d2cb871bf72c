"""THE lifecycle service: the only module that talks to workspace backends.

Views, admin actions, management commands, the JSON API, Celery tasks, org import and team
expand/collapse call the verbs here; nothing else imports ``workspaces.backends`` (pinned by
import-linter and tests/test_architecture.py). That rule exists because of the incident in
SEED.txt: handlers that called one backend directly silently skipped work on the other.

How every verb works:

1. lock the workspace row (and its descendants, in id order, for cascading verbs);
2. check the transition against ``lifecycle.TRANSITIONS`` (refused → ``TransitionRefused``);
3. write the structure event and update the row, bumping ``generation``;
4. on commit, enqueue ``tasks.reconcile_workspace(id, generation)``.

The task calls :func:`reconcile`, which makes the backend match the row: with the row locked it
stops whatever instance is recorded and, if the row wants one, starts a new one. A task whose
generation is no longer the row's does nothing, so racing verbs on one workspace never leave two
instances; different workspaces never wait on each other.

Routing: a new workspace takes its org's backend; every later verb uses the backend recorded on
the row, never a guess from what happens to be configured. With no such backend configured,
provision marks the workspace failed with the reason, and stop/pause/delete are recorded no-ops.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orgs.models import Org
from workspaces import backends, lifecycle, tokens
from workspaces.backends import Backend, BackendError, Instance, InstanceSpec
from workspaces.lifecycle import TransitionRefused
from workspaces.models import (
    EventType,
    OrphanSuspect,
    Status,
    StructureEvent,
    SweepState,
    Workspace,
)
from workspaces.tiers import tier_settings

__all__ = [
    "InvalidRequest",
    "RetryLater",
    "TransitionRefused",
    "console",
    "create_workspace",
    "delete",
    "has_backend",
    "health_sweep",
    "liveness_sweep",
    "orphan_sweep",
    "pause",
    "provision",
    "provision_timeout_sweep",
    "reconcile",
    "restart",
    "resume",
    "stop",
]

log = logging.getLogger(__name__)
CONSOLE_TAIL_IN_EVENTS = 20


class InvalidRequest(ValueError):
    """A verb's arguments do not make sense (e.g. a parent in another org); nothing was written."""


class RetryLater(Exception):
    """A transient backend failure; the task retries with backoff."""


@dataclass(frozen=True)
class VerbResult:
    """What a cascading verb did: the workspace asked for, and every row it moved."""

    workspace: Workspace
    moved: list[Workspace]


# --- helpers ------------------------------------------------------------------------------------


def _no_backend_reason(name: str) -> str:
    return (
        f"No {name!r} backend is configured on this console (MOLECULE_BACKENDS="
        f"{','.join(backends.enabled()) or 'none'}); the workspace was not touched there."
    )


def _instance(workspace: Workspace) -> Instance | None:
    if not workspace.instance_id:
        return None
    return Instance(workspace.instance_id, workspace.url, dict(workspace.backend_state))


def _enqueue(workspace: Workspace) -> None:
    # Imported here because tasks imports this module: the task module is the Celery API and
    # this module is the service it calls.
    from workspaces import tasks

    workspace_id, generation = str(workspace.id), workspace.generation
    transaction.on_commit(lambda: tasks.reconcile_workspace.delay(workspace_id, generation))


def _move(
    workspace: Workspace, cause: str, *, actor: str, payload: dict[str, Any] | None = None
) -> StructureEvent:
    """Apply a transition that changes what should be running, and queue the backend call."""
    transition = lifecycle.check(workspace, cause)
    workspace.generation += 1
    fields = ["generation"]
    if transition.target not in lifecycle.WANTS_INSTANCE:
        # A stopped workspace's agent must not be able to report in any more.
        workspace.token_hash = ""
        fields.append("token_hash")
    event = lifecycle.apply(workspace, cause, actor=actor, payload=payload, update_fields=fields)
    backend = backends.get(workspace.backend)
    if backend is None and transition.target == Status.PROVISIONING:
        # Never leave a workspace in provisioning when nothing will ever start it.
        return lifecycle.apply(
            workspace,
            "provision_failed",
            actor=actor,
            payload={"error": _no_backend_reason(workspace.backend)},
        )
    if backend is not None:
        _enqueue(workspace)
    return event


def _no_backend_note(workspace: Workspace) -> dict[str, Any]:
    if backends.get(workspace.backend) is None:
        return {"backend_call": "skipped", "reason": _no_backend_reason(workspace.backend)}
    return {}


def _locked(workspace_id: Any) -> Workspace:
    return Workspace.objects.select_for_update().select_related("org").get(pk=workspace_id)


def _locked_tree(workspace_id: Any) -> tuple[Workspace, list[Workspace]]:
    """Lock a workspace and all its descendants; returns (root, descendants in tree order)."""
    root = _locked(workspace_id)
    ids, frontier = [], [root.pk]
    while frontier:
        frontier = list(
            Workspace.objects.filter(parent_id__in=frontier)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ids.extend(frontier)
    # One query, id order: two cascades over overlapping trees lock in the same order.
    locked = {
        ws.pk: ws
        for ws in Workspace.objects.select_for_update().select_related("org").filter(pk__in=ids)
    }
    return root, [locked[pk] for pk in ids]


def _cascade(workspace_id: Any, cause: str, *, actor: str, skip: Iterable[str] = ()) -> VerbResult:
    with transaction.atomic():
        root, descendants = _locked_tree(workspace_id)
        lifecycle.check(root, cause)  # refuse before touching any child
        moved = []
        for workspace in [root, *descendants]:
            if workspace.status in skip or not lifecycle.is_allowed(cause, workspace.status):
                continue
            payload = _no_backend_note(workspace)
            if workspace is not root:
                payload["cascaded_from"] = str(root.pk)
            _move(workspace, cause, actor=actor, payload=payload)
            moved.append(workspace)
        return VerbResult(root, moved)


def _single(workspace_id: Any, cause: str, *, actor: str) -> Workspace:
    with transaction.atomic():
        workspace = _locked(workspace_id)
        _move(workspace, cause, actor=actor, payload=_no_backend_note(workspace))
        return workspace


# --- verbs --------------------------------------------------------------------------------------


def create_workspace(
    *,
    org: Org,
    name: str,
    actor: str,
    role: str = "",
    tier: int = 2,
    runtime: str = "langgraph",
    parent: Workspace | None = None,
    workspace_dir: str = "",
    spec: dict[str, Any] | None = None,
) -> Workspace:
    """Create a workspace and provision it: the "(new) → provisioning" transition.

    Routing: the workspace is recorded on its org's current backend, for good. No backend of that
    name configured: the row is created and marked failed with the reason. Not idempotent: each
    call creates a new workspace. A parent from another org raises ``InvalidRequest``.
    """
    if parent is not None and parent.org_id != org.pk:
        raise InvalidRequest(
            f"The parent workspace {parent.name!r} belongs to another org; "
            "a team lives inside one org."
        )
    with transaction.atomic():
        workspace = Workspace(
            org=org,
            name=name,
            role=role,
            tier=tier,
            runtime=runtime,
            parent=parent,
            workspace_dir=workspace_dir,
            spec=spec or {},
            backend=org.backend,
            status=Status.PROVISIONING,
            generation=1,
        )
        workspace.save()
        lifecycle.create_event(
            workspace, "create", actor=actor, payload={"backend": workspace.backend, "tier": tier}
        )
        if backends.get(workspace.backend) is None:
            lifecycle.apply(
                workspace,
                "provision_failed",
                actor=actor,
                payload={"error": _no_backend_reason(workspace.backend)},
            )
        else:
            _enqueue(workspace)
        return workspace


def provision(*, workspace_id: Any, actor: str) -> Workspace:
    """Provision (retry) a failed or offline workspace on the backend recorded on it.

    No backend: marked failed with the reason. Refused (``TransitionRefused``) from any other
    state, so calling it twice is refused the second time rather than starting twice.
    """
    return _single(workspace_id, "provision", actor=actor)


def restart(*, workspace_id: Any, actor: str) -> Workspace:
    """Stop the workspace's instance and start a new one on its recorded backend.

    Reads tier, runtime and secrets from the row at start time, so a tier change applies here.
    No backend: marked failed with the reason. Refused from paused (use resume) and removed.
    """
    return _single(workspace_id, "restart", actor=actor)


def stop(*, workspace_id: Any, actor: str) -> Workspace:
    """Stop the instance; the workspace rests offline and no sweep restarts it.

    No backend: a recorded no-op (the event says nothing was called). Refused when the workspace
    is not provisioning, online or degraded.
    """
    return _single(workspace_id, "stop", actor=actor)


def pause(*, workspace_id: Any, actor: str) -> VerbResult:
    """Pause a live workspace and every live descendant; sweeps never touch paused rows.

    No backend: a recorded no-op per workspace. Refused unless the workspace itself is live;
    descendants that are not live are left as they are.
    """
    return _cascade(workspace_id, "pause", actor=actor)


def resume(*, workspace_id: Any, actor: str) -> VerbResult:
    """Resume a paused workspace and its paused descendants (back to provisioning).

    No backend: each is marked failed with the reason. Refused unless the workspace is paused.
    """
    return _cascade(workspace_id, "resume", actor=actor)


def delete(*, workspace_id: Any, actor: str) -> VerbResult:
    """Remove a workspace and all its descendants: instances stopped, storage removed.

    The rows stay (status removed) so their event history stays readable. No backend: a recorded
    no-op on the backend side. Refused when already removed.
    """
    return _cascade(workspace_id, "delete", actor=actor, skip={Status.REMOVED})


def has_backend(*, workspace_id: Any = None, org: Org | None = None) -> bool:
    """Whether the backend that serves this workspace (or this org's new workspaces) exists."""
    if workspace_id is not None:
        name = Workspace.objects.values_list("backend", flat=True).get(pk=workspace_id)
    elif org is not None:
        name = org.backend
    else:
        raise TypeError("has_backend needs workspace_id or org")
    return backends.get(name) is not None


def console(*, workspace_id: Any, tail: int = 200) -> str:
    """The instance's boot and run log from its backend ("" when nothing is running)."""
    workspace = Workspace.objects.get(pk=workspace_id)
    backend, instance = backends.get(workspace.backend), _instance(workspace)
    if backend is None:
        return _no_backend_reason(workspace.backend)
    if instance is None:
        return ""
    try:
        return backend.console(instance, tail=tail)
    except BackendError as error:
        return f"(console unavailable: {error.message})"


# --- the backend side ---------------------------------------------------------------------------


def _spec(workspace: Workspace, token: str) -> InstanceSpec:
    tier = tier_settings(workspace.tier)
    env = {
        "MOLECULE_WORKSPACE_ID": str(workspace.pk),
        "MOLECULE_WORKSPACE_TOKEN": token,
        "MOLECULE_WORKSPACE_NAME": workspace.name,
        "MOLECULE_ORG": workspace.org.slug,
        "MOLECULE_RUNTIME": workspace.runtime,
        "MOLECULE_TIER": str(tier.tier),
        "MOLECULE_REGISTRY_URL": settings.MOLECULE_REGISTRY_URL,
        "MOLECULE_HEARTBEAT_INTERVAL": f"{settings.MOLECULE_HEARTBEAT_INTERVAL:g}",
    }
    return InstanceSpec(
        workspace_id=str(workspace.pk),
        name=workspace.name,
        org_slug=workspace.org.slug,
        runtime=workspace.runtime,
        tier=tier,
        generation=workspace.generation,
        env=env,
        workspace_dir=workspace.workspace_dir,
    )


def _forget_instance(workspace: Workspace) -> None:
    # backend_state stays: it still locates the instance's storage for a later delete.
    workspace.instance_id, workspace.url = "", ""
    workspace.save(update_fields=["instance_id", "url", "updated_at"])


def _console_tail(backend: Backend, instance: Instance | None) -> str:
    if instance is None:
        return ""
    try:
        return backend.console(instance, tail=CONSOLE_TAIL_IN_EVENTS)
    except BackendError:
        return ""


def reconcile(*, workspace_id: Any, generation: int, final_attempt: bool = True) -> str:
    """Make the backend match the row, for the generation the task was queued with.

    Called by ``tasks.reconcile_workspace``. Returns what it did ("stale", "started", "stopped",
    "failed", "idle"). A transient ``BackendError`` raises ``RetryLater`` unless this is the final
    attempt; a permanent one (or the final attempt) marks a provisioning workspace failed with the
    error in the event, and records a BACKEND_CALL_FAILED event for a failed stop.
    """
    with transaction.atomic():
        try:
            workspace = _locked(workspace_id)
        except Workspace.DoesNotExist:
            return "stale"
        if workspace.generation != generation:
            return "stale"
        backend = backends.get(workspace.backend)
        if backend is None:
            return "idle"
        old = _instance(workspace)
        wants_instance = workspace.status == Status.PROVISIONING
        try:
            if old is not None:
                backend.stop(old)
            if workspace.status == Status.REMOVED and workspace.backend_state:
                backend.remove_storage(old or Instance("", state=dict(workspace.backend_state)))
            if not wants_instance:
                if old is not None:
                    _forget_instance(workspace)
                return "stopped" if old else "idle"
            token = tokens.mint()
            new = backend.start(_spec(workspace, token))
        except BackendError as error:
            if not (error.permanent or final_attempt):
                raise RetryLater(error.message) from error
            if wants_instance:
                if old is not None:
                    _forget_instance(workspace)
                lifecycle.apply(
                    workspace,
                    "provision_failed",
                    actor="system:dispatch",
                    payload={"error": error.message, "console": _console_tail(backend, old)},
                )
                return "failed"
            StructureEvent.objects.create(
                event_type=EventType.BACKEND_CALL_FAILED,
                workspace=workspace,
                org_id=workspace.org_id,
                actor="system:dispatch",
                payload={"call": "stop", "error": error.message},
            )
            return "failed"
        workspace.instance_id, workspace.url = new.instance_id, new.url
        workspace.backend_state, workspace.token_hash = new.state, tokens.hash_token(token)
        workspace.save(
            update_fields=["instance_id", "url", "backend_state", "token_hash", "updated_at"]
        )
        return "started"


# --- sweeps (Celery beat) -----------------------------------------------------------------------


def _crash_looping(workspace: Workspace) -> bool:
    since = timezone.now() - timedelta(seconds=settings.MOLECULE_CRASH_LOOP_WINDOW)
    restarts = StructureEvent.objects.filter(
        workspace=workspace,
        event_type=EventType.WORKSPACE_PROVISIONING,
        payload__cause="auto_restart",
        created_at__gte=since,
    ).count()
    return restarts >= settings.MOLECULE_CRASH_LOOP_LIMIT


def _offline_then_restart(workspace: Workspace, cause: str, *, actor: str, reason: str) -> None:
    _move(workspace, cause, actor=actor, payload={"reason": reason})
    if _crash_looping(workspace):
        StructureEvent.objects.create(
            event_type=EventType.WORKSPACE_OFFLINE,
            workspace=workspace,
            org_id=workspace.org_id,
            actor=actor,
            payload={
                "reason": f"not restarted: {settings.MOLECULE_CRASH_LOOP_LIMIT} automatic "
                f"restarts within {settings.MOLECULE_CRASH_LOOP_WINDOW:g}s; restart it by hand",
                "cause": "crash_loop",
            },
        )
        return
    _move(workspace, "auto_restart", actor=actor, payload={"reason": reason})


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
            workspace = _locked(workspace_id)
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
    candidates = Workspace.objects.filter(
        status=Status.PROVISIONING, status_changed_at__lt=cutoff
    ).values_list("pk", flat=True)
    failed = []
    for workspace_id in candidates:
        with transaction.atomic():
            workspace = _locked(workspace_id)
            if workspace.status != Status.PROVISIONING or workspace.status_changed_at >= cutoff:
                continue
            backend = backends.get(workspace.backend)
            tail = _console_tail(backend, _instance(workspace)) if backend else ""
            _move(
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
    rows = Workspace.objects.filter(
        status__in=[Status.PROVISIONING, Status.ONLINE, Status.DEGRADED]
    ).exclude(instance_id="")
    acted = []
    for workspace in rows:
        backend = backends.get(workspace.backend)
        instance = _instance(workspace)
        if backend is None or instance is None:
            continue
        try:
            if backend.is_running(instance):
                continue
        except BackendError as error:
            log.warning("health probe of %s failed: %s", workspace.pk, error.message)
            continue
        with transaction.atomic():
            current = _locked(workspace.pk)
            if (current.generation, current.instance_id) != (
                workspace.generation,
                workspace.instance_id,
            ):
                continue
            if current.status == Status.PROVISIONING:
                _move(
                    current,
                    "provision_failed",
                    actor="system:health",
                    payload={
                        "error": "the instance exited before the agent registered",
                        "console": _console_tail(backend, instance),
                    },
                )
            elif current.status in (Status.ONLINE, Status.DEGRADED):
                _offline_then_restart(
                    current,
                    "instance_lost",
                    actor="system:health",
                    reason=f"the {current.backend} backend reports the instance is not running",
                )
            else:
                continue
            acted.append(str(workspace.pk))
    return acted


def orphan_sweep() -> list[str]:
    """Stop instances that no live workspace owns, once they stayed unowned past a grace period.

    The grace period covers an instance whose start has not committed yet. Storage is kept: an
    orphan's data is the operator's to delete. Each stop writes an ORPHAN_REMOVED event.
    """
    grace = timedelta(seconds=settings.MOLECULE_ORPHAN_GRACE)
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
                StructureEvent.objects.create(
                    event_type=EventType.ORPHAN_REMOVED,
                    actor="system:orphan-sweep",
                    payload={"backend": name, "instance_id": instance_id},
                )
                suspect.delete()
            removed.append(instance_id)
    return removed


# Adapters (pages, admin, commands, API) look verbs up here by name rather than each keeping a
# copy of the list. Values are the functions above; all take (workspace_id=, actor=).
VERBS = {
    "provision": provision,
    "restart": restart,
    "stop": stop,
    "pause": pause,
    "resume": resume,
    "delete": delete,
}
# Verbs that interrupt a running agent: pages ask for confirmation first.
DESTRUCTIVE_VERBS = frozenset({"restart", "stop", "pause", "delete"})
