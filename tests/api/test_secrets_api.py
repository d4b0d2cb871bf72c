"""Workspace secrets through the API: set, list keys, delete; values go in and never come out."""

from __future__ import annotations

from typing import Any

import pytest

from orgs.models import Org
from tests.support.keys import Api, database_text
from tests.support.rows import MakeWorkspace
from workspaces import vault
from workspaces.models import EventType, Status, StructureEvent, Workspace, WorkspaceSecret

pytestmark = pytest.mark.django_db

VALUE = "sk-live-4f9a-the-actual-secret"


def secrets_url(workspace: Workspace, key: str = "") -> str:
    tail = f"/{key}" if key else ""
    return f"orgs/{workspace.org.slug}/workspaces/{workspace.pk}/secrets{tail}"


def test_setting_a_secret_stores_it_sealed_and_answers_without_the_value(
    org: Org, token: str, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = client_a.put(secrets_url(workspace, "OPENAI_API_KEY"), {"value": VALUE})
    assert response.status_code == 201
    assert response.json()["key"] == "OPENAI_API_KEY"
    assert VALUE not in response.content.decode()
    assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == VALUE
    event = StructureEvent.objects.filter(workspace=workspace).latest("id")
    assert (event.event_type, event.actor, event.payload) == (
        EventType.SECRET_SET,
        f"token:{token[:8]}",
        {"key": "OPENAI_API_KEY", "created": True},
    )
    assert VALUE not in database_text()


def test_setting_a_secret_again_replaces_it_with_200(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    client_a.put(secrets_url(workspace, "TOKEN"), {"value": "first"})
    response = client_a.put(secrets_url(workspace, "TOKEN"), {"value": "second"})
    assert response.status_code == 200
    assert WorkspaceSecret.objects.filter(workspace=workspace).count() == 1
    assert vault.reveal(workspace_id=workspace.pk, key="TOKEN") == "second"


def test_listing_secrets_shows_keys_and_times_only(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    client_a.put(secrets_url(workspace, "B_KEY"), {"value": VALUE})
    client_a.put(secrets_url(workspace, "A_KEY"), {"value": VALUE + "2"})
    response = client_a.get(secrets_url(workspace))
    assert response.status_code == 200
    secrets = response.json()["secrets"]
    assert [s["key"] for s in secrets] == ["A_KEY", "B_KEY"]
    assert set(secrets[0]) == {"key", "created_at", "updated_at"}
    assert VALUE not in response.content.decode()


def test_deleting_a_secret_is_204_then_404(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    client_a.put(secrets_url(workspace, "TOKEN"), {"value": VALUE})
    assert client_a.delete(secrets_url(workspace, "TOKEN")).status_code == 204
    assert not WorkspaceSecret.objects.exists()
    event = StructureEvent.objects.filter(workspace=workspace).latest("id")
    assert (event.event_type, event.payload) == (EventType.SECRET_DELETED, {"key": "TOKEN"})
    assert client_a.delete(secrets_url(workspace, "TOKEN")).status_code == 404


@pytest.mark.parametrize(
    ("key", "body", "field"),
    [
        ("9LIVES", {"value": "x"}, "key"),
        ("WITH-DASH", {"value": "x"}, "key"),
        ("MOLECULE_WORKSPACE_TOKEN", {"value": "x"}, "key"),
        ("PATH", {"value": "/evil"}, "key"),
        ("K" * 129, {"value": "x"}, "key"),
        ("GOOD", {}, "value"),
        ("GOOD", {"value": 42}, "value"),
        ("GOOD", {"value": "a\x00b"}, "value"),
        ("GOOD", {"value": "x" * (32 * 1024 + 1)}, "value"),
        ("GOOD", {"value": "x", "note": "hi"}, "note"),
    ],
)
def test_a_bad_key_or_value_is_400_with_field_errors(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, key: str, body: Any, field: str
) -> None:
    workspace = make_workspace(org)
    response = client_a.put(secrets_url(workspace, key), body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not WorkspaceSecret.objects.exists()
    # A rejected value is never echoed back.
    if isinstance(body.get("value"), str) and len(body["value"]) > 3:
        assert body["value"] not in response.content.decode()


def test_a_removed_workspace_takes_no_secrets(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.REMOVED)
    response = client_a.put(secrets_url(workspace, "TOKEN"), {"value": VALUE})
    assert response.status_code == 409
    assert "removed" in response.json()["error"]
    assert not WorkspaceSecret.objects.exists()


def test_a_secret_set_through_the_api_reaches_the_agent_at_its_next_start(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    run_tasks: Any,
) -> None:
    workspace = make_workspace(org)
    assert "OPENAI_API_KEY" not in recording["local"].specs[-1].env
    client_a.put(secrets_url(workspace, "OPENAI_API_KEY"), {"value": VALUE})
    with run_tasks():
        client_a.post(f"orgs/acme/workspaces/{workspace.pk}/restart")
    assert recording["local"].specs[-1].env["OPENAI_API_KEY"] == VALUE


def test_no_event_ever_holds_a_secret_value(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    client_a.put(secrets_url(workspace, "TOKEN"), {"value": VALUE})
    client_a.put(secrets_url(workspace, "TOKEN"), {"value": VALUE + "-rotated"})
    client_a.delete(secrets_url(workspace, "TOKEN"))
    events = client_a.get("events").content.decode()
    assert "TOKEN" in events
    assert VALUE not in events
