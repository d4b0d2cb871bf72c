"""Team verbs (collapse, expand) and moves posted from the org page: each goes through
dispatch, answers htmx with the new tree, and is refused to the viewer and the outsider.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.org_pages import HTMX, live_children, login, messages_of, org_url, team_url
from workspaces.models import EventType, Status, StructureEvent, Workspace

# Every test here uses the recording backends (tests/support/fakes.py); none starts a real agent.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]


# --- team verbs from the page -------------------------------------------------------------------


def test_collapse_asks_for_confirmation_on_get_and_changes_nothing(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    before = StructureEvent.objects.count()
    response = login(owner).get(team_url(tree["PM"], "collapse"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Collapse PM's team?" in content
    assert "Backend, Frontend" in content or "Frontend, Backend" in content
    assert '<form method="post">' in content
    assert live_children(tree["PM"]) == ["Backend", "Frontend"]
    assert StructureEvent.objects.count() == before


def test_collapse_posted_from_the_page_removes_the_team_through_dispatch(
    org: Org,
    owner: User,
    tree: dict[str, Workspace],
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = login(owner).post(team_url(tree["PM"], "collapse"))
    assert response.status_code == 302
    assert response.url == org_url(org)
    assert live_children(tree["PM"]) == []
    removed = {tree[n].pk for n in ("Frontend", "Backend", "DBA")}
    assert (
        set(Workspace.objects.filter(status=Status.REMOVED).values_list("pk", flat=True)) == removed
    )
    event = StructureEvent.objects.get(event_type=EventType.WORKSPACE_COLLAPSED)
    assert (event.workspace_id, event.actor) == (tree["PM"].pk, "user:olivia")
    stopped = {ws for verb, ws in recording["local"].calls if verb == "stop"}
    assert stopped == {tree[n].instance_id for n in ("Frontend", "Backend", "DBA")}
    [message] = messages_of(response, "success")
    assert message.startswith("PM collapsed; removed: ")
    assert sorted(message.removeprefix("PM collapsed; removed: ").rstrip(".").split(", ")) == [
        "Backend",
        "DBA",
        "Frontend",
    ]


def test_expand_posted_from_the_page_recreates_the_team_from_the_spec(
    org: Org,
    owner: User,
    tree: dict[str, Workspace],
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = login(owner)
    client.post(team_url(tree["PM"], "collapse"))
    recording["local"].calls.clear()
    content = client.get(org_url(org)).content.decode()
    assert f'action="{team_url(tree["PM"], "expand")}"' in content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(team_url(tree["PM"], "expand"))

    assert response.status_code == 302
    assert live_children(tree["PM"]) == ["Backend", "Frontend"]
    started = {ws for verb, ws in recording["local"].calls if verb == "start"}
    assert started == {str(w.pk) for w in tree["PM"].children.exclude(status=Status.REMOVED)}
    assert StructureEvent.objects.filter(
        event_type=EventType.WORKSPACE_EXPANDED, actor="user:olivia"
    ).exists()


def test_a_team_verb_with_htmx_answers_the_new_tree_and_tells_the_page(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    response = login(owner).post(team_url(tree["Backend"], "collapse"), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "workspace-changed"
    assert 'id="tree"' in content
    assert "<html" not in content
    assert 'data-node="DBA"' not in content
    assert "Backend collapsed; removed: DBA." in content


def test_a_refused_team_verb_redirects_with_the_dispatch_message(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    before = StructureEvent.objects.count()
    response = login(owner).post(team_url(tree["PM"], "expand"))
    assert response.status_code == 302
    assert messages_of(response, "error") == [
        "Cannot expand workspace 'PM': it already leads 2 live workspace(s); "
        "collapse the team first."
    ]
    assert StructureEvent.objects.count() == before


def test_a_refused_team_verb_answers_htmx_with_409_and_the_message_in_the_tree(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    response = login(owner).post(team_url(tree["Scout"], "collapse"), headers=HTMX)
    assert response.status_code == 409
    assert 'id="tree"' in response.content.decode()
    assert html.escape("Cannot collapse workspace 'Scout': it leads no live workspace.") in (
        response.content.decode()
    )


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_viewer_cannot_run_a_team_verb(
    org: Org, viewer: User, tree: dict[str, Workspace], method: str
) -> None:
    before = StructureEvent.objects.count()
    response = getattr(login(viewer), method)(team_url(tree["PM"], "collapse"))
    assert response.status_code == 403
    assert live_children(tree["PM"]) == ["Backend", "Frontend"]
    assert StructureEvent.objects.count() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_outsider_gets_404_for_a_team_verb(
    org: Org, outsider: User, tree: dict[str, Workspace], method: str
) -> None:
    response = getattr(login(outsider), method)(team_url(tree["PM"], "collapse"))
    assert response.status_code == 404
    assert live_children(tree["PM"]) == ["Backend", "Frontend"]


def test_a_team_verb_on_a_workspace_of_another_org_under_this_slug_is_404(
    org: Org, superuser: User, tree: dict[str, Workspace], theirs: Workspace
) -> None:
    url = reverse("team-verb", args=[org.slug, theirs.pk, "collapse"])
    assert login(superuser).post(url).status_code == 404


def test_an_unknown_team_verb_is_404(org: Org, owner: User, tree: dict[str, Workspace]) -> None:
    assert login(owner).post(team_url(tree["PM"], "explode")).status_code == 404


# --- move ---------------------------------------------------------------------------------------


def move(client: Client, org: Org, workspace: Workspace, parent: Workspace | None, **kw: Any):
    data = {"workspace": str(workspace.pk), "parent": str(parent.pk) if parent else ""}
    return client.post(reverse("org-move", args=[org.slug]), data, **kw)


def test_move_from_the_page_reparents_and_writes_the_event(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    response = move(login(owner), org, tree["Scout"], tree["Backend"])
    assert response.status_code == 302
    assert Workspace.objects.get(pk=tree["Scout"].pk).parent_id == tree["Backend"].pk
    event = StructureEvent.objects.get(event_type=EventType.WORKSPACE_MOVED)
    assert event.payload == {"from_parent": None, "to_parent": str(tree["Backend"].pk)}
    assert messages_of(response, "success") == ["Moved Scout under Backend."]


def test_move_to_the_top_level(org: Org, owner: User, tree: dict[str, Workspace]) -> None:
    move(login(owner), org, tree["DBA"], None)
    assert Workspace.objects.get(pk=tree["DBA"].pk).parent_id is None


def test_move_into_its_own_team_is_refused_with_the_dispatch_message(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    response = move(login(owner), org, tree["PM"], tree["DBA"])
    assert messages_of(response, "error") == [
        "Cannot move 'PM' under 'DBA': that would make a cycle."
    ]
    assert Workspace.objects.get(pk=tree["PM"].pk).parent_id is None


def test_move_refused_with_htmx_answers_400_and_the_message(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    response = move(login(owner), org, tree["PM"], tree["PM"], headers=HTMX)
    assert response.status_code == 400
    assert "that would make a cycle" in response.content.decode()


def test_move_under_another_org_is_refused_by_dispatch_for_a_superuser(
    org: Org, superuser: User, tree: dict[str, Workspace], theirs: Workspace
) -> None:
    response = move(login(superuser), org, tree["Scout"], theirs)
    assert messages_of(response, "error") == [
        "Cannot move 'Scout' under 'Theirs': a team lives in one org."
    ]
    assert Workspace.objects.get(pk=tree["Scout"].pk).parent_id is None


def test_move_under_a_workspace_the_member_cannot_see_is_404(
    org: Org, owner: User, tree: dict[str, Workspace], theirs: Workspace
) -> None:
    # Not dispatch's cross-org sentence: that would confirm the id exists.
    response = move(login(owner), org, tree["Scout"], theirs)
    assert response.status_code == 404
    assert Workspace.objects.get(pk=tree["Scout"].pk).parent_id is None


def test_a_viewer_cannot_move(org: Org, viewer: User, tree: dict[str, Workspace]) -> None:
    assert move(login(viewer), org, tree["Scout"], tree["PM"]).status_code == 403
    assert Workspace.objects.get(pk=tree["Scout"].pk).parent_id is None


def test_an_outsider_cannot_move(org: Org, outsider: User, tree: dict[str, Workspace]) -> None:
    assert move(login(outsider), org, tree["Scout"], tree["PM"]).status_code == 404
    assert Workspace.objects.get(pk=tree["Scout"].pk).parent_id is None


def test_move_does_not_answer_get(org: Org, owner: User) -> None:
    assert login(owner).get(reverse("org-move", args=[org.slug])).status_code == 405
