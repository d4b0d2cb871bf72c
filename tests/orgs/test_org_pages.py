"""The org pages as adapters: who may reach them at all, the orgs list, and the org page with
its team tree and table; each for the owner, the viewer, the outsider and the anonymous.

The pages are tested for what they ask dispatch to do and what they show to whom. Team verbs
and moves posted from the org page are in test_team_verbs.py, org import in
test_import_pages.py, the event log in test_event_log_page.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from orgs.models import Org
from tests.support.org_pages import GOOD, HTMX, live_children, login, org_url, set_status, team_url
from workspaces.models import Status, Workspace

# Every test here uses the recording backends (tests/support/fakes.py); none starts a real agent.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("recording")]


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


# --- links to the org pages ---------------------------------------------------------------------


def test_the_nav_links_the_orgs_and_the_event_log(owner: User) -> None:
    content = login(owner).get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("org-list")}"' in content
    assert f'href="{reverse("event-log")}"' in content


def test_the_dashboard_links_each_org_to_its_page(
    org: Org, owner: User, tree: dict[str, Workspace]
) -> None:
    content = login(owner).get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("org", args=["acme"])}"' in content
