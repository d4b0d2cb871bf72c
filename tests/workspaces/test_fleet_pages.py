"""The fleet dashboard at scale: keyset pages, server-side filters, and polls that cost nothing
when nothing changed (docs/architecture.md §11).

The fleets are bulk-created (tests/support/fleet.py); what is asserted is what does not depend
on the fleet's size: the number of queries of every page and partial, every row on exactly one
page in every order, and another org's rows on none.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgs.models import Org
from tests.support.fleet import bulk_fleet
from workspaces import fleet, keyset, selectors
from workspaces.models import Status, Workspace

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
# The most queries a dashboard request may take, whatever the fleet: session, user, counts, the
# largest orgs (read, then written to the cache), the org count, the page, the create form's
# orgs (and a little room).
MAX_QUERIES = {"page": 16, "table": 4, "counts": 12, "badges": 4}


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def queries(client: Client, url: str, **kwargs: Any) -> tuple[int, Any]:
    # Every request misses the largest orgs' cache: the most a request asks.
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **kwargs)
    assert response.status_code in (200, 304), response.status_code
    return len(captured), response


def dashboard_requests(client: Client) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each part of the dashboard: its URL and headers, the badges for the first page's rows."""
    url = reverse("dashboard")
    page = client.get(url).content.decode()
    ids = re.search(r"partial=badges&amp;ids=([\w,-]+)", page)
    assert ids, "the dashboard polls the badges of its rows"
    return {
        "page": (url, {}),
        "table": (url + "?sort=-heartbeat&status=online", {"headers": HTMX}),
        "counts": (url + "?partial=counts", {"headers": HTMX}),
        "badges": (f"{url}?partial=badges&ids={ids[1]}", {"headers": HTMX}),
    }


def test_every_part_of_the_dashboard_asks_as_many_queries_for_300_workspaces_as_for_30(
    org: Org, other_org: Org, owner: User, superuser: User
) -> None:
    bulk_fleet(org, 30)
    bulk_fleet(other_org, 30)
    small = {}
    for who in (owner, superuser):
        client = login(who)
        for part, (url, kwargs) in dashboard_requests(client).items():
            small[who.username, part] = queries(client, url, **kwargs)[0]
    bulk_fleet(org, 270, prefix="more")
    bulk_fleet(other_org, 270, prefix="more")
    for who in (owner, superuser):
        client = login(who)
        for part, (url, kwargs) in dashboard_requests(client).items():
            count, response = queries(client, url, **kwargs)
            assert count == small[who.username, part], (who.username, part, url)
            assert count <= MAX_QUERIES[part], (who.username, part, count)
            if part in ("page", "table"):
                # One page, whatever the fleet.
                assert response.content.decode().count("data-workspace=") == fleet.PAGE_SIZE


def walk(user: User, query: fleet.FleetQuery, size: int) -> list[Any]:
    seen, cursor = [], None
    while True:
        query.cursor = cursor
        page = selectors.fleet_page(user, query, size=size)
        seen += [w.pk for w in page.rows]
        assert len(page.rows) <= size
        if not page.next_cursor:
            return seen
        cursor = page.next_cursor


def expected_order(rows: list[Workspace], order: keyset.Order) -> list[Any]:
    from workspaces.models import NEVER

    def key(w: Workspace) -> Any:
        value = getattr(w, order.column) if order.column != "heartbeat" else w.last_heartbeat_at
        return (value or NEVER, str(w.pk))

    # UUIDs compare in PostgreSQL as their bytes, which is their text's order.
    return [w.pk for w in sorted(rows, key=key, reverse=order.descending)]


@pytest.mark.parametrize("sort", list(fleet.SORTS))
def test_paging_walks_every_row_exactly_once_in_each_order(
    org: Org, superuser: User, sort: str
) -> None:
    rows = bulk_fleet(org, 83)
    walked = walk(superuser, fleet.FleetQuery(sort=sort), size=7)
    assert len(walked) == len(set(walked)) == 83
    fresh = list(Workspace.objects.filter(pk__in=[w.pk for w in rows]))
    assert walked == expected_order(fresh, fleet.SORTS[sort])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sort=st.sampled_from(list(fleet.SORTS)),
    status=st.sampled_from([None, *Status.values]),
    backend=st.sampled_from([None, "local", "docker", "controlplane"]),
    tier=st.sampled_from([None, 1, 2, 3, 4]),
    search=st.sampled_from([None, "ws-00", "WS-01", "ws-0", "nope", "%", "_"]),
    size=st.integers(min_value=1, max_value=9),
)
def test_any_filter_and_sort_pages_through_exactly_the_matching_rows(
    fleet_of_40: tuple[Org, User],
    sort: str,
    status: str | None,
    backend: str | None,
    tier: int | None,
    search: str | None,
    size: int,
) -> None:
    org, owner = fleet_of_40
    query = fleet.FleetQuery(state=status, backend=backend, tier=tier, search=search, sort=sort)
    walked = walk(owner, query, size)
    matching = Workspace.objects.filter(org=org)
    matching = matching.filter(status=status) if status else matching.exclude(status="removed")
    if backend:
        matching = matching.filter(backend=backend)
    if tier:
        matching = matching.filter(tier=tier)
    rows = [w for w in matching if not search or w.name.lower().startswith(search.lower())]
    assert walked == expected_order(rows, fleet.SORTS[sort])


@pytest.fixture
def fleet_of_40(org: Org, other_org: Org, owner: User) -> tuple[Org, User]:
    bulk_fleet(org, 40)
    bulk_fleet(other_org, 40)
    Workspace.objects.filter(org=org, name__endswith="5").update(status=Status.REMOVED)
    return org, owner


def test_the_table_pages_through_next_links_to_the_end(
    org: Org, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet, "PAGE_SIZE", 9)
    bulk_fleet(org, 40)
    client, url, names = login(owner), reverse("dashboard") + "?sort=-created", []
    for _ in range(10):
        content = client.get(url).content.decode()
        names += re.findall(r'data-workspace="([^"]+)"', content)
        following = re.search(r'<a href="([^"]+)"[^>]*rel="next"', content)
        if not following:
            break
        url = reverse("dashboard") + following[1].replace("&amp;", "&")
    assert sorted(names) == sorted(Workspace.objects.values_list("name", flat=True))
    assert len(names) == 40


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "garbage"},
        {"cursor": "W10:bad-signature"},
        {"cursor": "\x00"},
        {"sort": "password"},
        {"sort": "-"},
        {"status": "exploded"},
        {"backend": "mainframe"},
        {"tier": "9"},
        {"tier": "x"},
        {"org": "../../etc"},
        {"org": "\x00"},
        {"q": "x" * 5000},
        {"q": "\x00"},
        {"partial": "badges", "ids": "not-a-uuid,,%00"},
        {"partial": "counts", "cursor": "garbage"},
    ],
)
def test_bad_query_values_are_ignored_with_a_note_never_a_500(
    org: Org, owner: User, query: dict[str, str]
) -> None:
    bulk_fleet(org, 12)
    for headers in ({}, HTMX):
        response = login(owner).get(reverse("dashboard"), query, headers=headers)
        # A NUL anywhere in the query string is refused before the view, with a 400.
        assert response.status_code in (200, 204) or any("\x00" in v for v in query.values())
        if "partial" not in query and response.status_code == 200:
            content = response.content.decode()
            assert "msg-warning" in content
            assert content.count("data-workspace=") == 12


def test_a_cursor_of_one_sort_is_not_a_position_in_another(org: Org, owner: User) -> None:
    bulk_fleet(org, 60)
    cursor = selectors.fleet_page(owner, fleet.FleetQuery(sort="name"), size=50).next_cursor
    response = login(owner).get(reverse("dashboard"), {"sort": "-created", "cursor": cursor})
    assert "not valid" in response.content.decode()
    with pytest.raises(keyset.BadCursor):
        selectors.fleet_page(owner, fleet.FleetQuery(sort="-created", cursor=cursor), size=50)


def test_a_member_never_sees_another_orgs_rows_even_with_a_cursor_made_on_its_page(
    org: Org, other_org: Org, owner: User, superuser: User
) -> None:
    ours = bulk_fleet(org, 20, prefix="ours")
    theirs = bulk_fleet(other_org, 60, prefix="theirs")
    # A cursor made by someone who sees the other org, positioned among its rows.
    query = fleet.FleetQuery(org="globex", sort="name")
    cursor = selectors.fleet_page(superuser, query, size=5).next_cursor
    client = login(owner)
    for params in (
        {"cursor": cursor},
        {"cursor": cursor, "org": "globex"},
        {"org": "globex"},
        {"q": "theirs"},
    ):
        content = client.get(reverse("dashboard"), params).content.decode()
        assert "theirs-" not in content
        # The slug asked for is echoed back; nothing of the org's is shown.
        assert "/orgs/globex/" not in content
    ids = ",".join(str(w.pk) for w in theirs[:10] + ours[:2])
    badges = client.get(reverse("dashboard"), {"partial": "badges", "ids": ids}, headers=HTMX)
    content = badges.content.decode()
    assert all(str(w.pk) not in content for w in theirs)
    assert all(str(w.pk) in content for w in ours[:2])
    counts = client.get(reverse("dashboard"), {"partial": "counts"}, headers=HTMX)
    assert "globex" not in counts.content.decode()
    assert "<strong>20</strong> workspaces" in counts.content.decode()


def conditional(client: Client, url: str, tag: str | None = None) -> Any:
    headers = {**HTMX, **({"If-None-Match": tag} if tag else {})}
    return client.get(url, headers=headers)


def test_the_polls_answer_304_until_a_state_changes_and_ignore_heartbeats(
    org: Org, owner: User
) -> None:
    rows = bulk_fleet(org, 20)
    client = login(owner)
    ids = ",".join(str(w.pk) for w in rows[:5])
    urls = [
        reverse("dashboard") + "?partial=counts",
        reverse("dashboard") + f"?partial=badges&ids={ids}",
    ]
    for url in urls:
        first = conditional(client, url)
        assert first.status_code == 200
        tag = first["ETag"]
        assert first["Cache-Control"] == "private, no-cache"
        # A heartbeat that changes nothing (its time only) leaves every poll unchanged.
        Workspace.objects.filter(pk=rows[0].pk).update(last_heartbeat_at=timezone.now())
        unchanged = conditional(client, url, tag)
        assert unchanged.status_code == 304
        assert unchanged.content == b""
        # GZipMiddleware makes the tag weak; the browser sends it back as it got it.
        assert conditional(client, url, f"W/{tag}").status_code == 304
    Workspace.objects.filter(pk=rows[1].pk).update(
        status=Status.OFFLINE, status_changed_at=timezone.now()
    )
    for url in urls:
        changed = conditional(client, url, conditional(client, url)["ETag"] + "x")
        assert changed.status_code == 200
    badges = conditional(client, urls[1]).content.decode()
    assert f'id="state-{rows[1].pk}" hx-swap-oob="true"' in badges
    restarted = conditional(client, urls[1])
    Workspace.objects.filter(pk=rows[2].pk).update(restart_count=9)
    assert conditional(client, urls[1], restarted["ETag"]).status_code == 200


def test_a_badge_poll_without_ids_is_empty(owner: User) -> None:
    response = login(owner).get(reverse("dashboard"), {"partial": "badges"}, headers=HTMX)
    assert response.status_code == 204


def test_the_name_search_matches_names_that_start_with_it(org: Org, owner: User) -> None:
    bulk_fleet(org, 30)
    Workspace.objects.filter(name="ws-003-00003").update(name="Research lead")
    content = login(owner).get(reverse("dashboard"), {"q": "research"}).content.decode()
    assert re.findall(r'data-workspace="([^"]+)"', content) == ["Research lead"]
    content = login(owner).get(reverse("dashboard"), {"q": "lead"}).content.decode()
    assert "data-workspace=" not in content


def test_the_orgs_table_lists_only_the_largest_orgs(superuser: User) -> None:
    for n in range(14):
        org = Org.objects.create(slug=f"org-{n:02d}", name=f"Org {n}")
        bulk_fleet(org, n + 1, teams=False)
    content = login(superuser).get(reverse("dashboard")).content.decode()
    listed = re.findall(r'<tr data-org="([^"]+)"', content)
    assert listed == [f"org-{n:02d}" for n in range(13, 3, -1)]
    assert "The 10 largest of 14 orgs" in content


def test_the_sort_links_toggle_the_direction_of_the_current_sort(org: Org, owner: User) -> None:
    bulk_fleet(org, 3)
    content = login(owner).get(reverse("dashboard"), {"sort": "heartbeat"}).content.decode()
    assert 'data-sort="-heartbeat"' in content
    assert 'data-sort="name"' in content
    content = login(owner).get(reverse("dashboard"), {"sort": "-heartbeat"}).content.decode()
    assert 'data-sort="heartbeat"' in content


def test_past_a_screenful_of_orgs_the_forms_take_a_slug(
    superuser: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet, "ORG_SELECT_MAX", 3)
    for n in range(5):
        Org.objects.create(slug=f"org-{n}", name=f"Org {n}")
    client = login(superuser)
    for url in (reverse("dashboard"), reverse("event-log")):
        content = client.get(url).content.decode()
        assert '<input type="text" name="org"' in content
        assert 'value="org-4"' not in content


def test_the_largest_orgs_are_read_at_most_once_in_their_time_to_live(
    org: Org, other_org: Org, superuser: User
) -> None:
    bulk_fleet(org, 5, teams=False)
    client = login(superuser)
    first = client.get(reverse("dashboard"), {"partial": "counts"}, headers=HTMX)
    assert '<tr data-org="acme">' in first.content.decode()
    bulk_fleet(other_org, 9, teams=False)
    # Within the time to live the table is the one read before; the counts are not cached.
    again = client.get(reverse("dashboard"), {"partial": "counts"}, headers=HTMX).content.decode()
    assert '<tr data-org="globex">' not in again
    assert "<strong>14</strong> workspaces" in again
    cache.clear()
    later = client.get(reverse("dashboard"), {"partial": "counts"}, headers=HTMX).content.decode()
    assert re.findall(r'<tr data-org="([^"]+)"', later) == ["globex", "acme"]
