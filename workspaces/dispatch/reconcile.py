"""The backend side of every verb: make the backend match the row, one generation at a time."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from workspaces import backends, bearer_secrets, lifecycle, vault
from workspaces.backends import BackendError, Instance, InstanceSpec
from workspaces.dispatch.core import RetryLater, console_tail, locked, recorded_instance
from workspaces.events import record as record_event
from workspaces.models import EventType, Status, Workspace
from workspaces.tiers import tier_settings


def _spec(workspace: Workspace, token: str) -> InstanceSpec:
    tier = tier_settings(workspace.tier)
    secrets = vault.environment(workspace)
    env = {
        # The workspace's secrets first, so the platform's own variables below always win.
        **secrets,
        # Their names (never values), so the agent can report which ones arrived.
        "MOLECULE_SECRET_KEYS": ",".join(sorted(secrets)),
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


def reconcile(*, workspace_id: Any, generation: int, final_attempt: bool = True) -> str:
    """Make the backend match the row, for the generation the task was queued with.

    Called by ``tasks.reconcile_workspace``. Returns what it did ("stale", "started", "stopped",
    "failed", "idle"). A transient ``BackendError`` raises ``RetryLater`` unless this is the final
    attempt; a permanent one (or the final attempt) marks a provisioning workspace failed with the
    error in the event, and records a BACKEND_CALL_FAILED event for a failed stop.
    """
    with transaction.atomic():
        try:
            workspace = locked(workspace_id)
        except Workspace.DoesNotExist:
            return "stale"
        if workspace.generation != generation:
            return "stale"
        backend = backends.get(workspace.backend)
        if backend is None:
            return "idle"
        old = recorded_instance(workspace)
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
            token = bearer_secrets.mint()
            new = backend.start(_spec(workspace, token))
        except (BackendError, vault.SecretsUnreadable) as error:
            if not (error.permanent or final_attempt):
                raise RetryLater(error.message) from error
            if wants_instance:
                if old is not None:
                    _forget_instance(workspace)
                lifecycle.apply(
                    workspace,
                    "provision_failed",
                    actor="system:dispatch",
                    payload={"error": error.message, "console": console_tail(backend, old)},
                )
                return "failed"
            record_event(
                EventType.BACKEND_CALL_FAILED,
                workspace=workspace,
                actor="system:dispatch",
                payload={"call": "stop", "error": error.message},
            )
            return "failed"
        workspace.instance_id, workspace.url = new.instance_id, new.url
        workspace.backend_state, workspace.token_hash = new.state, bearer_secrets.hash_token(token)
        workspace.instance_generation = generation
        workspace.save(
            update_fields=[
                "instance_id",
                "url",
                "backend_state",
                "token_hash",
                "instance_generation",
                "updated_at",
            ]
        )
        return "started"
