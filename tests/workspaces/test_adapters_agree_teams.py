"""The team verbs (expand, collapse, move) at every door end where dispatch ends.

Like tests/workspaces/test_adapters_agree.py for the lifecycle verbs: the org page, the admin
action, the command and the JSON API each run a team verb, and what it leaves (the tree, the
events, the backend calls, the refusal shown) is compared with dispatch called directly.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from orgs import api_tokens
from orgs.models import Org
from workspaces import dispatch
from workspaces.models import Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

SPEC = {"children": [{"name": "Frontend"}, {"name": "Backend"}]}
# A door runs (verb, lead, target parent or None) and returns the errors it showed.
Door = Callable[[str, Workspace, Workspace | None], list[str]]


@pytest.fixture(autouse=True)
def _recording(recording: dict[str, Any]) -> None:
    """No real agents: these compare what the doors leave behind."""


def _page_errors(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]


@pytest.fixture
def doors(owner: User, superuser: User, org: Org) -> dict[str, Door]:
    page, admin = Client(), Client()
    page.force_login(owner)
    admin.force_login(superuser)
    token = api_tokens.mint(org=org, name="teams", created_by="test").plaintext
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def by_page(verb: str, lead: Workspace, parent: Workspace | None) -> list[str]:
        if verb == "move":
            data = {"workspace": str(lead.pk), "parent": str(parent.pk) if parent else ""}
            response = page.post(reverse("org-move", args=[org.slug]), data)
        else:
            response = page.post(reverse("team-verb", args=[org.slug, lead.pk, verb]))
        assert response.status_code == 302
        return _page_errors(response)

    def by_admin(verb: str, lead: Workspace, parent: Workspace | None) -> list[str]:
        changelist = reverse("admin:workspaces_workspace_changelist")
        data = {"action": f"{verb}_action", "_selected_action": [str(lead.pk)], "index": "0"}
        response = admin.post(changelist, data)
        if verb in ("collapse", "move"):
            assert response.status_code == 200  # a confirmation, or the parent to choose
            extra = {"parent": str(parent.pk) if parent else ""} if verb == "move" else {}
            response = admin.post(changelist, {**data, "confirmed": "yes", **extra})
        assert response.status_code == 302
        return _page_errors(response)

    def by_command(verb: str, lead: Workspace, parent: Workspace | None) -> list[str]:
        args = [verb, str(lead.pk)]
        if verb == "move":
            args += ["--parent", str(parent.pk)] if parent else ["--top"]
        try:
            call_command("workspace", *args, stdout=io.StringIO())
        except CommandError as error:
            return [str(error)]
        return []

    def by_api(verb: str, lead: Workspace, parent: Workspace | None) -> list[str]:
        client = Client()
        if verb == "move":
            url = reverse("api-workspace", args=[org.slug, lead.pk])
            body = {"parent": str(parent.pk) if parent else None}
            response = client.patch(url, body, content_type="application/json", **bearer)
        else:
            url = reverse("api-workspace-verb", args=[org.slug, lead.pk, verb])
            response = client.post(url, **bearer)
        return [] if response.status_code < 300 else [response.json()["error"]]

    return {"page": by_page, "admin": by_admin, "command": by_command, "api": by_api}


def by_dispatch(verb: str, lead: Workspace, parent: Workspace | None) -> list[str]:
    try:
        if verb == "move":
            dispatch.move_workspace(
                workspace_id=lead.pk, parent_id=parent.pk if parent else None, actor="test"
            )
        else:
            dispatch.TEAM_VERBS[verb](workspace_id=lead.pk, actor="test")
    except (dispatch.Refused, dispatch.InvalidRequest) as refused:
        return [str(refused)]
    return []


def _world(org: Org, tag: str, *, expanded: bool) -> tuple[Workspace, Workspace]:
    lead = dispatch.create_workspace(org=org, name=f"PM {tag}", spec=SPEC, actor="test")
    other = dispatch.create_workspace(org=org, name=f"Other {tag}", actor="test")
    if expanded:
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    return lead, other


def _outcome(
    run: Callable[[], list[str]], lead: Workspace, recording: dict[str, Any], capture: Any
) -> tuple[Any, ...]:
    seen = StructureEvent.objects.count()
    calls = len(recording["local"].calls)
    with capture(execute=True):
        errors = run()
    lead.refresh_from_db()
    tree = sorted(
        (ws.name, ws.status)
        for ws in Workspace.objects.filter(parent=lead).exclude(status=Status.REMOVED)
    )
    events = [e.event_type for e in StructureEvent.objects.order_by("id")[seen:]]
    names = [name for name, _ in recording["local"].calls[calls:]]
    parent = lead.parent.name.split()[0] if lead.parent else None
    # Names carry a per-world tag: compare the message with it taken out.
    return tree, events, names, parent, [e.replace(lead.name, "PM") for e in errors]


CASES = [
    ("expand", False, False, False),  # done
    ("expand", True, False, False),  # refused: it already leads a team
    ("collapse", True, False, False),  # done
    ("collapse", False, False, False),  # refused: it leads no one
    ("move", False, True, False),  # done: under the other workspace
    ("move", True, False, True),  # refused: under its own member (a cycle)
]


@pytest.mark.parametrize("door", ["page", "admin", "command", "api"])
@pytest.mark.parametrize(("verb", "expanded", "under_other", "under_member"), CASES)
def test_each_door_ends_where_dispatch_ends(
    org: Org,
    doors: dict[str, Door],
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
    door: str,
    verb: str,
    expanded: bool,
    under_other: bool,
    under_member: bool,
) -> None:
    capture = django_capture_on_commit_callbacks
    outcomes = []
    for tag, run in (("door", doors[door]), ("ref", by_dispatch)):
        lead, other = _world(org, tag, expanded=expanded)
        member = Workspace.objects.filter(parent=lead).order_by("name").first()
        parent = other if under_other else member if under_member else None
        outcomes.append(
            _outcome(
                lambda run=run, lead=lead, p=parent: run(verb, lead, p), lead, recording, capture
            )
        )
    got, expected = outcomes
    assert got == expected
    refused = expanded if verb == "expand" else not expanded if verb == "collapse" else under_member
    assert bool(got[-1]) == refused  # the refusal, or none, really happened
