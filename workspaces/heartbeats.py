"""What the agents report: registration and heartbeats (docs/architecture.md §7).

The registry views in ``registry.py`` parse HTTP and call these. Each call locks the workspace
row, checks the agent's token against the hash minted at its start, and moves the state machine
where the report says so: provisioning → online on register, online ↔ degraded by error rate.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from workspaces import lifecycle
from workspaces.models import Status, Workspace

DEGRADED_AT = 0.5
RECOVERED_BELOW = 0.1


class Unauthorized(Exception):
    """Unknown workspace, or a token that is not this workspace's current one."""


class Conflict(Exception):
    def __init__(self, message: str, *, register: bool = False) -> None:
        super().__init__(message)
        self.register = register


@dataclass(frozen=True)
class Report:
    error_rate: float
    sample_error: str
    active_tasks: int
    uptime_seconds: int
    current_task: str


def _authorized(workspace_id: Any, token_hash: str) -> Workspace:
    workspace = Workspace.objects.select_for_update().filter(pk=workspace_id).first()
    if workspace is None or not workspace.token_hash:
        raise Unauthorized
    if not hmac.compare_digest(workspace.token_hash, token_hash):
        raise Unauthorized
    return workspace


def _actor(workspace: Workspace) -> str:
    return f"agent:{workspace.short_id}"


def register(
    *, workspace_id: Any, token_hash: str, url: str, agent_card: dict[str, Any]
) -> Workspace:
    with transaction.atomic():
        workspace = _authorized(workspace_id, token_hash)
        workspace.last_heartbeat_at = timezone.now()
        workspace.agent_card = agent_card
        # The backend's URL (a published port, a VM address) wins over what the agent believes.
        workspace.url = workspace.url or url
        fields = ("last_heartbeat_at", "agent_card", "url")
        if workspace.status == Status.PROVISIONING:
            lifecycle.apply(
                workspace,
                "register",
                actor=_actor(workspace),
                payload={"url": workspace.url},
                update_fields=fields,
            )
        elif workspace.status in (Status.ONLINE, Status.DEGRADED):
            workspace.save(update_fields=[*fields, "updated_at"])  # a re-register: no new state
        else:
            raise Conflict(f"workspace is {workspace.status}; it does not accept registration")
        return workspace


def heartbeat(*, workspace_id: Any, token_hash: str, report: Report) -> Workspace:
    with transaction.atomic():
        workspace = _authorized(workspace_id, token_hash)
        if workspace.status == Status.PROVISIONING:
            raise Conflict("register before sending heartbeats", register=True)
        if workspace.status not in (Status.ONLINE, Status.DEGRADED):
            raise Conflict(f"workspace is {workspace.status}; it does not accept heartbeats")
        workspace.last_heartbeat_at = timezone.now()
        workspace.last_error_rate = report.error_rate
        workspace.last_sample_error = report.sample_error
        workspace.active_tasks = report.active_tasks
        workspace.uptime_seconds = report.uptime_seconds
        workspace.current_task = report.current_task
        fields = (
            "last_heartbeat_at",
            "last_error_rate",
            "last_sample_error",
            "active_tasks",
            "uptime_seconds",
            "current_task",
        )
        payload = {"error_rate": report.error_rate, "sample_error": report.sample_error}
        if workspace.status == Status.ONLINE and report.error_rate >= DEGRADED_AT:
            lifecycle.apply(
                workspace, "degrade", actor=_actor(workspace), payload=payload, update_fields=fields
            )
        elif workspace.status == Status.DEGRADED and report.error_rate < RECOVERED_BELOW:
            lifecycle.apply(
                workspace, "recover", actor=_actor(workspace), payload=payload, update_fields=fields
            )
        else:
            workspace.save(update_fields=[*fields, "updated_at"])
        return workspace
