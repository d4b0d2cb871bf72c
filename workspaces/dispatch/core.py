"""What every part of dispatch shares: errors, row locks, and moving a row along a transition."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from django.db import OperationalError, connection, transaction

from workspaces import backends, lifecycle
from workspaces.backends import Backend, BackendError, Instance
from workspaces.lifecycle import Refused
from workspaces.models import Status, StructureEvent, Workspace

log = logging.getLogger(__name__)

CONSOLE_TAIL_IN_EVENTS = 20
# How long an operator's verb waits for a workspace row that a backend call holds.
VERB_LOCK_WAIT = 10.0


# The fields an agent's heartbeat fills in, and their value before it has said anything.
AGENT_REPORT: dict[str, Any] = {
    "uptime_seconds": 0,
    "active_tasks": 0,
    "current_task": "",
    "last_error_rate": 0.0,
    "last_sample_error": "",
    # Molecule's runtime reports: a replaced instance's wedge or capabilities are not the next's.
    "runtime_state": "",
    "runtime_metadata": {},
}


class InvalidRequest(ValueError):
    """A verb's arguments do not make sense (e.g. a parent in another org); nothing was written."""


class RetryLater(Exception):
    """A transient backend failure; the task retries with backoff."""


@dataclass(frozen=True)
class VerbResult:
    """What a cascading verb did: the workspace asked for, and every row it moved."""

    workspace: Workspace
    moved: list[Workspace]


def no_backend_reason(name: str) -> str:
    return (
        f"No {name!r} backend is configured on this console (MOLECULE_BACKENDS="
        f"{','.join(backends.enabled()) or 'none'}); the workspace was not touched there."
    )


def recorded_instance(workspace: Workspace) -> Instance | None:
    if not workspace.instance_id:
        return None
    return Instance(workspace.instance_id, workspace.url, dict(workspace.backend_state))


def enqueue_generation(workspace_id: Any, generation: int) -> None:
    """Queue the backend call for this generation once the caller's transaction commits."""
    # Imported here because tasks imports this module: the task module is the Celery API and
    # this module is the service it calls.
    from workspaces import tasks

    workspace_id = str(workspace_id)

    def send() -> None:
        try:
            tasks.reconcile_workspace.delay(workspace_id, generation)
        except Exception:
            # The verb is recorded either way; with the broker unreachable the reconcile sweep
            # queues it once the broker is back. The operator's request must not fail for it.
            log.warning(
                "could not queue the backend call of workspace %s (generation %s); the "
                "reconcile sweep will queue it again",
                workspace_id,
                generation,
                exc_info=True,
            )

    transaction.on_commit(send)


def enqueue(workspace: Workspace) -> None:
    enqueue_generation(workspace.pk, workspace.generation)


def transition(
    workspace: Workspace, cause: str, *, actor: str, payload: dict[str, Any] | None = None
) -> StructureEvent:
    """Apply a transition that changes what should be running, and queue the backend call."""
    step = lifecycle.check(workspace, cause)
    workspace.generation += 1
    # What the agent reported describes an instance this step stops or replaces: a restarted
    # workspace must not show the old agent's uptime and task. A crash loop is over once anyone
    # moves the workspace on (the sweep sets it again after its own step).
    for name, empty in AGENT_REPORT.items():
        setattr(workspace, name, copy.copy(empty))
    workspace.crash_looping = False
    # The instance this step stops or replaces loses its right to report in now, in the same
    # transaction: left valid until the backend task runs, the old agent could register and
    # make a restarted workspace look online with nothing behind it. Reconcile mints the next.
    workspace.token_hash = ""
    fields = ["generation", "crash_looping", "token_hash", *AGENT_REPORT]
    backend = backends.get(workspace.backend)
    if backend is None:
        # Nothing will call a backend for this generation: it is settled as it is.
        workspace.reconciled_generation = workspace.generation
        fields.append("reconciled_generation")
    event = lifecycle.apply(workspace, cause, actor=actor, payload=payload, update_fields=fields)
    if backend is None and step.target == Status.PROVISIONING:
        # Never leave a workspace in provisioning when nothing will ever start it.
        return lifecycle.apply(
            workspace,
            "provision_failed",
            actor=actor,
            payload={"error": no_backend_reason(workspace.backend)},
        )
    if backend is not None:
        enqueue(workspace)
    return event


def no_backend_note(workspace: Workspace) -> dict[str, Any]:
    if backends.get(workspace.backend) is None:
        return {"backend_call": "skipped", "reason": no_backend_reason(workspace.backend)}
    return {}


def _give_up_after(seconds: float) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}ms"]
            )


def locked(workspace_id: Any, *, busy_after: float | None = None) -> Workspace:
    """The workspace row, locked until the transaction ends.

    Backend calls run under this lock (that is what serializes verbs on one workspace), so an
    operator's verb may find it held by a slow backend call; with ``busy_after`` it gives up after
    that many seconds with a refusal that says so, instead of hanging the page or the API call.
    """
    if busy_after is not None:
        _give_up_after(busy_after)
    try:
        return Workspace.objects.for_change().select_related("org").get(pk=workspace_id)
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise Refused(
            "The workspace is busy: a backend call for it is still running. Try again shortly."
        ) from error


def locked_tree(
    workspace_id: Any, *, busy_after: float | None = None
) -> tuple[Workspace, list[Workspace]]:
    """Lock a workspace and all its descendants; returns (root, descendants in tree order)."""
    root = locked(workspace_id, busy_after=busy_after)
    ids, frontier = [], [root.pk]
    while frontier:
        frontier = list(
            Workspace.objects.filter(parent_id__in=frontier)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        ids.extend(frontier)
    # One query, id order: two cascades over overlapping trees lock in the same order.
    rows = {
        ws.pk: ws for ws in Workspace.objects.for_change().select_related("org").filter(pk__in=ids)
    }
    return root, [rows[pk] for pk in ids]


def console_tail(backend: Backend, instance: Instance | None) -> str:
    if instance is None:
        return ""
    try:
        return backend.console(instance, tail=CONSOLE_TAIL_IN_EVENTS)
    except BackendError:
        return ""
