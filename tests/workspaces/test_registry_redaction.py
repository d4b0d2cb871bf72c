"""What an agent reports (its card, its sample error, its current task, its capabilities) is kept
and shown with the workspace's secrets masked, and the events it causes too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from workspaces import bearer_secrets, vault
from workspaces.models import Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

SECRET = "ghp_leaky0123456789"


@pytest.fixture
def agent(org: Any) -> tuple[Workspace, str]:
    token = bearer_secrets.mint()
    workspace = Workspace.objects.create(
        org=org, name="PM", backend="local", token_hash=bearer_secrets.hash_token(token)
    )
    vault.set_secret(workspace_id=workspace.pk, key="GITHUB_TOKEN", value=SECRET, actor="test")
    return workspace, token


def post(path: str, token: str, body: dict[str, Any]) -> int:
    response = Client().post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code


def stored(workspace: Workspace) -> str:
    row = Workspace.objects.filter(pk=workspace.pk).values().get()
    events = list(StructureEvent.objects.filter(workspace=workspace).values("payload"))
    return json.dumps([row, events], default=str)


def test_a_card_a_sample_error_a_task_and_capabilities_are_kept_masked(agent: Any) -> None:
    workspace, token = agent
    ident = {"workspace_id": str(workspace.pk)}
    card = {"name": "PM", "description": f"uses {SECRET}", "skills": [{"id": SECRET}]}
    assert post("/registry/register", token, {**ident, "agent_card": card}) == 200
    beat = {
        **ident,
        "error_rate": 0.9,  # degraded: the event keeps the sample error
        "sample_error": f"401 for token {SECRET}",
        "current_task": f"clone with {SECRET}",
        "uptime_seconds": 5,
        "runtime_metadata": {"env": {"GITHUB_TOKEN": SECRET}},
    }
    assert post("/registry/heartbeat", token, beat) == 200
    assert post("/registry/update-card", token, {**ident, "agent_card": card}) == 200
    # The quiet path too: a healthy beat with text.
    calm = {**beat, "error_rate": 0.0}
    assert post("/registry/heartbeat", token, calm) == 200
    assert post("/registry/heartbeat", token, calm) == 200
    row = Workspace.objects.get(pk=workspace.pk)
    assert row.status == Status.ONLINE
    assert row.last_sample_error == "401 for token [secret:GITHUB_TOKEN]"
    assert row.current_task == "clone with [secret:GITHUB_TOKEN]"
    assert row.agent_card["skills"] == [{"id": "[secret:GITHUB_TOKEN]"}]
    assert SECRET not in stored(workspace)
    assert "[secret:GITHUB_TOKEN]" in json.dumps(
        list(StructureEvent.objects.filter(workspace=workspace).values_list("payload", flat=True))
    )


def test_a_mask_longer_than_its_value_still_fits_the_column(agent: Any, org: Any) -> None:
    workspace, token = agent
    vault.set_secret(workspace_id=workspace.pk, key="A" * 60, value="xyz", actor="test")
    ident = {"workspace_id": str(workspace.pk)}
    assert post("/registry/register", token, {**ident}) == 200
    beat = {**ident, "error_rate": 0.0, "sample_error": "xyz " * 500, "current_task": "xyz" * 166}
    assert post("/registry/heartbeat", token, beat) == 200
    row = Workspace.objects.get(pk=workspace.pk)
    assert "xyz" not in row.last_sample_error.replace("[secret:", "")
    assert len(row.last_sample_error) <= 2000 and len(row.current_task) <= 500
