"""The message panel on the workspace page, ``manage.py workspace message``, and the three doors
(with the API) agreeing.

Owners and admins send; viewers see no form and get 403; another org's workspace is 404. The
agent is a loopback stand-in answering with the built-in agent's code
(tests/support/a2a_agents.py), at the URL the (recording) backend recorded.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.a2a_agents import agent_server
from tests.support.keys import api, mint_token
from tests.support.rows import MakeWorkspace, event_count, last_event
from workspaces.dispatch.a2a import text_request
from workspaces.models import EventType, Status, Workspace

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _recording(recording: dict[str, Any]) -> None:
    """The recording backends: the workspace's URL is pointed at a stand-in agent."""


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def at(workspace: Workspace, url: str) -> None:
    Workspace.objects.filter(pk=workspace.pk).update(url=url)


def send(client: Client, workspace: Workspace, text: str, **headers: str) -> Any:
    url = reverse("workspace-message", args=[workspace.pk])
    return client.post(url, {"text": text}, headers=headers)


def test_an_owner_sends_a_message_and_the_panel_shows_the_answer(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, name="PM")
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        response = send(client_for(owner), workspace, "What is <b>new</b>?", **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="a2a"' in page
    assert "PM heard: What is &lt;b&gt;new&lt;/b&gt;?" in page
    assert last_event(workspace).event_type == EventType.A2A_MESSAGE


def test_without_javascript_the_post_redirects_and_the_page_shows_the_answer(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, name="PM")
    client = client_for(owner)
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        response = send(client, workspace, "Status?")
    assert response.status_code == 302
    assert response["Location"] == f"/workspaces/{workspace.pk}/#a2a"
    page = client.get(response["Location"]).content.decode()
    assert "PM answered: PM heard: Status?" in page


def test_the_page_has_the_panel_with_a_form_for_owners_only(
    org: Org, owner: User, viewer: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    url = reverse("workspace", args=[workspace.pk])
    action = reverse("workspace-message", args=[workspace.pk])
    owners_page = client_for(owner).get(url).content.decode()
    viewers_page = client_for(viewer).get(url).content.decode()
    assert "<h2>Messages</h2>" in owners_page and "<h2>Messages</h2>" in viewers_page
    assert action in owners_page
    assert action not in viewers_page


def test_an_offline_workspace_has_no_form_and_refuses_a_post(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.OFFLINE)
    client = client_for(owner)
    page = client.get(reverse("workspace", args=[workspace.pk])).content.decode()
    assert reverse("workspace-message", args=[workspace.pk]) not in page
    assert "it is offline" in page
    before = event_count(workspace)
    response = send(client, workspace, "anyone?", **HTMX)
    assert response.status_code == 409
    assert "is offline" in response.content.decode()
    assert event_count(workspace) == before


def test_a_viewer_gets_403_and_another_org_404_and_nothing_is_sent(
    org: Org, viewer: User, outsider: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    with agent_server() as agent:
        at(workspace, agent.url)
        assert send(client_for(viewer), workspace, "hi").status_code == 403
        assert send(client_for(outsider), workspace, "hi").status_code == 404
    assert agent.received == []


@pytest.mark.parametrize("text", ["", "   ", "x" * 70000, "nul\x00byte"])
def test_bad_text_is_a_400_and_sends_nothing(
    org: Org, owner: User, make_workspace: MakeWorkspace, text: str
) -> None:
    workspace = make_workspace(org)
    before = event_count(workspace)
    with agent_server() as agent:
        at(workspace, agent.url)
        response = send(client_for(owner), workspace, text, **HTMX)
    assert response.status_code == 400
    assert "Not sent" in response.content.decode()
    assert agent.received == []
    assert event_count(workspace) == before


def test_an_agent_that_does_not_answer_is_shown_in_the_panel(
    org: Org, owner: User, make_workspace: MakeWorkspace, settings: Any
) -> None:
    settings.MOLECULE_A2A_TIMEOUT = 0.5
    workspace = make_workspace(org)
    with agent_server("silent") as agent:
        at(workspace, agent.url)
        response = send(client_for(owner), workspace, "hello?", **HTMX)
    assert response.status_code == 200
    assert "No answer: The agent did not answer within 0.5 s." in response.content.decode()
    assert last_event(workspace).payload["status"] == "timeout"


def test_the_command_sends_a_message_and_prints_the_answer(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, name="PM")
    out = io.StringIO()
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        call_command("workspace", "message", str(workspace.pk), "Report, please", stdout=out)
        assert out.getvalue().strip() == "PM heard: Report, please"
        out = io.StringIO()
        call_command("workspace", "message", "PM", "again", "--json", stdout=out)
    assert json.loads(out.getvalue())["result"]["parts"][0]["text"] == "PM heard: again"
    assert last_event(workspace).actor.startswith("cli:")


def test_the_command_refuses_an_offline_workspace_and_a_silent_agent(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    offline = make_workspace(org, Status.OFFLINE, name="Off")
    with pytest.raises(CommandError, match=r"Not sent: .* is offline"):
        call_command("workspace", "message", str(offline.pk), "hi")
    online = make_workspace(org, name="On")  # its recorded URL leads nowhere
    with pytest.raises(CommandError, match="No answer from On: Cannot reach"):
        call_command("workspace", "message", str(online.pk), "hi")


def test_the_page_the_api_and_the_command_leave_the_same_event(
    org: Org, owner: User, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, name="PM")
    path = f"orgs/{org.slug}/workspaces/{workspace.pk}/a2a"
    doors = {
        "page": lambda: send(client_for(owner), workspace, "Same words", **HTMX),
        "api": lambda: api(mint_token(org)).post(path, text_request("Same words")),
        "command": lambda: call_command(
            "workspace", "message", str(workspace.pk), "Same words", stdout=io.StringIO()
        ),
    }
    payloads = {}
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        for door, knock in doors.items():
            knock()
            payload = dict(last_event(workspace).payload)
            del payload["latency_ms"]
            payloads[door] = payload
    assert payloads["page"] == payloads["api"] == payloads["command"]
    assert payloads["page"]["status"] == 200
