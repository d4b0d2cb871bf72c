"""``POST /api/v1/orgs/<slug>/workspaces/<id>/a2a``: Molecule's A2A proxy route.

The body is the JSON-RPC request, the answer the agent's JSON-RPC response. The agent is a
loopback stand-in answering with the built-in agent's code (tests/support/a2a_agents.py), at
the URL the (recording) backend recorded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from orgs.models import Org
from tests.support.a2a_agents import agent_server
from tests.support.keys import Api
from tests.support.rows import MakeWorkspace, event_count, last_event
from workspaces.dispatch.a2a import text_request
from workspaces.models import EventType, Status, Workspace

pytestmark = pytest.mark.django_db


def a2a_url(workspace: Workspace) -> str:
    return f"orgs/{workspace.org.slug}/workspaces/{workspace.pk}/a2a"


def at(workspace: Workspace, url: str) -> None:
    Workspace.objects.filter(pk=workspace.pk).update(url=url)


def test_the_agents_json_rpc_answer_comes_back_as_the_body(
    org: Org, token: str, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, name="PM")
    request = text_request("From the API")
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        response = client_a.post(a2a_url(workspace), request)
    assert response.status_code == 200
    answer = response.json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] == request["id"]
    assert answer["result"]["parts"] == [{"kind": "text", "text": "PM heard: From the API"}]
    event = last_event(workspace)
    assert (event.event_type, event.actor) == (EventType.A2A_MESSAGE, f"token:{token[:8]}")
    assert "From the API" not in json.dumps(event.payload)


def test_a_message_without_a_text_part_is_refused_before_sending(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    no_text = {**text_request("x"), "params": {"message": {"parts": [{"kind": "data", "text": 1}]}}}
    with agent_server() as agent:
        at(workspace, agent.url)
        # Refused here already: the console sends only messages with a text part.
        assert client_a.post(a2a_url(workspace), no_text).status_code == 400
        assert agent.received == []


@pytest.mark.parametrize(
    ("raw", "status", "why"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'"a string"', 400, "JSON-RPC 2.0 request object"),
        (json.dumps({**text_request("x"), "method": "tasks/get"}).encode(), 400, "message/send"),
        (json.dumps(text_request("x" * 2_000_000)).encode(), 413, "larger than"),
    ],
)
def test_bad_input_is_a_clean_4xx_and_nothing_is_sent_or_recorded(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    raw: bytes,
    status: int,
    why: str,
) -> None:
    workspace = make_workspace(org)
    before = event_count(workspace)
    with agent_server() as agent:
        at(workspace, agent.url)
        response = client_a.post(a2a_url(workspace), raw=raw)
    assert response.status_code == status
    assert why in response.json()["error"]
    assert agent.received == []
    assert event_count(workspace) == before


def test_an_offline_workspace_is_a_409(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.OFFLINE)
    before = event_count(workspace)
    response = client_a.post(a2a_url(workspace), text_request("hi"))
    assert response.status_code == 409
    assert "is offline" in response.json()["error"]
    assert event_count(workspace) == before


@pytest.mark.parametrize(
    ("behaviour", "status", "why"),
    [
        ("silent", 504, "did not answer within 0.5 s"),
        ("not_json", 502, "not a JSON-RPC response"),
        ("huge", 502, "larger than 4096 bytes"),
        ("http_500", 502, "HTTP 500"),
    ],
)
def test_an_agent_that_fails_is_a_502_or_504_with_the_reason(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    settings: Any,
    behaviour: str,
    status: int,
    why: str,
) -> None:
    settings.MOLECULE_A2A_TIMEOUT = 0.5
    settings.MOLECULE_A2A_MAX_ANSWER_BYTES = 4096
    workspace = make_workspace(org)
    with agent_server(behaviour) as agent:
        at(workspace, agent.url)
        response = client_a.post(a2a_url(workspace), text_request("hi"))
    assert response.status_code == status
    assert why in response.json()["error"]
    assert last_event(workspace).event_type == EventType.A2A_MESSAGE


def test_another_orgs_token_gets_404_and_nothing_is_sent(
    org: Org, client_b: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    with agent_server() as agent:
        at(workspace, agent.url)
        response = client_b.post(f"orgs/globex/workspaces/{workspace.pk}/a2a", text_request("hi"))
        assert response.status_code == 404
        assert client_b.post(a2a_url(workspace), text_request("hi")).status_code == 404
    assert agent.received == []
