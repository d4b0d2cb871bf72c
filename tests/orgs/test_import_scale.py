"""An org import's cost does not grow with the template: bulk writes and one enqueue per batch.

Generated templates of 100, 400 and 1,000 workspaces (a director, leads of up to nine members,
one secret each) imported on the test PostgreSQL: the number of statements is the same at 100
and 400, and the time of each size is printed (figures, not assertions).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgs.importer import import_org
from orgs.models import Org, Team
from workspaces import dispatch, fields, tasks
from workspaces.models import EventType, Status, StructureEvent, Workspace, WorkspaceSecret

pytestmark = pytest.mark.django_db


def generated(size: int, slug: str) -> str:
    """A template of exactly ``size`` workspaces, three levels deep whatever the size."""
    leads = max(1, -(-(size - 1) // 10))
    members = size - 1 - leads
    lines = [
        f"name: Generated {slug}",
        f"slug: {slug}",
        "required_env: [OPENAI_API_KEY]",
        "workspaces:",
        "  - name: Director",
        "    role: Lead",
        "    children:",
    ]
    for lead in range(leads):
        mine = members // leads + (1 if lead < members % leads else 0)
        lines.append(f"      - name: Lead {lead}")
        if mine:
            lines.append("        children:")
            lines += [f"          - {{name: Member {lead}.{m}, tier: 1}}" for m in range(mine)]
    return "\n".join(lines) + "\n"


def _import(size: int, slug: str) -> tuple[int, float, Any]:
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        result = import_org(generated(size, slug), actor="test", env={"OPENAI_API_KEY": "sk"})
        elapsed = time.perf_counter() - started
    return len(captured.captured_queries), elapsed, result


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    sent: list[Any] = []
    monkeypatch.setattr(tasks.reconcile_workspaces, "delay", lambda calls: sent.append(calls))
    monkeypatch.setattr(tasks.reconcile_workspace, "delay", lambda *args: sent.append([args]))
    return sent


def test_an_import_is_the_same_statements_for_100_or_400_workspaces(
    recording: dict[str, Any],
    messages: list[Any],
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="orgs.importer")
    with django_capture_on_commit_callbacks(execute=True):
        small, small_time, result = _import(100, "small")
    assert len(result.workspaces) == 100
    with django_capture_on_commit_callbacks(execute=True):
        large, large_time, result = _import(400, "large")
    assert len(result.workspaces) == 400
    print(
        f"import: 100 workspaces {small} statements {small_time:.2f} s; "
        f"400 workspaces {large} statements {large_time:.2f} s"
    )
    assert small == large, f"{small} statements for 100 workspaces, {large} for 400"
    assert "org import small: 100 workspaces, 11 teams, 0 files in" in caplog.text
    # One message per batch of 100 starts, not one per workspace.
    assert [len(m) for m in messages] == [100] + [100] * 4


def test_a_thousand_workspace_import_writes_every_row_and_event(
    recording: dict[str, Any], messages: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    assert fields.MAX_TEAM >= 1000
    with django_capture_on_commit_callbacks(execute=True):
        statements, elapsed, result = _import(1000, "thousand")
    print(f"import: 1000 workspaces {statements} statements {elapsed:.2f} s")
    org = result.org
    assert Workspace.objects.filter(org=org, status=Status.PROVISIONING).count() == 1000
    assert WorkspaceSecret.objects.filter(workspace__org=org).count() == 1000
    assert Team.objects.filter(org=org).count() == 1 + 100
    events = StructureEvent.objects.filter(org=org)
    assert events.filter(event_type=EventType.WORKSPACE_PROVISIONING).count() == 1000
    assert events.filter(event_type=EventType.SECRET_SET).count() == 1000
    assert sum(len(m) for m in messages) == 1000


def test_a_bulk_create_under_a_parent_of_another_org_writes_nothing(
    org: Org, other_org: Org, recording: dict[str, Any]
) -> None:
    theirs = dispatch.create_workspace(org=other_org, name="Theirs", actor="test")
    before = Workspace.objects.count(), StructureEvent.objects.count(), Team.objects.count()
    batch = [dispatch.NewWorkspace(id=uuid.uuid4(), name="Mine", parent_id=theirs.pk)]
    with pytest.raises(dispatch.InvalidRequest):
        dispatch.create_workspaces(org=org, batch=batch, actor="test")
    after = Workspace.objects.count(), StructureEvent.objects.count(), Team.objects.count()
    assert after == before


def test_a_bulk_create_inserts_parents_before_children_in_any_order(
    org: Org, recording: dict[str, Any]
) -> None:
    lead, member, leaf = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = [
        dispatch.NewWorkspace(id=leaf, name="Leaf", parent_id=member),
        dispatch.NewWorkspace(id=member, name="Member", parent_id=lead),
        dispatch.NewWorkspace(id=lead, name="Lead"),
    ]
    made = dispatch.create_workspaces(org=org, batch=batch, actor="test")
    assert [w.name for w in made] == ["Leaf", "Member", "Lead"]
    parents = dict(Workspace.objects.values_list("name", "parent__name"))
    assert parents == {"Lead": None, "Member": "Lead", "Leaf": "Member"}
    assert set(Team.objects.values_list("lead__name", flat=True)) == {"Lead", "Member"}
