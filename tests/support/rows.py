"""Reading workspace rows in tests: a row's state and its events, fresh from the database."""

from __future__ import annotations

from collections.abc import Callable

from workspaces.models import StructureEvent, Workspace

# The ``make_workspace`` fixture (tests/conftest.py): ``make(org, status, *, name=..., **fields)``.
MakeWorkspace = Callable[..., Workspace]


def status_of(workspace: Workspace) -> str:
    return Workspace.objects.values_list("status", flat=True).get(pk=workspace.pk)


def event_count(workspace: Workspace) -> int:
    return StructureEvent.objects.filter(workspace=workspace).count()


def last_event(workspace: Workspace) -> StructureEvent:
    return StructureEvent.objects.filter(workspace=workspace).order_by("-id").first()
