"""A message to a real local agent (a child process): its answer, its card, and what happens
when the agent dies behind the console's back."""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest

from orgs.models import Org
from tests.support.rows import last_event, status_of
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.models import EventType, Status, Workspace

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_real_local_agent_answers_and_serves_its_card(org: Org, local_fleet: Any) -> None:
    org.backend = "local"
    org.save(update_fields=["backend"])
    workspace = dispatch.create_workspace(org=org, name="Real", actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE, timeout=30)
    workspace.refresh_from_db()
    exchange = dispatch.send_message(workspace_id=workspace.pk, actor="t", text="Are you real?")
    assert exchange.text == "Real heard: Are you real?"
    card = httpx.get(workspace.url + "/.well-known/agent.json", timeout=5).json()
    assert card["name"] == "Real"
    assert card["url"]

    # Killed behind the console's back: the row still says online until the sweeps notice.
    os.killpg(workspace.backend_state["pid"], signal.SIGKILL)
    wait_for(lambda: not _answers(workspace.url), timeout=10)
    assert Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE
    with pytest.raises(dispatch.AgentFailed, match="Cannot reach"):
        dispatch.send_message(workspace_id=workspace.pk, actor="t", text="Still there?")
    event = last_event(workspace)
    assert (event.event_type, event.payload["status"]) == (EventType.A2A_MESSAGE, "failed")


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/health", timeout=1)
    except httpx.HTTPError:
        return False
    return True
