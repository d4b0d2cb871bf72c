"""The agents' endpoints: workspace tokens, registration and heartbeats."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from workspaces import bearer_secrets
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(org):
    """A provisioning workspace and the token its agent was given."""
    token = bearer_secrets.mint()
    workspace = Workspace.objects.create(
        org=org, name="PM", backend="local", token_hash=bearer_secrets.hash_token(token)
    )
    return workspace, token


def post(path: str, token: str, body: dict) -> tuple[int, dict]:
    response = Client().post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.json()


def register(workspace, token, **extra):
    return post(
        "/registry/register",
        token,
        {"workspace_id": str(workspace.pk), "url": "http://127.0.0.1:7000", **extra},
    )


def beat(workspace, token, **fields):
    body = {"workspace_id": str(workspace.pk), "error_rate": 0.0, **fields}
    return post("/registry/heartbeat", token, body)


def test_register_moves_provisioning_to_online_and_stores_the_card(agent):
    workspace, token = agent
    status, body = register(workspace, token, agent_card={"name": "PM"})
    workspace.refresh_from_db()
    assert (status, body["status"], body["workspace_status"]) == (200, "registered", "online")
    assert workspace.status == Status.ONLINE
    assert workspace.agent_card == {"name": "PM"}
    assert workspace.url == "http://127.0.0.1:7000"
    assert workspace.last_heartbeat_at is not None
    event = StructureEvent.objects.get(workspace=workspace)
    assert (event.event_type, event.actor) == (
        EventType.WORKSPACE_ONLINE,
        f"agent:{workspace.short_id}",
    )


def test_the_backends_url_wins_over_what_the_agent_reports(agent):
    workspace, token = agent
    Workspace.objects.filter(pk=workspace.pk).update(url="http://127.0.0.1:40001")
    register(workspace, token)
    workspace.refresh_from_db()
    assert workspace.url == "http://127.0.0.1:40001"


def test_registering_again_while_online_writes_no_new_event(agent):
    workspace, token = agent
    register(workspace, token)
    status, _ = register(workspace, token)
    assert status == 200
    assert StructureEvent.objects.filter(workspace=workspace).count() == 1


@pytest.mark.parametrize(
    "credentials",
    ["wrong-token", "", "other-workspace"],
)
def test_every_credential_failure_is_the_same_401(agent, org, credentials):
    workspace, _token = agent
    other_token = bearer_secrets.mint()
    other = Workspace.objects.create(
        org=org, name="Other", backend="local", token_hash=bearer_secrets.hash_token(other_token)
    )
    used = {"wrong-token": "nope", "": "", "other-workspace": other_token}[credentials]
    for path in ("/registry/register", "/registry/heartbeat"):
        status, body = post(path, used, {"workspace_id": str(workspace.pk)})
        assert (status, body) == (401, {"error": "invalid workspace credentials"})
    workspace.refresh_from_db()
    other.refresh_from_db()
    assert workspace.status == other.status == Status.PROVISIONING


def test_an_unknown_workspace_gets_the_same_401(agent):
    _workspace, token = agent
    status, body = post(
        "/registry/register", token, {"workspace_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert (status, body) == (401, {"error": "invalid workspace credentials"})


def test_a_stopped_workspaces_agent_is_refused(agent):
    workspace, token = agent
    register(workspace, token)
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.OFFLINE, token_hash="")
    assert beat(workspace, token)[0] == 401


def test_a_heartbeat_before_register_is_the_registration(agent):
    # Molecule's runtime registers once and never retries: its heartbeats bring it online.
    workspace, token = agent
    status, body = beat(workspace, token)
    assert (status, body["status"], body["workspace_status"]) == (200, "ok", "online")
    event = StructureEvent.objects.get(workspace=workspace)
    assert (event.event_type, event.actor) == (
        EventType.WORKSPACE_ONLINE,
        f"agent:{workspace.short_id}",
    )
    assert (event.payload["cause"], event.payload["via"]) == ("register", "heartbeat")


def test_a_heartbeat_while_paused_is_a_409(agent):
    workspace, token = agent
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.PAUSED)
    status, body = beat(workspace, token)
    assert (status, body) == (409, {"error": "workspace is paused; it does not accept heartbeats"})


def test_heartbeats_update_the_fields_without_writing_events(agent):
    workspace, token = agent
    register(workspace, token)
    status, _ = beat(
        workspace,
        token,
        error_rate=0.2,
        sample_error="timeout",
        active_tasks=3,
        uptime_seconds=120,
        current_task="summarize",
    )
    workspace.refresh_from_db()
    assert status == 200
    assert (workspace.last_error_rate, workspace.last_sample_error) == (0.2, "timeout")
    assert (workspace.active_tasks, workspace.uptime_seconds) == (3, 120)
    assert workspace.current_task == "summarize"
    assert workspace.status == Status.ONLINE
    assert StructureEvent.objects.filter(workspace=workspace).count() == 1


def test_a_high_error_rate_degrades_and_a_low_one_recovers(agent):
    workspace, token = agent
    register(workspace, token)
    assert beat(workspace, token, error_rate=0.49)[1]["workspace_status"] == "online"
    degraded = beat(workspace, token, error_rate=0.5, sample_error="boom")[1]
    assert degraded["workspace_status"] == "degraded"
    # Between the two thresholds the state holds (hysteresis).
    assert beat(workspace, token, error_rate=0.3)[1]["workspace_status"] == "degraded"
    assert beat(workspace, token, error_rate=0.09)[1]["workspace_status"] == "online"
    types = list(
        StructureEvent.objects.filter(workspace=workspace)
        .order_by("id")
        .values_list("event_type", "payload__cause")
    )
    assert types == [
        (EventType.WORKSPACE_ONLINE, "register"),
        (EventType.WORKSPACE_DEGRADED, "degrade"),
        (EventType.WORKSPACE_ONLINE, "recover"),
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"error_rate": 1.5}, "error_rate must be between 0 and 1"),
        ({"error_rate": "high"}, "error_rate must be a number"),
        ({"active_tasks": 1.5}, "active_tasks must be a whole number"),
        ({"active_tasks": -1}, "active_tasks must be between"),
        ({"sample_error": 42}, "sample_error must be a string"),
    ],
)
def test_bad_heartbeat_fields_are_400_and_change_nothing(agent, fields, message):
    workspace, token = agent
    register(workspace, token)
    status, body = beat(workspace, token, **fields)
    assert status == 400
    assert body["error"].startswith(message)
    workspace.refresh_from_db()
    assert workspace.last_error_rate == 0.0


def test_a_body_that_is_not_json_is_400(agent):
    _workspace, token = agent
    response = Client().post(
        "/registry/register",
        data="{nope",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("body is not JSON")


def test_the_registry_refuses_get(agent):
    assert Client().get("/registry/heartbeat").status_code == 405
