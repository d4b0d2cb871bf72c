"""Messages through dispatch (workspaces/dispatch/a2a.py): one A2A ``message/send`` forwarded to
the URL the backend recorded, answered, and recorded as an event without its text.

The agents here are loopback stand-ins (tests/support/a2a_agents.py) that answer with the
built-in agent's own code or misbehave on purpose, reached by the backend's real HTTP client;
the real agents on every backend are the parity row's (tests/contract/) and
tests/workspaces/test_a2a_local.py's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from orgs.models import Org
from tests.support.a2a_agents import agent_server
from tests.support.rows import MakeWorkspace, event_count, last_event
from workspaces import dispatch, vault
from workspaces.agent.main import a2a_reply
from workspaces.backends.base import unsupported
from workspaces.dispatch.a2a import text_request
from workspaces.models import EventType, Status, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _recording(recording: dict[str, Any]) -> None:
    """The recording backends: their instances' URLs are pointed at the stand-ins."""


def at(workspace: Workspace, url: str) -> Workspace:
    Workspace.objects.filter(pk=workspace.pk).update(url=url)
    workspace.refresh_from_db()
    return workspace


def test_a_message_reaches_the_recorded_url_and_the_answer_comes_back(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, name="PM")
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        exchange = dispatch.send_message(workspace_id=workspace.pk, actor="test", text="Hello?")
    assert exchange.text == "PM heard: Hello?"
    assert exchange.status == 200
    sent = json.loads(agent.received[0])
    assert sent["method"] == "message/send"
    assert sent["params"]["message"]["parts"] == [{"kind": "text", "text": "Hello?"}]
    assert exchange.answer["id"] == sent["id"]


def test_each_exchange_is_one_event_with_sizes_and_status_never_the_text(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, name="PM")
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        before = event_count(workspace)
        dispatch.send_message(
            workspace_id=workspace.pk, actor="user:olivia", text="the secret plan"
        )
    assert event_count(workspace) == before + 1
    event = last_event(workspace)
    assert (event.event_type, event.actor) == (EventType.A2A_MESSAGE, "user:olivia")
    payload = event.payload
    assert payload["status"] == 200
    assert payload["request_bytes"] == len(agent.received[0])
    assert payload["answer_bytes"] > 0
    assert payload["latency_ms"] >= 0
    assert "my plan" not in json.dumps(payload)


def test_a_json_rpc_request_is_forwarded_as_given_with_a_message_id_added(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    request = text_request("ping")
    del request["params"]["message"]["messageId"]
    request["id"] = 42
    with agent_server() as agent:
        at(workspace, agent.url)
        exchange = dispatch.send_message(workspace_id=workspace.pk, actor="t", request=request)
    sent = json.loads(agent.received[0])
    assert sent["id"] == 42 and sent["params"]["message"]["messageId"]
    assert exchange.answer["id"] == 42


@pytest.mark.parametrize(
    ("request_body", "why"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON-RPC 2.0 request object"),
        (json.dumps({**text_request("x"), "jsonrpc": "1.0"}).encode(), "JSON-RPC 2.0"),
        (json.dumps({**text_request("x"), "method": "tasks/cancel"}).encode(), "message/send"),
        (json.dumps({**text_request("x"), "params": {}}).encode(), "params.message"),
        (json.dumps({**text_request("x"), "id": True}).encode(), "id"),
    ],
)
def test_a_bad_request_is_refused_before_anything_is_sent(
    org: Org, make_workspace: MakeWorkspace, request_body: bytes, why: str
) -> None:
    workspace = make_workspace(org)
    with agent_server() as agent:
        at(workspace, agent.url)
        before = event_count(workspace)
        with pytest.raises(dispatch.InvalidRequest, match=why):
            dispatch.send_message(workspace_id=workspace.pk, actor="t", request=request_body)
    assert agent.received == []
    assert event_count(workspace) == before


def test_a_request_over_the_cap_is_too_large(
    org: Org, make_workspace: MakeWorkspace, settings: Any
) -> None:
    settings.MOLECULE_A2A_MAX_REQUEST_BYTES = 2048
    workspace = make_workspace(org)
    with pytest.raises(dispatch.RequestTooLarge):
        dispatch.send_message(workspace_id=workspace.pk, actor="t", text="x" * 4096)
    with pytest.raises(dispatch.RequestTooLarge):
        dispatch.send_message(workspace_id=workspace.pk, actor="t", request=b" " * 4096)


@pytest.mark.parametrize("status", [Status.OFFLINE, Status.PAUSED, Status.PROVISIONING])
def test_a_workspace_that_is_not_online_refuses_and_records_nothing(
    org: Org, make_workspace: MakeWorkspace, status: str
) -> None:
    workspace = make_workspace(org, status)
    before = event_count(workspace)
    with pytest.raises(dispatch.Refused, match=f"is {status}"):
        dispatch.send_message(workspace_id=workspace.pk, actor="t", text="hi")
    assert event_count(workspace) == before


def test_a_degraded_workspace_still_takes_messages(org: Org, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org, name="PM")
    Workspace.objects.filter(pk=workspace.pk).update(status=Status.DEGRADED)
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        assert dispatch.send_message(workspace_id=workspace.pk, actor="t", text="ok?").text


def test_a_backend_that_declares_the_row_unsupported_refuses(
    org: Org, make_workspace: MakeWorkspace, recording: dict[str, Any], monkeypatch: Any
) -> None:
    workspace = make_workspace(org)
    backend = recording[workspace.backend]
    monkeypatch.setattr(
        type(backend), "capabilities", {"a2a": unsupported("no agents to talk to here")}
    )
    with pytest.raises(dispatch.Refused, match="no agents to talk to here"):
        dispatch.send_message(workspace_id=workspace.pk, actor="t", text="hi")


@pytest.mark.parametrize(
    ("behaviour", "timeout", "why"),
    [
        ("silent", True, "did not answer within"),
        ("huge", False, "larger than"),
        ("not_json", False, "not a JSON-RPC response"),
        ("http_500", False, "HTTP 500"),
    ],
)
def test_an_agent_that_fails_is_reported_and_the_exchange_recorded(
    org: Org,
    make_workspace: MakeWorkspace,
    settings: Any,
    behaviour: str,
    timeout: bool,
    why: str,
) -> None:
    settings.MOLECULE_A2A_TIMEOUT = 0.5
    settings.MOLECULE_A2A_MAX_ANSWER_BYTES = 4096
    workspace = make_workspace(org)
    with agent_server(behaviour) as agent:
        at(workspace, agent.url)
        with pytest.raises(dispatch.AgentFailed, match=why) as failed:
            dispatch.send_message(workspace_id=workspace.pk, actor="t", text="hi")
    assert failed.value.timeout is timeout
    event = last_event(workspace)
    assert event.event_type == EventType.A2A_MESSAGE
    assert event.payload["status"] in ("timeout" if timeout else "failed", 500, 200)
    assert "error" in event.payload


def test_an_agent_nobody_listens_for_is_unreachable(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    # The recording backend's URLs point at port 1, where nothing listens.
    workspace = make_workspace(org)
    with pytest.raises(dispatch.AgentFailed, match="Cannot reach") as failed:
        dispatch.send_message(workspace_id=workspace.pk, actor="t", text="hi")
    assert not failed.value.timeout
    assert last_event(workspace).payload["status"] == "failed"


def test_a_secret_in_the_answer_is_masked(org: Org, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org, name="PM")
    vault.set_secret(workspace_id=workspace.pk, key="API_KEY", value="sk-very-secret", actor="t")
    with agent_server(name="PM") as agent:
        at(workspace, agent.url)
        exchange = dispatch.send_message(
            workspace_id=workspace.pk, actor="t", text="say sk-very-secret"
        )
    assert exchange.text == "PM heard: say [secret:API_KEY]"
    assert "sk-very-secret" not in json.dumps(exchange.answer)


def test_the_built_in_agent_answers_json_rpc_errors_for_what_it_does_not_do() -> None:
    assert (
        a2a_reply("A", {"jsonrpc": "2.0", "id": 1, "method": "tasks/get"})["error"]["code"]
        == -32601
    )
    assert a2a_reply("A", {"id": 1})["error"]["code"] == -32600
    no_text = {"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {"message": {}}}
    assert a2a_reply("A", no_text)["error"]["code"] == -32602
    older = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "message/send",
        "params": {"message": {"parts": [{"type": "text", "text": "hi"}], "contextId": "c"}},
    }
    result = a2a_reply("A", older)["result"]
    assert result["parts"][0]["text"] == "A heard: hi"
    assert result["contextId"] == "c"
