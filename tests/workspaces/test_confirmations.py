"""Confirmations say the same thing at every door, and never offer what the state refuses.

The JavaScript dialog (``hx-confirm``), the page a browser without JavaScript gets, and the
admin's confirmation all show ``workspaces.verb_text.consequence`` for the verb and workspace.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.rows import MakeWorkspace
from workspaces import dispatch
from workspaces.models import Status, Workspace
from workspaces.verb_text import consequence

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _recording(recording: dict[str, Any]) -> None:
    """No real agents: these are about what the pages say."""


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _dialogs(content: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r'hx-confirm="([^"]*)"', content)]


@pytest.fixture
def team(org: Org, make_workspace: MakeWorkspace) -> Workspace:
    lead = make_workspace(org, Status.ONLINE, name="PM")
    dispatch.create_workspace(org=org, parent=lead, name="Frontend", actor="test")
    dispatch.create_workspace(org=org, parent=lead, name="Backend", actor="test")
    return lead


@pytest.mark.parametrize("verb", sorted(dispatch.DESTRUCTIVE_VERBS))
def test_the_dialog_and_the_no_js_page_say_the_same(
    team: Workspace, owner: User, verb: str
) -> None:
    client = _client(owner)
    said = consequence(verb, name="PM", live_descendants=2)
    page = client.get(reverse("workspace", args=[team.pk])).content.decode()
    assert f"{verb.capitalize()} PM? {said}" in _dialogs(page)
    confirm = client.get(reverse("workspace-verb", args=[team.pk, verb])).content.decode()
    assert html.escape(said, quote=True) in confirm or said in html.unescape(confirm)


def test_delete_says_that_storage_and_the_team_go(team: Workspace, owner: User) -> None:
    said = consequence("delete", name="PM", live_descendants=2)
    assert "storage removed" in said
    assert "The 2 workspaces below it go too" in said
    page = _client(owner).get(reverse("workspace", args=[team.pk])).content.decode()
    assert any("storage removed" in d and "below it go too" in d for d in _dialogs(page))


@pytest.mark.parametrize(
    ("verb", "state"),
    [("resume", Status.ONLINE), ("stop", Status.PAUSED), ("restart", Status.REMOVED)],
)
def test_a_confirmation_page_never_offers_a_verb_the_state_refuses(
    org: Org, owner: User, make_workspace: MakeWorkspace, verb: str, state: str
) -> None:
    workspace = make_workspace(org, state)
    response = _client(owner).get(reverse("workspace-verb", args=[workspace.pk, verb]))
    content = html.unescape(response.content.decode())
    assert f"Cannot {verb} workspace 'PM': it is {state}." in content
    assert '<form method="post">' not in content
    assert Workspace.objects.get(pk=workspace.pk).status == state


def test_the_collapse_dialog_and_page_say_the_same(team: Workspace, owner: User, org: Org) -> None:
    client = _client(owner)
    said = consequence("collapse", name="PM", live_descendants=2)
    tree = client.get(reverse("org", args=[org.slug])).content.decode()
    assert f"Collapse PM's team? {said}" in _dialogs(tree)
    page = client.get(reverse("team-verb", args=[org.slug, team.pk, "collapse"])).content
    assert said in html.unescape(page.decode())
    assert "secrets are kept" in said


def test_the_admin_confirmation_says_the_same(team: Workspace, superuser: User) -> None:
    changelist = reverse("admin:workspaces_workspace_changelist")
    response = _client(superuser).post(
        changelist, {"action": "delete_action", "_selected_action": [str(team.pk)], "index": "0"}
    )
    said = consequence("delete", name="PM", live_descendants=2)
    assert said in html.unescape(response.content.decode())
