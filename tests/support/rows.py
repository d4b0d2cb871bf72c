"""Small read helpers shared by the tests: a row's state and its events, fresh from the DB."""

from __future__ import annotations

from workspaces.models import StructureEvent, Workspace


def status_of(workspace: Workspace) -> str:
    return Workspace.objects.values_list("status", flat=True).get(pk=workspace.pk)


def event_count(workspace: Workspace) -> int:
    return StructureEvent.objects.filter(workspace=workspace).count()


def latest_event(workspace: Workspace) -> StructureEvent:
    return StructureEvent.objects.filter(workspace=workspace).order_by("-id").first()
