"""The workspace state machine (docs/architecture.md §4) as data, and the one way to move along it.

Every state change goes through :func:`apply`, which writes the structure event first and then
updates the workspace row (the projection) in the caller's transaction. The caller holds the row
lock; dispatch and the agent registry are the callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from workspaces.events import record as record_event
from workspaces.models import EventType, Status, StructureEvent, Workspace

NEW = "new"  # a workspace that does not exist yet; never stored


@dataclass(frozen=True)
class Transition:
    cause: str
    sources: frozenset[str]
    target: Status
    event: EventType
    description: str


def _t(cause: str, sources: set[str], target: Status, event: EventType, why: str) -> Transition:
    return Transition(cause, frozenset(sources), target, event, why)


S = Status
E = EventType
LIVE = {S.PROVISIONING, S.ONLINE, S.DEGRADED, S.OFFLINE}

# Decisions beyond the design's table, written here because this is where a reader looks:
# - restart is "stop, then provision": allowed from every live state and from failed, never from
#   paused (resume is the verb for that) or removed;
# - stop is the operator's stop: the instance is stopped and the workspace rests in offline, which
#   no sweep restarts (sweeps only act on online, degraded and provisioning rows);
# - resume cascades to paused children, as pause cascades to them.
TRANSITIONS: dict[str, Transition] = {
    t.cause: t
    for t in [
        _t("create", {NEW}, S.PROVISIONING, E.WORKSPACE_PROVISIONING, "provision a new workspace"),
        _t(
            "provision",
            {S.FAILED, S.OFFLINE},
            S.PROVISIONING,
            E.WORKSPACE_PROVISIONING,
            "provision (retry) a failed or offline workspace",
        ),
        _t(
            "restart",
            {S.PROVISIONING, S.ONLINE, S.DEGRADED, S.OFFLINE, S.FAILED},
            S.PROVISIONING,
            E.WORKSPACE_PROVISIONING,
            "stop the instance and start a new one",
        ),
        _t(
            "auto_restart",
            {S.OFFLINE},
            S.PROVISIONING,
            E.WORKSPACE_PROVISIONING,
            "a sweep restarts a workspace it found offline",
        ),
        _t(
            "register",
            {S.PROVISIONING},
            S.ONLINE,
            E.WORKSPACE_ONLINE,
            "the agent registered, or sent its first authenticated heartbeat",
        ),
        _t(
            "degrade",
            {S.ONLINE},
            S.DEGRADED,
            E.WORKSPACE_DEGRADED,
            "heartbeat error rate ≥ 0.5, or the runtime reports itself wedged",
        ),
        _t(
            "recover",
            {S.DEGRADED},
            S.ONLINE,
            E.WORKSPACE_ONLINE,
            "heartbeat error rate < 0.1 and no wedge reported",
        ),
        _t(
            "heartbeat_lost",
            {S.ONLINE, S.DEGRADED},
            S.OFFLINE,
            E.WORKSPACE_OFFLINE,
            "no heartbeat within the liveness timeout",
        ),
        _t(
            "instance_lost",
            {S.ONLINE, S.DEGRADED},
            S.OFFLINE,
            E.WORKSPACE_OFFLINE,
            "the backend says the instance is not running",
        ),
        _t(
            "stop",
            {S.PROVISIONING, S.ONLINE, S.DEGRADED},
            S.OFFLINE,
            E.WORKSPACE_OFFLINE,
            "the operator stopped the workspace",
        ),
        _t(
            "provision_failed",
            {S.PROVISIONING},
            S.FAILED,
            E.WORKSPACE_PROVISION_FAILED,
            "no registration in time, the instance died while booting, or the backend refused",
        ),
        _t("pause", LIVE, S.PAUSED, E.WORKSPACE_PAUSED, "pause (cascades to children)"),
        _t(
            "resume",
            {S.PAUSED},
            S.PROVISIONING,
            E.WORKSPACE_PROVISIONING,
            "resume a paused workspace (cascades to paused children)",
        ),
        _t(
            "delete",
            {s.value for s in Status} - {S.REMOVED},
            S.REMOVED,
            E.WORKSPACE_REMOVED,
            "delete (cascades to children)",
        ),
    ]
}

# Verbs whose target state wants a running instance; everything else wants none.
WANTS_INSTANCE = {S.PROVISIONING, S.ONLINE, S.DEGRADED}


class Refused(Exception):
    """A verb that conflicts with the workspace's current state; nothing was changed.

    Adapters turn it into their own clear refusal: HTTP 409, an admin error message, a
    CommandError. Its message is written for the operator.
    """


class TransitionRefused(Refused):
    """A verb that the state machine does not allow from the workspace's current state."""

    def __init__(self, *, workspace_name: str, cause: str, current: str) -> None:
        transition = TRANSITIONS[cause]
        allowed = ", ".join(sorted(str(s) for s in transition.sources))
        verb = cause.replace("_", " ")
        super().__init__(
            f"Cannot {verb} workspace {workspace_name!r}: it is {current}. "
            f"{verb.capitalize()} is allowed only from: {allowed}."
        )
        self.cause = cause
        self.current = current


def is_allowed(cause: str, current: str) -> bool:
    return current in TRANSITIONS[cause].sources


def check(workspace: Workspace, cause: str) -> Transition:
    transition = TRANSITIONS[cause]
    if workspace.status not in transition.sources:
        raise TransitionRefused(
            workspace_name=workspace.name, cause=cause, current=workspace.status
        )
    return transition


def moved(cause: str, previous: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The payload of the event that moves a workspace from ``previous`` along ``cause``.

    :func:`apply` writes it for one row; the set-based sweeps write it for each row they moved
    in one statement (workspaces/dispatch/sweeps/), so both say the same.
    """
    target = str(TRANSITIONS[cause].target)
    return {"from": previous, "to": target, "cause": cause, **(payload or {})}


def apply(
    workspace: Workspace,
    cause: str,
    *,
    actor: str,
    payload: dict[str, Any] | None = None,
    update_fields: tuple[str, ...] = (),
) -> StructureEvent:
    """Move ``workspace`` along ``cause``: write the event, then save the projection.

    Must run inside the caller's transaction with the row locked. ``update_fields`` names other
    fields the caller changed on the instance and wants saved with the new status.
    """
    transition = check(workspace, cause)
    event = record_event(
        transition.event,
        workspace=workspace,
        actor=actor,
        payload=moved(cause, workspace.status, payload),
    )
    workspace.status = transition.target
    workspace.status_changed_at = timezone.now()
    workspace.save(update_fields=["status", "status_changed_at", "updated_at", *update_fields])
    return event


def create_event(
    workspace: Workspace,
    cause: str,
    *,
    actor: str,
    payload: dict[str, Any],
) -> StructureEvent:
    """The "(new) → provisioning" event of a workspace row the caller just inserted."""
    transition = TRANSITIONS[cause]
    return record_event(
        transition.event,
        workspace=workspace,
        actor=actor,
        payload={"from": NEW, "to": str(transition.target), "cause": cause, **payload},
    )
