"""The lifecycle verbs operators call: create, provision, restart, stop, pause, resume, delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from orgs.models import Org
from workspaces import backends, fields, lifecycle, redaction, team_secrets
from workspaces.backends import BackendError
from workspaces.dispatch.core import (
    VERB_LOCK_WAIT,
    InvalidRequest,
    VerbResult,
    enqueue,
    locked,
    locked_tree,
    no_backend_note,
    no_backend_reason,
    recorded_instance,
    transition,
)
from workspaces.dispatch.team_rows import ensure_team
from workspaces.dispatch.tier_policy import tier_refusal
from workspaces.models import Status, Workspace


def _cascade(workspace_id: Any, cause: str, *, actor: str, skip: Iterable[str] = ()) -> VerbResult:
    with transaction.atomic():
        root, descendants = locked_tree(workspace_id, busy_after=VERB_LOCK_WAIT)
        lifecycle.check(root, cause)  # refuse before touching any child
        moved = []
        for workspace in [root, *descendants]:
            if workspace.status in skip or not lifecycle.is_allowed(cause, workspace.status):
                continue
            payload = no_backend_note(workspace)
            if workspace is not root:
                payload["cascaded_from"] = str(root.pk)
            transition(workspace, cause, actor=actor, payload=payload)
            moved.append(workspace)
        return VerbResult(root, moved)


def _single(workspace_id: Any, cause: str, *, actor: str) -> Workspace:
    with transaction.atomic():
        workspace = locked(workspace_id, busy_after=VERB_LOCK_WAIT)
        transition(workspace, cause, actor=actor, payload=no_backend_note(workspace))
        return workspace


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
    call creates a new workspace. A parent from another org raises ``InvalidRequest``; a bad
    field value ``ValidationError`` with field errors (``workspaces.fields``), nothing written.
    """
    given = {"name": name, "role": role, "tier": tier, "runtime": runtime}
    given |= {"workspace_dir": workspace_dir, "spec": spec or {}}
    if errors := fields.problems(given):
        raise ValidationError(errors)
    if why := tier_refusal(org, org.backend, tier):
        raise ValidationError({"tier": [why]})
    name = name.strip()
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
        if parent is not None:
            ensure_team(parent)
        lifecycle.create_event(
            workspace, "create", actor=actor, payload={"backend": workspace.backend, "tier": tier}
        )
        if backends.get(workspace.backend) is None:
            workspace.reconciled_generation = workspace.generation
            lifecycle.apply(
                workspace,
                "provision_failed",
                actor=actor,
                payload={"error": no_backend_reason(workspace.backend)},
                update_fields=("reconciled_generation",),
            )
        else:
            enqueue(workspace)
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
    with transaction.atomic():
        result = _cascade(workspace_id, "delete", actor=actor, skip={Status.REMOVED})
        # Secrets a collapse kept for a removed lead's team: nothing can expand it any more.
        team_secrets.discard(result.moved)
        return result


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
    """The instance's boot and run log from its backend ("" when nothing is running), with
    the workspace's secrets masked (workspaces/redaction.py)."""
    workspace = Workspace.objects.get(pk=workspace_id)
    backend, instance = backends.get(workspace.backend), recorded_instance(workspace)
    if backend is None:
        return no_backend_reason(workspace.backend)
    if instance is None:
        return ""
    try:
        output = backend.console(instance, tail=tail)
    except BackendError as error:
        return f"(console unavailable: {error.message})"
    return redaction.for_workspace(workspace).text(output)
