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
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs import selectors as org_selectors
from orgs import views as org_views
from orgs.models import Org
from tests.support.fleet import bulk_fleet
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


# --- at scale -----------------------------------------------------------------------------------

# Session, user, the org, its counts, tree levels, the table page, the move form's names, the
# recent imports, can_act (and room): whatever the org's size.
MAX_ORG_QUERIES = {"page": 14, "tree": 10, "table": 5, "counts": 4, "badges": 4, "children": 7}


def org_requests(client: Client, org: Org) -> dict[str, str]:
    page = client.get(org_url(org)).content.decode()
    closed = re.search(r"partial=children&amp;parent=([\w-]+)", page)
    lead = closed[1] if closed else str(Workspace.objects.filter(org=org).first().pk)
    ids = ",".join(re.findall(r'id="table-state-([\w-]+)"', page))
    base = org_url(org)
    return {
        "page": base,
        "tree": f"{base}?partial=tree",
        "table": f"{base}?partial=table&status=online",
        "counts": f"{base}?partial=counts",
        "badges": f"{base}?partial=badges&scope=table&ids={ids}",
        "children": f"{base}?partial=children&parent={lead}",
    }


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=HTMX if "partial=" in url else {})
    assert response.status_code == 200, url
    return len(captured)


def test_every_part_of_the_org_page_asks_as_many_queries_for_300_workspaces_as_for_30(
    org: Org, other_org: Org, owner: User
) -> None:
    bulk_fleet(org, 30)
    bulk_fleet(other_org, 30)
    client = login(owner)
    small = {part: count_queries(client, url) for part, url in org_requests(client, org).items()}
    bulk_fleet(org, 270, prefix="more")
    bulk_fleet(other_org, 270, prefix="more")
    for part, url in org_requests(client, org).items():
        count = count_queries(client, url)
        assert count == small[part], (part, url)
        assert count <= MAX_ORG_QUERIES[part], (part, count)


def test_the_tree_opens_up_to_its_budget_and_a_closed_lead_loads_its_team(
    org: Org, owner: User
) -> None:
    rows = bulk_fleet(org, 300)
    client = login(owner)
    content = client.get(org_url(org)).content.decode()
    shown = re.findall(r'<li data-node="([^"]+)"', content)
    assert len(shown) <= org_selectors.TREE_BUDGET
    # Every lead is there (30 of them), the first teams open, the others closed with a count.
    assert {w.name for w in rows[::10]} <= set(shown)
    closed = re.findall(r"partial=children&amp;parent=([\w-]+)\"[^>]*>show 9 members", content)
    assert closed
    team = client.get(org_url(org, partial="children", parent=closed[0]), headers=HTMX)
    members = re.findall(r'<li data-node="([^"]+)"', team.content.decode())
    expected = Workspace.objects.filter(parent_id=closed[0]).order_by("created_at", "pk")
    assert members == [w.name for w in expected]
    assert "partial=badges&amp;scope=tree" in team.content.decode()


def test_a_closed_lead_is_collapsed_through_the_confirmation_page(org: Org, owner: User) -> None:
    bulk_fleet(org, 300)
    content = login(owner).get(org_url(org)).content.decode()
    closed = re.findall(r"partial=children&amp;parent=([\w-]+)", content)[0]
    lead = Workspace.objects.get(pk=closed)
    # No dialog with a count the page does not know: the no-JS confirmation counts it.
    assert f'hx-post="{team_url(lead, "collapse")}"' not in content
    assert f'action="{team_url(lead, "collapse")}"' in content


def test_the_children_of_another_orgs_workspace_are_404_and_a_bad_parent_400(
    org: Org, other_org: Org, owner: User
) -> None:
    bulk_fleet(org, 12)
    theirs = bulk_fleet(other_org, 12, prefix="theirs")
    client = login(owner)
    asked = org_url(org, partial="children", parent=str(theirs[0].pk))
    assert client.get(asked, headers=HTMX).status_code == 404
    for bad in ("", "x", "../", "%00"):
        response = client.get(org_url(org, partial="children", parent=bad), headers=HTMX)
        assert response.status_code == 400


def test_the_badge_poll_shows_only_this_orgs_workspaces_and_answers_304_until_a_change(
    org: Org, other_org: Org, owner: User, superuser: User
) -> None:
    ours = bulk_fleet(org, 5, prefix="ours")
    theirs = bulk_fleet(other_org, 5, prefix="theirs")
    ids = ",".join(str(w.pk) for w in ours + theirs)
    for who in (owner, superuser):
        client = login(who)
        url = org_url(org, partial="badges", scope="tree", ids=ids)
        first = client.get(url, headers=HTMX)
        content = first.content.decode()
        assert all(f"tree-state-{w.pk}" in content for w in ours)
        assert all(str(w.pk) not in content for w in theirs)
        again = client.get(url, headers={**HTMX, "If-None-Match": first["ETag"]})
        assert again.status_code == 304
    set_status(Status.PAUSED, ours[0])
    changed = login(owner).get(url, headers={**HTMX, "If-None-Match": first["ETag"]})
    assert changed.status_code == 200
    assert (
        login(owner)
        .get(org_url(org, partial="badges", scope="nope", ids=ids), headers=HTMX)
        .status_code
        == 204
    )


def test_the_org_table_pages_through_every_workspace_once(
    org: Org, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(org_views, "PAGE_SIZE", 7)
    bulk_fleet(org, 40)
    client, url, names = login(owner), org_url(org, partial="table"), []
    for _ in range(10):
        content = client.get(url, headers=HTMX).content.decode()
        names += re.findall(r'data-workspace="([^"]+)"', content)
        following = re.search(r'<a href="([^"]+)"[^>]*rel="next"', content)
        if not following:
            break
        url = org_url(org) + following[1].replace("&amp;", "&") + "&partial=table"
    assert names == sorted(Workspace.objects.filter(org=org).values_list("name", flat=True))
    bad = client.get(org_url(org, cursor="garbage", partial="table"), headers=HTMX)
    assert "not valid" in bad.content.decode()


def test_the_move_form_takes_ids_when_the_org_is_too_big_to_list(
    org: Org, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(org_views, "MOVE_CHOICES", 10)
    bulk_fleet(org, 30)
    content = login(owner).get(org_url(org)).content.decode()
    assert '<input type="text" name="workspace" required>' in content
    assert content.count("<option") < 30
