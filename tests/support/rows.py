"""Workspace rows in tests: a row's state and its events, fresh from the database, and a row with
the bearer token its agent would hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workspaces import bearer_secrets
from workspaces.models import Status, StructureEvent, Workspace

# The ``make_workspace`` fixture (tests/conftest.py): ``make(org, status, *, name=..., **fields)``.
MakeWorkspace = Callable[..., Workspace]


def status_of(workspace: Workspace) -> str:
    return Workspace.objects.values_list("status", flat=True).get(pk=workspace.pk)


def event_count(workspace: Workspace) -> int:
    return StructureEvent.objects.filter(workspace=workspace).count()


def last_event(workspace: Workspace) -> StructureEvent:
    return StructureEvent.objects.filter(workspace=workspace).order_by("-id").first()


def with_token(org: Any, *, status: str = Status.ONLINE, **fields: Any) -> tuple[Workspace, str]:
    """A workspace row (online unless told) and the bearer token its agent would hold: what
    the registry's tests post heartbeats with."""
    token = bearer_secrets.mint()
    workspace = Workspace.objects.create(
        org=org,
        name=fields.pop("name", "PM"),
        backend=fields.pop("backend", "local"),
        status=status,
        token_hash=bearer_secrets.hash_token(token),
        **fields,
    )
    return workspace, token
