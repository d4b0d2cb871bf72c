"""The page, the admin and the command are three doors to one service, so they must agree.

The incident behind the dispatcher rule (docs/architecture.md §5) was three handlers that each
did the lifecycle their own way. Here every adapter runs the same verb from the same state, and
what it leaves behind (state, events, backend calls) is compared with what dispatch itself does
when called directly. What may differ is only who is recorded as the actor.
"""

from __future__ import annotations

import getpass
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.rows import MakeWorkspace
from workspaces import dispatch
from workspaces.lifecycle import TransitionRefused
from workspaces.models import Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

# An adapter runs a verb on a workspace and returns the error messages it showed the operator.
Adapter = Callable[[Workspace, str], list[str]]

# The verbs that interrupt an agent, and the state each one is tried from.
VERBS = {
    "stop": Status.ONLINE,
    "restart": Status.ONLINE,
    "pause": Status.ONLINE,
    "resume": Status.PAUSED,
}
# A state from which each of them is refused.
REFUSED_FROM = {
    "stop": Status.PAUSED,
    "restart": Status.PAUSED,
    "pause": Status.PAUSED,
    "resume": Status.ONLINE,
}
ACTORS = {
    "page": "user:olivia",
    "admin": "user:root",
    "command": f"cli:{getpass.getuser()}",
}


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any]) -> None:
    """Every test here uses the recording backends; none starts a real agent."""


def _logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _errors(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]


@pytest.fixture
def adapters(owner: User, superuser: User) -> dict[str, Adapter]:
    page_client, admin_client = _logged_in(owner), _logged_in(superuser)

    def page(workspace: Workspace, verb: str) -> list[str]:
        response = page_client.post(reverse("workspace-verb", args=[workspace.pk, verb]))
        assert response.status_code == 302
        return _errors(response)

    def admin(workspace: Workspace, verb: str) -> list[str]:
        # As an operator does it: pick the action, then, for the verbs that interrupt an agent,
        # say yes on the confirmation page. Resume is not one of them and acts at once.
        changelist = reverse("admin:workspaces_workspace_changelist")
        selection = {"action": f"{verb}_action", "_selected_action": [str(workspace.pk)]}
        response = admin_client.post(changelist, {**selection, "index": "0"})
        if verb in dispatch.DESTRUCTIVE_VERBS:
            assert response.status_code == 200
            assert 'name="confirmed" value="yes"' in response.content.decode()
            response = admin_client.post(changelist, {**selection, "confirmed": "yes"})
        assert response.status_code == 302
        return _errors(response)

    def command(workspace: Workspace, verb: str) -> list[str]:
        try:
            call_command("workspace", verb, str(workspace.pk), stdout=io.StringIO())
        except CommandError as error:
            return [str(error)]
        return []

    return {"page": page, "admin": admin, "command": command}


@dataclass(frozen=True)
class Outcome:
    """What a verb left behind, minus who did it."""

    status: str
    events: list[str]
    backend_calls: list[str]
    errors: list[str]


def run_verb(
    run: Callable[[], list[str]],
    workspace: Workspace,
    recording: dict[str, Any],
    capture: Any,
) -> tuple[Outcome, list[str]]:
    """Run one adapter (or dispatch) with its backend tasks; return its outcome and actors."""
    seen = StructureEvent.objects.filter(workspace=workspace).count()
    calls = len(recording["local"].calls)
    with capture(execute=True):
        errors = run()
    new = list(StructureEvent.objects.filter(workspace=workspace).order_by("id")[seen:])
    outcome = Outcome(
        status=Workspace.objects.values_list("status", flat=True).get(pk=workspace.pk),
        events=[e.event_type for e in new],
        backend_calls=[name for name, _ in recording["local"].calls[calls:]],
        errors=errors,
    )
    return outcome, [e.actor for e in new]


def by_dispatch(workspace: Workspace, verb: str) -> list[str]:
    """The reference: the service called directly, refusals turned into their message."""
    try:
        dispatch.VERBS[verb](workspace_id=workspace.pk, actor="test")
    except TransitionRefused as refused:
        return [str(refused)]
    return []


@pytest.mark.parametrize("adapter", ACTORS)
@pytest.mark.parametrize("verb", VERBS)
def test_each_adapter_ends_where_dispatch_ends(
    org: Org,
    make_workspace: MakeWorkspace,
    adapters: dict[str, Adapter],
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
    verb: str,
    adapter: str,
) -> None:
    workspace = make_workspace(org, VERBS[verb], name="PM")
    twin = make_workspace(org, VERBS[verb], name="Twin")
    capture = django_capture_on_commit_callbacks

    got, actors = run_verb(
        lambda: adapters[adapter](workspace, verb), workspace, recording, capture
    )
    expected, _ = run_verb(lambda: by_dispatch(twin, verb), twin, recording, capture)

    assert got == expected
    assert got.errors == []
    assert len(got.events) == 1  # exactly one event for that workspace
    assert got.status != VERBS[verb]  # the verb really moved it
    assert actors == [ACTORS[adapter]]


@pytest.mark.parametrize("adapter", ACTORS)
@pytest.mark.parametrize("verb", VERBS)
def test_each_adapter_refuses_with_the_state_machines_message(
    org: Org,
    make_workspace: MakeWorkspace,
    adapters: dict[str, Adapter],
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
    verb: str,
    adapter: str,
) -> None:
    start = REFUSED_FROM[verb]
    workspace = make_workspace(org, start)
    message = str(TransitionRefused(workspace_name="PM", cause=verb, current=start))

    got, _ = run_verb(
        lambda: adapters[adapter](workspace, verb),
        workspace,
        recording,
        django_capture_on_commit_callbacks,
    )

    assert got == Outcome(status=start, events=[], backend_calls=[], errors=[message])


@pytest.mark.parametrize("verb", VERBS)
def test_the_three_adapters_agree_with_each_other(
    org: Org,
    make_workspace: MakeWorkspace,
    adapters: dict[str, Adapter],
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
    verb: str,
) -> None:
    # The same comparison as above, side by side, for both the done and the refused case.
    outcomes: dict[str, list[Outcome]] = {}
    for name, adapter in adapters.items():
        for start in (VERBS[verb], REFUSED_FROM[verb]):
            workspace = make_workspace(org, start, name="PM")
            outcome, _ = run_verb(
                lambda adapter=adapter, workspace=workspace: adapter(workspace, verb),
                workspace,
                recording,
                django_capture_on_commit_callbacks,
            )
            outcomes.setdefault(name, []).append(outcome)
    assert outcomes["page"] == outcomes["admin"] == outcomes["command"]
