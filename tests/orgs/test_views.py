"""The org pages as adapters: orgs list, org page with its tree and team verbs, org import and its
progress page, the event log; each for the owner, the viewer, the outsider and the anonymous.

Every test runs on the recording backends (tests/support/fakes.py): the pages are tested for
what they ask dispatch and the importer to do, and for what they show to whom.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from orgs.importer import import_org
from orgs.models import Org, OrgMembership, Team
from tests.support.users import make_member
from workspaces import vault
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
TREE = """\
workspaces:
  - name: PM
    role: Lead
    children:
      - {name: Frontend, tier: 1}
      - name: Backend
        tier: 3
        children: [{name: DBA}]
  - {name: Scout, tier: 4, role: Analyst}
"""
GOOD = """\
name: Beta Labs
slug: beta
required_env: [OPENAI_API_KEY]
workspaces:
  - name: PM
    children:
      - {name: Frontend, tier: 1}
"""
BAD = """\
name: Beta Labs
slug: beta
workspaces:
  - name: PM
    tier: 9
    children:
      - {name: A}
      - {name: A}
"""


@pytest.fixture(autouse=True)
def _no_real_agents(recording: dict[str, Any]) -> None:
    """Every test here uses the recording backends; none starts a real agent."""


@pytest.fixture
def tree(org: Org, django_capture_on_commit_callbacks: Any) -> dict[str, Workspace]:
    """PM leads Frontend and Backend; Backend leads DBA; Scout stands alone. All provisioning."""
    with django_capture_on_commit_callbacks(execute=True):
        import_org(TREE, actor="test", into=org)
    return {w.name: w for w in Workspace.objects.filter(org=org)}


@pytest.fixture
def theirs(other_org: Org, django_capture_on_commit_callbacks: Any) -> Workspace:
    with django_capture_on_commit_callbacks(execute=True):
        import_org("workspaces: [{name: Theirs}]\n", actor="test", into=other_org)
    return Workspace.objects.get(org=other_org)


def login(user: User, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def org_url(org: Org, **query: str) -> str:
    url = reverse("org", args=[org.slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def team_url(workspace: Workspace, verb: str) -> str:
    return reverse("team-verb", args=[workspace.org.slug, workspace.pk, verb])


def messages_of(response: Any, level: str) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == level]


def live_children(workspace: Workspace) -> list[str]:
    return sorted(workspace.children.exclude(status=Status.REMOVED).values_list("name", flat=True))


def set_status(status: str, *workspaces: Workspace) -> None:
    # How the agents would get there (registering, failing) is tests/workspaces' business.
    Workspace.objects.filter(pk__in=[w.pk for w in workspaces]).update(status=status)


# --- anonymous visitors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "org-list", []),
        ("get", "org", ["acme"]),
        ("get", "org-import", []),
        ("post", "org-import", []),
        ("post", "org-move", ["acme"]),
        ("get", "org-import-progress", ["acme", 1]),
        ("get", "event-log", []),
    ],
)
def test_anonymous_visitors_are_sent_to_the_login_page(
    client: Client, org: Org, method: str, name: str, args: list[Any]
) -> None:
    response = getattr(client, method)(reverse(name, args=args), {"text": GOOD})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not Org.objects.filter(slug="beta").exists()


def test_an_anonymous_team_verb_changes_nothing(client: Client, tree: dict[str, Workspace]) -> None:
    response = client.post(team_url(tree["PM"], "collapse"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert live_children(tree["PM"]) == ["Backend", "Frontend"]


# --- the orgs list ------------------------------------------------------------------------------


def test_the_orgs_list_shows_a_member_only_their_orgs_with_their_role(
    org: Org, other_org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    content = login(owner).get(reverse("org-list")).content.decode()
    assert 'data-org="acme"' in content
    assert 'data-org="globex"' not in content
    row = re.search(r'<tr data-org="acme">(.*?)</tr>', content, re.S)[1]
    assert "<td>owner</td>" in row
    assert "<td>5</td>" in row  # live workspaces
    assert reverse("org", args=["acme"]) in row


def test_the_orgs_list_shows_a_superuser_every_org(
    org: Org, other_org: Org, superuser: User
) -> None:
    content = login(superuser).get(reverse("org-list")).content.decode()
    assert 'data-org="acme"' in content
    assert 'data-org="globex"' in content
    assert reverse("org-import") in content


def test_the_orgs_list_offers_import_to_an_owner_but_not_to_a_viewer(
    org: Org, owner: User, viewer: User
) -> None:
    assert reverse("org-import") in login(owner).get(reverse("org-list")).content.decode()
    assert reverse("org-import") not in login(viewer).get(reverse("org-list")).content.decode()


# --- the org page -------------------------------------------------------------------------------


def test_the_org_page_shows_the_nested_team_tree_and_the_table(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    response = login(owner).get(org_url(org))
    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" in content
    # DBA sits inside Backend's list, which sits inside PM's.
    pm = content.index('data-node="PM"')
    backend = content.index('data-node="Backend"')
    dba = content.index('data-node="DBA"')
    scout = content.index('data-node="Scout"')
    assert pm < backend < dba < scout
    assert content[backend:dba].count("<ul>") == 1
    assert content[dba:scout].count("</ul>") == 2
    for name in tree:
        assert f'data-workspace="{name}"' in content
    assert 'data-count="provisioning"><strong>5</strong> provisioning' in content


@pytest.mark.parametrize(
    ("partial", "present", "absent"),
    [("tree", 'id="tree"', 'id="table"'), ("table", 'id="table"', 'id="tree"')],
)
def test_the_org_page_answers_htmx_with_the_partial_asked_for(
    org: Org,
    owner: User,
    tree: dict[str, Workspace],
    partial: str,
    present: str,
    absent: str,
) -> None:
    response = login(owner).get(org_url(org, partial=partial), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert present in content
    assert absent not in content
    assert "<html" not in content


def test_the_tree_partial_shows_the_current_state_badges(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    set_status(Status.ONLINE, tree["DBA"])
    set_status(Status.FAILED, tree["Scout"])
    content = login(owner).get(org_url(org, partial="tree"), headers=HTMX).content.decode()
    dba = re.search(r'data-node="DBA">.*?data-status="(\w+)"', content, re.S)[1]
    scout = re.search(r'data-node="Scout">.*?data-status="(\w+)"', content, re.S)[1]
    assert (dba, scout) == ("online", "failed")


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"status": "online"}, {"DBA"}),
        ({"tier": "3"}, {"Backend"}),
        ({"tier": "1"}, {"Frontend"}),
        ({"backend": "docker"}, set()),
        ({"backend": "local"}, {"PM", "Frontend", "Backend", "DBA", "Scout"}),
        ({"q": "analyst"}, {"Scout"}),
        ({"q": "end"}, {"Frontend", "Backend"}),
        ({"tier": "nine"}, {"PM", "Frontend", "Backend", "DBA", "Scout"}),
    ],
)
def test_the_org_table_filters_by_state_tier_backend_and_name(
    org: Org, owner: User, tree: dict[str, Workspace], query: dict[str, str], shown: set[str]
) -> None:
    set_status(Status.ONLINE, tree["DBA"])
    response = login(owner).get(org_url(org, partial="table", **query), headers=HTMX)
    listed = set(re.findall(r'data-workspace="([^"]+)"', response.content.decode()))
    assert listed == shown


def test_the_table_polls_with_its_filters(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    content = login(owner).get(org_url(org, tier="3")).content.decode()
    assert f'hx-get="{org_url(org)}?tier=3&amp;partial=table"' in content


def test_the_org_page_offers_team_verbs_and_the_move_form_to_an_owner(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    content = login(owner).get(org_url(org)).content.decode()
    assert f'action="{team_url(tree["PM"], "collapse")}"' in content
    assert f'action="{team_url(tree["Backend"], "collapse")}"' in content
    assert reverse("org-move", args=[org.slug]) in content
    # Leaves have nothing to expand or collapse.
    assert team_url(tree["Scout"], "expand") not in content
    assert team_url(tree["Scout"], "collapse") not in content


def test_a_viewer_sees_the_org_page_without_any_verb(
    org: Org, viewer: User, tree: dict[str, Workspace]
) -> None:
    response = login(viewer).get(org_url(org))
    content = response.content.decode()
    assert response.status_code == 200
    assert 'data-node="DBA"' in content
    assert "You can view this org but not act on it." in content
    assert "/collapse/" not in content
    assert "/expand/" not in content
    assert reverse("org-move", args=[org.slug]) not in content


@pytest.mark.parametrize("slug", ["acme", "no-such-org"])
def test_an_outsider_gets_the_same_404_for_another_org_and_for_none(
    org: Org, outsider: User, tree: dict[str, Workspace], slug: str
) -> None:
    client = login(outsider)
    assert client.get(reverse("org", args=[slug])).status_code == 404
    assert (
        client.get(reverse("org", args=[slug]) + "?partial=tree", headers=HTMX).status_code == 404
    )


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


# --- the import page ----------------------------------------------------------------------------


def post_import(client: Client, **data: Any) -> Any:
    return client.post(reverse("org-import"), data)


def test_the_import_page_offers_a_superuser_a_new_org(superuser: User, org: Org) -> None:
    content = login(superuser).get(reverse("org-import")).content.decode()
    assert 'enctype="multipart/form-data"' in content
    assert "(a new org, from the file&#x27;s name and slug)" in content
    assert '<option value="acme"' in content


def test_the_import_page_offers_an_owner_only_their_own_orgs(
    org: Org, other_org: Org, owner: User
) -> None:
    content = login(owner).get(reverse("org-import")).content.decode()
    assert '<option value="acme"' in content
    assert '<option value="globex"' not in content
    assert "a new org" not in content


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_viewer_only_member_cannot_import(org: Org, viewer: User, method: str) -> None:
    response = getattr(login(viewer), method)(reverse("org-import"), {"text": TREE, "into": "acme"})
    assert response.status_code == 403
    assert not Workspace.objects.exists()


def test_a_bad_file_shows_every_problem_with_its_line_and_creates_nothing(
    superuser: User,
) -> None:
    before = StructureEvent.objects.count()
    response = post_import(login(superuser), text=BAD)
    content = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was imported: 2 problems in the file" in content
    assert '<a href="#L5">line 5</a>: <code>workspaces[0].tier</code>: unknown tier 9' in content
    assert "<code>workspaces[0].children[1].name</code>: duplicate name &#x27;A&#x27;" in content
    # The file is listed with the bad lines marked.
    assert re.search(r'<li id="L5" class="bad"><code>\s*tier: 9</code></li>', content)
    assert re.search(r'<li id="L4"><code>\s*- name: PM</code></li>', content)
    assert not Org.objects.filter(slug="beta").exists()
    assert not Workspace.objects.exists()
    assert StructureEvent.objects.count() == before


def test_an_uploaded_bad_file_comes_back_in_the_text_box_to_fix(superuser: User) -> None:
    upload = SimpleUploadedFile("beta.yaml", BAD.encode(), content_type="application/yaml")
    response = login(superuser).post(reverse("org-import"), {"file": upload})
    content = response.content.decode()
    assert response.status_code == 400
    assert "line 5" in content
    assert (
        html.escape("      - {name: A}") in content.split('name="text"')[1].split("</textarea>")[0]
    )


def test_an_uploaded_file_is_imported_and_redirects_to_its_progress(
    superuser: User, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    upload = SimpleUploadedFile("beta.yaml", GOOD.encode(), content_type="application/yaml")
    with django_capture_on_commit_callbacks(execute=True):
        response = login(superuser).post(
            reverse("org-import"), {"file": upload, "env": "OPENAI_API_KEY=sk-upload\n"}
        )
    event = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED)
    assert response.status_code == 302
    assert response.url == reverse("org-import-progress", args=["beta", event.pk])
    assert event.payload["source"] == "beta.yaml"
    assert event.actor == "user:root"
    names = set(Workspace.objects.filter(org__slug="beta").values_list("name", flat=True))
    assert names == {"PM", "Frontend"}
    assert len([c for c in recording["local"].calls if c[0] == "start"]) == 2


def test_a_pasted_file_is_imported_with_the_env_values_as_secrets(
    superuser: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(login(superuser), text=GOOD, env="OPENAI_API_KEY=sk-pasted")
    assert response.status_code == 302
    for workspace in Workspace.objects.filter(org__slug="beta"):
        assert vault.reveal(workspace_id=workspace.pk, key="OPENAI_API_KEY") == "sk-pasted"


def test_a_missing_env_value_is_a_problem_on_its_line_and_no_value_is_echoed(
    superuser: User,
) -> None:
    response = post_import(login(superuser), text=GOOD, env="OTHER=sk-do-not-echo")
    content = response.content.decode()
    assert response.status_code == 400
    assert '<a href="#L3">line 3</a>: <code>required_env[0]</code>: OPENAI_API_KEY is required' in (
        content
    )
    assert "sk-do-not-echo" not in content
    assert not Org.objects.filter(slug="beta").exists()


def test_a_malformed_env_line_is_refused_without_echoing_it(superuser: User) -> None:
    response = post_import(login(superuser), text=GOOD, env="sk-just-a-value")
    content = response.content.decode()
    assert response.status_code == 400
    assert "Line 1 is not NAME=value." in content
    assert "sk-just-a-value" not in content


def test_an_owner_imports_into_their_org(
    org: Org, owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(login(owner), text=TREE, into="acme")
    event = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED)
    assert response.url == reverse("org-import-progress", args=["acme", event.pk])
    assert Workspace.objects.filter(org=org).count() == 5
    assert Team.objects.filter(org=org).count() == 2


def test_an_owner_cannot_create_a_new_org_by_import(org: Org, owner: User) -> None:
    response = post_import(login(owner), text=GOOD, env="OPENAI_API_KEY=x")
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Org.objects.filter(slug="beta").exists()


def test_an_owner_cannot_import_into_another_org(org: Org, other_org: Org, owner: User) -> None:
    response = post_import(login(owner), text=TREE, into="globex")
    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()
    assert not Workspace.objects.exists()


def test_a_viewer_of_one_org_cannot_import_into_it_through_another_role(
    org: Org, other_org: Org, viewer: User
) -> None:
    # Owner of globex, viewer of acme: acting on globex gives no right to act on acme.
    OrgMembership.objects.create(org=other_org, user=viewer, role=OrgMembership.Role.OWNER)
    response = post_import(login(viewer), text=TREE, into="acme")
    assert response.status_code == 400
    assert not Workspace.objects.filter(org=org).exists()


def test_both_a_file_and_a_paste_are_refused(superuser: User) -> None:
    upload = SimpleUploadedFile("beta.yaml", GOOD.encode())
    response = login(superuser).post(reverse("org-import"), {"file": upload, "text": GOOD})
    assert "Upload a file or paste one, not both." in response.content.decode()
    assert not Org.objects.filter(slug="beta").exists()


def test_neither_a_file_nor_a_paste_is_refused(superuser: User) -> None:
    response = post_import(login(superuser), text="  ")
    assert "Upload a YAML file or paste one." in response.content.decode()


# --- the progress page --------------------------------------------------------------------------


@pytest.fixture
def imported(org: Org, django_capture_on_commit_callbacks: Any) -> StructureEvent:
    with django_capture_on_commit_callbacks(execute=True):
        return import_org(TREE, actor="test", into=org).event


def progress_url(org: Org, event: StructureEvent) -> str:
    return reverse("org-import-progress", args=[org.slug, event.pk])


def counts_in(content: str) -> dict[str, int]:
    found = re.findall(r'data-progress="(\w+)"><strong>(\d+)</strong>', content)
    return {name: int(n) for name, n in found}


def test_the_progress_page_counts_and_keeps_polling_while_provisioning(
    org: Org, owner: User, imported: StructureEvent
) -> None:
    content = login(owner).get(progress_url(org, imported)).content.decode()
    assert "<html" in content
    assert counts_in(content) == {"created": 5, "provisioning": 5, "online": 0, "failed": 0}
    assert f'hx-get="{progress_url(org, imported)}"' in content
    assert 'data-settled="false"' in content
    assert 'data-node="DBA"' in content


def test_the_progress_partial_follows_the_workspaces_until_they_settle(
    org: Org, owner: User, imported: StructureEvent
) -> None:
    client = login(owner)
    rows = {w.name: w for w in Workspace.objects.filter(org=org)}
    set_status(Status.ONLINE, rows["PM"], rows["Frontend"])
    set_status(Status.FAILED, rows["Scout"])
    response = client.get(progress_url(org, imported), headers=HTMX)
    content = response.content.decode()
    assert "<html" not in content
    assert 'id="progress"' in content
    assert counts_in(content) == {"created": 5, "provisioning": 2, "online": 2, "failed": 1}

    set_status(Status.ONLINE, rows["Backend"], rows["DBA"])
    content = client.get(progress_url(org, imported), headers=HTMX).content.decode()
    assert counts_in(content) == {"created": 5, "provisioning": 0, "online": 4, "failed": 1}
    assert 'data-settled="true"' in content
    # Settled: the partial no longer asks to be polled.
    assert "hx-get" not in content
    assert "Settled: 4 of 5 online, 1 failed" in content


def test_the_progress_page_counts_other_states_apart(
    org: Org, owner: User, imported: StructureEvent
) -> None:
    set_status(Status.PAUSED, *Workspace.objects.filter(org=org, name__in=["PM", "Scout"]))
    content = login(owner).get(progress_url(org, imported), headers=HTMX).content.decode()
    assert counts_in(content)["other"] == 2


def test_a_viewer_may_watch_the_progress(org: Org, viewer: User, imported: StructureEvent) -> None:
    assert login(viewer).get(progress_url(org, imported)).status_code == 200


def test_an_outsider_gets_404_for_the_progress(
    org: Org, outsider: User, imported: StructureEvent
) -> None:
    assert login(outsider).get(progress_url(org, imported)).status_code == 404


def test_progress_for_an_event_that_is_not_this_orgs_import_is_404(
    org: Org, other_org: Org, superuser: User, imported: StructureEvent, theirs: Workspace
) -> None:
    client = login(superuser)
    other_import = StructureEvent.objects.get(event_type=EventType.ORG_IMPORTED, org=other_org)
    assert client.get(progress_url(org, other_import)).status_code == 404
    not_an_import = StructureEvent.objects.filter(org=org).exclude(pk=imported.pk).first()
    assert client.get(progress_url(org, not_an_import)).status_code == 404


# --- the event log ------------------------------------------------------------------------------


def event_ids(content: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-event="(\d+)"', content)]


def log(client: Client, **query: Any) -> str:
    response = client.get(reverse("event-log"), query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def orphan_event(db: None) -> StructureEvent:
    return StructureEvent.objects.create(
        event_type=EventType.ORPHAN_REMOVED,
        actor="system:sweep",
        payload={"backend": "local", "instance_id": "local:stray"},
    )


def test_a_member_reads_only_their_orgs_events(
    org: Org,
    owner: User,
    tree: dict[str, Workspace],
    theirs: Workspace,
    orphan_event: StructureEvent,
) -> None:
    shown = set(event_ids(log(login(owner))))
    ours = set(StructureEvent.objects.filter(org=org).values_list("pk", flat=True))
    assert shown == ours


def test_a_viewer_reads_their_orgs_events_too(
    org: Org, viewer: User, tree: dict[str, Workspace], theirs: Workspace
) -> None:
    shown = set(event_ids(log(login(viewer))))
    assert shown == set(StructureEvent.objects.filter(org=org).values_list("pk", flat=True))


def test_a_superuser_reads_every_event_including_those_of_no_org(
    org: Org,
    superuser: User,
    tree: dict[str, Workspace],
    theirs: Workspace,
    orphan_event: StructureEvent,
) -> None:
    shown = set(event_ids(log(login(superuser))))
    assert shown == set(StructureEvent.objects.values_list("pk", flat=True))
    assert orphan_event.pk in shown


def test_a_member_asking_for_another_orgs_events_sees_none(
    org: Org, outsider: User, tree: dict[str, Workspace], theirs: Workspace
) -> None:
    content = log(login(outsider), org="acme")
    assert event_ids(content) == []
    assert "Select a valid choice." in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"type": "ORG_IMPORTED"},
            lambda: StructureEvent.objects.filter(event_type="ORG_IMPORTED"),
        ),
        ({"actor": "OLIVIA"}, lambda: StructureEvent.objects.filter(actor="user:olivia")),
        ({"org": "globex"}, lambda: StructureEvent.objects.filter(org__slug="globex")),
        (
            {"workspace": "DBA"},
            lambda: StructureEvent.objects.filter(workspace__name="DBA"),
        ),
    ],
)
def test_the_event_log_filters(
    org: Org,
    superuser: User,
    owner: User,
    tree: dict[str, Workspace],
    theirs: Workspace,
    query: dict[str, str],
    expected: Any,
) -> None:
    login(owner).post(team_url(tree["Backend"], "collapse"))  # an event by user:olivia
    if query.get("workspace"):
        query = {"workspace": str(tree[query["workspace"]].pk)}
    shown = event_ids(log(login(superuser), **query))
    assert shown
    assert sorted(shown) == sorted(expected().values_list("pk", flat=True))


def test_the_event_log_filters_by_time_range(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    def event_at(moment: datetime) -> StructureEvent:
        # created_at is auto_now_add and events cannot be updated: write it at that moment.
        with mock.patch("django.utils.timezone.now", return_value=moment):
            return StructureEvent.objects.create(
                event_type=EventType.ORG_CREATED, org=org, actor="test:clock"
            )

    winter = event_at(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
    summer = event_at(datetime(2024, 6, 15, 10, 0, tzinfo=UTC))
    client = login(superuser)
    assert event_ids(log(client, since="2024-01-01T00:00", until="2024-03-01T00:00")) == [winter.pk]
    assert event_ids(log(client, since="2024-06-15T10:00", until="2024-07-01")) == [summer.pk]
    # "until" is exclusive, "since" inclusive, both to the minute the form takes.
    assert event_ids(log(client, since="2024-01-01T00:00", until="2024-06-15T10:00")) == [winter.pk]
    recent = event_ids(log(client, since="2024-07-01T00:00"))
    assert winter.pk not in recent and summer.pk not in recent
    assert set(recent) == set(
        StructureEvent.objects.exclude(pk__in=[winter.pk, summer.pk]).values_list("pk", flat=True)
    )


def test_a_filter_that_does_not_parse_shows_its_error_and_no_events(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    content = log(login(superuser), workspace="not-a-uuid")
    assert event_ids(content) == []
    assert "Workspace id: Enter a valid UUID." in content


def test_the_event_log_is_paginated_newest_first(org: Org, superuser: User) -> None:
    for n in range(120):
        StructureEvent.objects.create(
            event_type=EventType.ORG_CREATED, org=org, actor=f"test:{n}", payload={"n": n}
        )
    client = login(superuser)
    first = log(client)
    newest = list(
        StructureEvent.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    assert event_ids(first) == newest[:50]
    assert "page 1 of 3" in first
    assert 'href="?page=2"' in first
    third = log(client, page=3)
    assert event_ids(third) == newest[100:]
    assert 'href="?page=2"' in third
    # Out of range: the last page, not an error.
    assert event_ids(log(client, page=99)) == newest[100:]


def test_pagination_keeps_the_filters(org: Org, superuser: User) -> None:
    for _ in range(60):
        StructureEvent.objects.create(event_type=EventType.ORG_CREATED, org=org, actor="test:x")
    content = log(login(superuser), actor="test:x")
    assert 'href="?actor=test%3Ax&amp;page=2"' in content


def test_the_event_log_answers_htmx_with_only_the_table(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    response = login(superuser).get(reverse("event-log"), {"type": "ORG_IMPORTED"}, headers=HTMX)
    content = response.content.decode()
    assert 'id="log"' in content
    assert "<html" not in content
    assert len(event_ids(content)) == 1


def test_the_event_log_shows_the_payload_readably(
    org: Org, superuser: User, tree: dict[str, Workspace]
) -> None:
    login(superuser).post(team_url(tree["Backend"], "collapse"))
    content = log(login(superuser), type="WORKSPACE_COLLAPSED")
    dba = tree["DBA"].pk
    assert f"<dt>children</dt><dd>[&quot;{dba}&quot;]</dd>" in content
    assert "<dt>names</dt><dd>[&quot;DBA&quot;]</dd>" in content


def test_the_nav_links_the_orgs_and_the_event_log(owner: User) -> None:
    content = login(owner).get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("org-list")}"' in content
    assert f'href="{reverse("event-log")}"' in content


def test_the_dashboard_links_each_org_to_its_page(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    content = login(owner).get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("org", args=["acme"])}"' in content


# --- admin changelists --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "codename", "marker"),
    [
        ("org", "view_org", "globex"),
        ("orgmembership", "view_orgmembership", "globex"),
        ("team", "view_team", "Theirs team"),
        ("workspace", "view_workspace", "Theirs"),
        ("structureevent", "view_structureevent", "globex"),
    ],
)
def test_admin_changelists_show_a_staff_member_only_their_orgs(
    org: Org,
    other_org: Org,
    tree: dict[str, Workspace],
    theirs: Workspace,
    model: str,
    codename: str,
    marker: str,
) -> None:
    Team.objects.create(org=other_org, lead=theirs, name="Theirs team")
    make_member(other_org, "gus", OrgMembership.Role.OWNER)
    staff = make_member(org, "stella", OrgMembership.Role.ADMIN)
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename=codename))
    app = "orgs" if model in ("org", "orgmembership", "team") else "workspaces"
    response = login(staff).get(reverse(f"admin:{app}_{model}_changelist"))
    content = response.content.decode()
    assert response.status_code == 200
    # Neither in the rows nor in the sidebar's org filter.
    assert marker not in content
    assert "globex" not in content
    own = {
        "org": "acme",
        "orgmembership": "stella",
        "team": "PM team",
        "workspace": "DBA",
        "structureevent": "acme",
    }
    assert own[model] in content
