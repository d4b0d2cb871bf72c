"""``/api/v1/events``: the event log with filters, newest first, paginated with a cursor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from orgs.models import Org
from tests.support.keys import Api
from tests.support.rows import MakeWorkspace
from workspaces.models import EventType, StructureEvent

pytestmark = pytest.mark.django_db


def ids(page: dict[str, Any]) -> list[int]:
    return [e["id"] for e in page["events"]]


def test_an_org_token_reads_only_its_own_orgs_events(
    org: Org, other_org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="Ours")
    make_workspace(other_org, name="Theirs")
    events = client_a.get("events").json()["events"]
    assert events
    assert {e["org"] for e in events} == {"acme"}
    assert client_a.get("events", org="globex").status_code == 404


def test_the_admin_token_reads_every_orgs_events_and_filters_by_org(
    org: Org, other_org: Org, admin: Api, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="Ours")
    make_workspace(other_org, name="Theirs")
    assert {e["org"] for e in admin.get("events").json()["events"]} == {"acme", "globex"}
    assert {e["org"] for e in admin.get("events", org="globex").json()["events"]} == {"globex"}


def test_events_filter_by_workspace_type_and_actor(
    org: Org, token: str, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    a = make_workspace(org, name="A")
    b = make_workspace(org, name="B")
    client_a.post(f"orgs/acme/workspaces/{a.pk}/stop")
    by_workspace = client_a.get("events", workspace=str(b.pk)).json()["events"]
    assert {e["workspace"] for e in by_workspace} == {str(b.pk)}
    by_type = client_a.get("events", type=EventType.WORKSPACE_OFFLINE).json()["events"]
    assert [(e["workspace"], e["type"]) for e in by_type] == [
        (str(a.pk), EventType.WORKSPACE_OFFLINE)
    ]
    by_actor = client_a.get("events", actor=f"token:{token[:8]}").json()["events"]
    assert [e["type"] for e in by_actor] == [EventType.WORKSPACE_OFFLINE]


def test_events_filter_by_time(org: Org, client_a: Api, make_workspace: MakeWorkspace) -> None:
    make_workspace(org)
    now = timezone.now()
    before = (now - timedelta(hours=1)).isoformat()
    after = (now + timedelta(hours=1)).isoformat()
    assert client_a.get("events", since=before).json()["events"]
    assert client_a.get("events", since=after).json()["events"] == []
    assert client_a.get("events", until=before).json()["events"] == []
    assert client_a.get("events", until=after).json()["events"]


def test_events_page_with_a_cursor_through_every_event_once(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    for name in "ABCDEFG":
        make_workspace(org, name=name)
    expected = list(
        StructureEvent.objects.filter(org=org).order_by("-id").values_list("id", flat=True)
    )
    assert len(expected) > 6
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client_a.get("events", **params).json()
        seen += [e["id"] for e in body["events"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == -(-len(expected) // 3)


def test_a_new_event_does_not_shift_the_next_page(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    for name in "ABC":
        make_workspace(org, name=name)
    first = client_a.get("events", limit=2).json()
    make_workspace(org, name="Late")
    second = client_a.get("events", limit=2, cursor=first["next_cursor"]).json()
    first_ids, second_ids = ids(first), ids(second)
    assert second_ids
    assert max(second_ids) < min(first_ids)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"type": "NOT_A_TYPE"}, "type"),
        ({"workspace": "nope"}, "workspace"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2030-13-45"}, "until"),
        ({"until": "2030-13-45T10:00:00"}, "until"),
        ({"limit": "1000"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
    ],
)
def test_a_bad_event_filter_is_400_with_the_field(
    org: Org, client_a: Api, query: dict[str, str], field: str
) -> None:
    response = client_a.get("events", **query)
    assert response.status_code == 400
    assert field in response.json()["fields"]
