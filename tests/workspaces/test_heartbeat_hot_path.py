"""The heartbeat's hot path: a report that moves nothing is one statement, at any fleet size.

The rules a heartbeat follows (degrade, recover, wedge, provisioning → online, 401, 409) are
tests/workspaces/test_registry*.py; here is what it costs and what it leaves alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orgs.models import Org
from tests.support.rows import with_token
from workspaces import bearer_secrets
from workspaces.models import Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["written-out", "orm"])
def quiet_statement(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: the quiet beat as PostgreSQL runs it (its SQL written out) and as the
    ORM writes it (the embedded default's SQLite)."""
    if request.param == "orm":
        monkeypatch.setattr("workspaces.heartbeats._written_out", lambda: False)
    return request.param


@pytest.fixture
def online(org: Org) -> tuple[Workspace, str]:
    return with_token(org, runtime_metadata={"capabilities": {"sessions": True}})


def beat(workspace: Workspace, token: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    body = {"workspace_id": str(workspace.pk), "error_rate": 0.0, **fields}
    response = Client().post(
        "/registry/heartbeat",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.json()


def statements(workspace: Workspace, token: str, **fields: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        status, _ = beat(workspace, token, **fields)
    assert status == 200
    return [query["sql"] for query in queries.captured_queries]


def seed(org: Org, count: int) -> None:
    """``count`` more online workspaces in the org, each with a token of its own."""
    Workspace.objects.bulk_create(
        Workspace(
            org=org,
            name=f"fleet-{index}",
            backend="local",
            status=Status.ONLINE,
            token_hash=bearer_secrets.hash_token(bearer_secrets.mint()),
        )
        for index in range(Workspace.objects.count(), count)
    )


def updated_at(workspace: Workspace) -> Any:
    return Workspace.objects.values_list("updated_at", flat=True).get(pk=workspace.pk)


def test_a_heartbeat_that_changes_nothing_is_one_statement(online) -> None:
    workspace, token = online
    # An instance's first report with text reads its secrets once, to mask them in what it
    # reports (workspaces/redaction.py): its token and secrets, in one query.
    assert len(statements(workspace, token, current_task="Boot")) == 2
    [sql] = statements(workspace, token, error_rate=0.2, active_tasks=3, current_task="Triage")
    assert sql.split()[:2] in (
        ["UPDATE", "workspaces_workspace"],
        ["UPDATE", '"workspaces_workspace"'],
    )
    workspace.refresh_from_db()
    assert (workspace.last_error_rate, workspace.active_tasks, workspace.current_task) == (
        0.2,
        3,
        "Triage",
    )
    assert workspace.last_heartbeat_at is not None


def test_molecules_full_heartbeat_with_the_same_capabilities_is_one_statement(online) -> None:
    workspace, token = online
    beat(workspace, token, uptime_seconds=30, runtime_metadata={"capabilities": {"sessions": True}})
    [sql] = statements(
        workspace,
        token,
        uptime_seconds=60,
        runtime_metadata={"capabilities": {"sessions": True}},
        monthly_spend=125,
    )
    assert sql.split()[0] == "UPDATE"
    workspace.refresh_from_db()
    assert (workspace.uptime_seconds, workspace.monthly_spend) == (60, 125)


@pytest.mark.parametrize(
    ("fields", "after"),
    [
        ({"error_rate": 0.9}, Status.DEGRADED),
        ({"runtime_state": "wedged", "uptime_seconds": 5}, Status.DEGRADED),
        ({"uptime_seconds": 5, "runtime_metadata": {"capabilities": {}}}, Status.ONLINE),
    ],
    ids=["errors", "wedged", "new-capabilities"],
)
def test_a_heartbeat_that_moves_the_row_takes_the_locked_path_and_marks_it_changed(
    online, fields, after
) -> None:
    workspace, token = online
    before = updated_at(workspace)
    sql = statements(workspace, token, **fields)
    assert any("FOR NO KEY UPDATE" in query for query in sql)
    assert Workspace.objects.get(pk=workspace.pk).status == after
    assert updated_at(workspace) > before


def test_a_quiet_heartbeat_leaves_updated_at_and_writes_no_event(online) -> None:
    workspace, token = online
    before = updated_at(workspace)
    beat(workspace, token, error_rate=0.3)
    beat(workspace, token, uptime_seconds=30, runtime_metadata={"capabilities": {"sessions": True}})
    assert updated_at(workspace) == before
    assert not StructureEvent.objects.filter(workspace=workspace).exists()


def test_a_row_that_is_not_online_is_left_to_the_locked_path(online) -> None:
    workspace, token = online
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.PAUSED)
    status, body = beat(workspace, token)
    assert (status, body["error"]) == (409, "workspace is paused; it does not accept heartbeats")
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.ONLINE)
    assert beat(workspace, "not-the-token")[0] == 401
    assert Workspace.objects.get(pk=workspace.pk).last_heartbeat_at is None


def test_a_partial_beat_on_a_wedged_row_keeps_the_wedge(online) -> None:
    workspace, token = online
    # Online and wedged at once is what a row changed under the report can look like: the
    # quiet path must not take it (a partial beat would keep the wedge without degrading).
    Workspace.objects.filter(pk=workspace.pk).update(runtime_state="wedged")
    sql = statements(workspace, token, current_task="Summarise")
    assert len(sql) > 1
    assert Workspace.objects.get(pk=workspace.pk).status == Status.DEGRADED


@pytest.mark.parametrize(
    "fields", [{"error_rate": 0.0}, {"error_rate": 0.9}], ids=["quiet", "degrading"]
)
def test_the_queries_of_a_heartbeat_do_not_depend_on_the_fleet_size(org, online, fields) -> None:
    workspace, token = online
    counted = {}
    for size in (10, 200):
        seed(org, size)
        Workspace.objects.filter(pk=workspace.pk).update(status=Status.ONLINE)
        assert Workspace.objects.count() == size
        counted[size] = len(statements(workspace, token, **fields))
    assert counted[10] == counted[200]
