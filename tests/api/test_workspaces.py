"""``/api/v1/orgs/<slug>/workspaces``: list, create, get, patch, delete and the verbs.

Each endpoint is tested for what it asks dispatch to do (the recording backend's calls and the
events), for the refused cases (409 with the state machine's sentence) and for field errors.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orgs.models import Org
from tests.support.keys import Api
from tests.support.rows import MakeWorkspace
from workspaces.lifecycle import TransitionRefused
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db


def url(workspace: Workspace, tail: str = "") -> str:
    return f"orgs/{workspace.org.slug}/workspaces/{workspace.pk}{tail}"


def fresh(workspace: Workspace) -> Workspace:
    return Workspace.objects.get(pk=workspace.pk)


def latest_event(workspace: Workspace) -> StructureEvent:
    return StructureEvent.objects.filter(workspace=workspace).latest("id")


def event_count() -> int:
    return StructureEvent.objects.count()


# --- list ---------------------------------------------------------------------------------------


def test_listing_shows_the_orgs_live_workspaces_in_creation_order(
    org: Org, other_org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, name="A")
    make_workspace(org, Status.PAUSED, name="B")
    make_workspace(org, Status.REMOVED, name="Gone")
    make_workspace(other_org, name="Theirs")
    body = client_a.get("orgs/acme/workspaces").json()
    assert [w["name"] for w in body["workspaces"]] == ["A", "B"]
    assert body["count"] == 2
    everything = client_a.get("orgs/acme/workspaces", include_removed="true").json()
    assert [w["name"] for w in everything["workspaces"]] == ["A", "B", "Gone"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"status": "paused"}, ["B"]),
        ({"tier": "3"}, ["C"]),
        ({"name": "A"}, ["A"]),
        ({"parent": "none"}, ["A", "B"]),
        ({"backend": "docker"}, []),
    ],
)
def test_listing_filters(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    query: dict[str, str],
    names: list[str],
) -> None:
    a = make_workspace(org, name="A")
    make_workspace(org, Status.PAUSED, name="B")
    make_workspace(org, name="C", tier=3, parent=a)
    body = client_a.get("orgs/acme/workspaces", **query).json()
    assert [w["name"] for w in body["workspaces"]] == names


def test_listing_filters_by_parent_id(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    lead = make_workspace(org, name="Lead")
    make_workspace(org, name="Child", parent=lead)
    body = client_a.get("orgs/acme/workspaces", parent=str(lead.pk)).json()
    assert [w["name"] for w in body["workspaces"]] == ["Child"]


def test_listing_pages_with_limit_and_offset(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    for name in "ABCDE":
        make_workspace(org, name=name)
    pages = [
        client_a.get("orgs/acme/workspaces", limit=2, offset=offset).json() for offset in (0, 2, 4)
    ]
    assert [[w["name"] for w in p["workspaces"]] for p in pages] == [["A", "B"], ["C", "D"], ["E"]]
    assert {p["count"] for p in pages} == {5}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "sleeping"}, "status"),
        ({"tier": "9"}, "tier"),
        ({"parent": "nobody"}, "parent"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"include_removed": "maybe"}, "include_removed"),
    ],
)
def test_listing_with_a_bad_filter_is_400(
    org: Org, client_a: Api, query: dict[str, str], field: str
) -> None:
    response = client_a.get("orgs/acme/workspaces", **query)
    assert response.status_code == 400
    assert field in response.json()["fields"]


# --- create -------------------------------------------------------------------------------------


def test_creating_a_workspace_provisions_it_through_dispatch(
    org: Org, token: str, client_a: Api, recording: dict[str, Any], run_tasks: Any
) -> None:
    with run_tasks():
        response = client_a.post(
            "orgs/acme/workspaces", {"name": "Scout", "role": "Analyst", "tier": 3}
        )
    assert response.status_code == 201
    body = response.json()
    workspace = Workspace.objects.get(pk=body["id"])
    assert (body["name"], body["tier"], body["status"], body["org"]) == (
        "Scout",
        3,
        "provisioning",
        "acme",
    )
    assert recording["local"].calls == [("start", str(workspace.pk))]
    event = latest_event(workspace)
    assert (event.event_type, event.actor, event.payload["cause"]) == (
        EventType.WORKSPACE_PROVISIONING,
        f"token:{token[:8]}",
        "create",
    )


def test_creating_a_workspace_under_a_parent_with_a_team_spec(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    lead = make_workspace(org, name="Lead")
    response = client_a.post(
        "orgs/acme/workspaces",
        {"name": "Sub", "parent": str(lead.pk), "spec": {"children": [{"name": "Leaf"}]}},
    )
    assert response.status_code == 201
    sub = Workspace.objects.get(name="Sub")
    assert sub.parent_id == lead.pk
    assert sub.spec == {"children": [{"name": "Leaf"}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 7}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "X", "tier": 9}, "tier"),
        ({"name": "X", "tier": "2"}, "tier"),
        ({"name": "X", "tier": True}, "tier"),
        ({"name": "X", "parent": "not-an-id"}, "parent"),
        ({"name": "X", "parent": str(uuid.uuid4())}, "parent"),
        ({"name": "X", "workspace_dir": "relative/path"}, "workspace_dir"),
        ({"name": "X", "workspace_dir": "/etc"}, "workspace_dir"),
        ({"name": "X", "spec": {"children": [{"tier": 2}]}}, "spec.children[0].name"),
        ({"name": "X", "spec": {"other": 1}}, "spec"),
        ({"name": "X", "colour": "red"}, "colour"),
    ],
)
def test_creating_a_workspace_with_bad_fields_is_400_and_creates_nothing(
    org: Org, client_a: Api, body: dict[str, Any], field: str
) -> None:
    response = client_a.post("orgs/acme/workspaces", body)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid fields."
    assert field in response.json()["fields"]
    assert not Workspace.objects.exists()


def test_a_parent_from_another_org_is_a_field_error(
    org: Org, other_org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    theirs = make_workspace(other_org, name="Theirs")
    response = client_a.post("orgs/acme/workspaces", {"name": "X", "parent": str(theirs.pk)})
    assert response.status_code == 400
    assert response.json()["fields"]["parent"] == ["no live workspace of this org has that id"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "The body is not valid JSON"),
        (b"[1, 2]", "The body must be a JSON object."),
        (b'"Scout"', "The body must be a JSON object."),
        (b"\xff\xfe", "The body is not valid JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(
    org: Org, client_a: Api, raw: bytes, message: str
) -> None:
    response = client_a.post("orgs/acme/workspaces", raw=raw)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert not Workspace.objects.exists()


def test_a_body_over_the_size_bound_is_413(org: Org, client_a: Api) -> None:
    response = client_a.post("orgs/acme/workspaces", {"name": "X", "role": "r" * 70_000})
    assert response.status_code == 413
    assert not Workspace.objects.exists()


# --- get ----------------------------------------------------------------------------------------


def test_getting_a_workspace_shows_its_fields(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    body = client_a.get(url(workspace)).json()
    assert (body["id"], body["name"], body["status"], body["instance_id"]) == (
        str(workspace.pk),
        "PM",
        "online",
        workspace.instance_id,
    )


def test_getting_an_unknown_workspace_is_404(org: Org, client_a: Api) -> None:
    assert client_a.get(f"orgs/acme/workspaces/{uuid.uuid4()}").status_code == 404


# --- patch --------------------------------------------------------------------------------------


def test_patching_name_role_and_tier_writes_one_updated_event(
    org: Org, token: str, client_a: Api, make_workspace: MakeWorkspace, recording: dict[str, Any]
) -> None:
    workspace = make_workspace(org, tier=2)
    calls = list(recording["local"].calls)
    response = client_a.patch(url(workspace), {"name": "Planner", "role": "Lead", "tier": 3})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["role"], body["tier"]) == ("Planner", "Lead", 3)
    assert body["changed"] == ["name", "role", "tier"]
    # The agent keeps running on its old tier until its next start.
    assert body["restart_required"] is True
    assert recording["local"].calls == calls
    event = latest_event(workspace)
    assert event.event_type == EventType.WORKSPACE_UPDATED
    assert event.actor == f"token:{token[:8]}"
    assert event.payload["changed"] == {
        "name": ["PM", "Planner"],
        "role": ["", "Lead"],
        "tier": [2, 3],
    }


def test_a_tier_change_applies_at_the_next_restart(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    run_tasks: Any,
) -> None:
    workspace = make_workspace(org, tier=2)
    client_a.patch(url(workspace), {"tier": 1})
    with run_tasks():
        assert client_a.post(url(workspace, "/restart")).status_code == 202
    assert recording["local"].specs[-1].tier.tier == 1


def test_a_patch_that_changes_nothing_writes_nothing(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    before = event_count()
    response = client_a.patch(url(workspace), {"name": "PM"})
    assert response.json()["changed"] == []
    assert event_count() == before


def test_patching_the_parent_moves_the_workspace_through_dispatch(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    lead = make_workspace(org, name="Lead")
    workspace = make_workspace(org, name="Worker")
    response = client_a.patch(url(workspace), {"parent": str(lead.pk)})
    assert response.status_code == 200
    assert response.json()["parent"] == str(lead.pk)
    event = latest_event(workspace)
    assert event.event_type == EventType.WORKSPACE_MOVED
    assert event.payload == {"from_parent": None, "to_parent": str(lead.pk)}
    assert client_a.patch(url(workspace), {"parent": None}).json()["parent"] is None


def test_patching_a_parent_into_a_cycle_is_400_and_changes_nothing(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    lead = make_workspace(org, name="Lead")
    child = make_workspace(org, name="Child", parent=lead)
    response = client_a.patch(url(lead), {"parent": str(child.pk), "name": "Renamed"})
    assert response.status_code == 400
    assert "cycle" in response.json()["error"]
    # All or nothing: the rename in the same request did not happen either.
    assert (fresh(lead).parent_id, fresh(lead).name) == (None, "Lead")


def test_patching_a_removed_workspace_is_409(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.REMOVED)
    response = client_a.patch(url(workspace), {"name": "Zombie"})
    assert response.status_code == 409
    assert "removed" in response.json()["error"]
    assert fresh(workspace).name == "PM"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier": 0}, "tier"),
        ({"name": ""}, "name"),
        ({"role": ["x"]}, "role"),
        ({"runtime": "two words"}, "runtime"),
        ({"workspace_dir": "//etc/../etc"}, "workspace_dir"),
        ({"spec": {"children": [{"name": "A", "tier": 9}]}}, "spec.children[0].tier"),
        ({"status": "online"}, "status"),
        ({"parent": "nope"}, "parent"),
    ],
)
def test_patching_bad_fields_is_400_with_field_errors(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, body: dict[str, Any], field: str
) -> None:
    workspace = make_workspace(org)
    before = event_count()
    response = client_a.patch(url(workspace), body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert event_count() == before


def test_an_empty_patch_is_400(org: Org, client_a: Api, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org)
    response = client_a.patch(url(workspace), {})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Nothing to change")


# --- delete -------------------------------------------------------------------------------------


def test_deleting_a_workspace_removes_it_and_its_children_through_dispatch(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    run_tasks: Any,
) -> None:
    lead = make_workspace(org, name="Lead")
    child = make_workspace(org, name="Child", parent=lead)
    with run_tasks():
        response = client_a.delete(url(lead))
    assert response.status_code == 202
    assert set(response.json()["moved"]) == {str(lead.pk), str(child.pk)}
    assert {fresh(lead).status, fresh(child).status} == {Status.REMOVED}
    assert ("stop", lead.instance_id) in recording["local"].calls
    assert ("remove_storage", lead.instance_id) in recording["local"].calls


def test_deleting_a_removed_workspace_is_409_with_the_reason(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.REMOVED)
    response = client_a.delete(url(workspace))
    assert response.status_code == 409
    assert response.json()["error"] == str(
        TransitionRefused(workspace_name="PM", cause="delete", current="removed")
    )


# --- verbs --------------------------------------------------------------------------------------

VERB_CASES = [
    ("provision", Status.OFFLINE, Status.PROVISIONING),
    ("stop", Status.ONLINE, Status.OFFLINE),
    ("restart", Status.ONLINE, Status.PROVISIONING),
    ("pause", Status.ONLINE, Status.PAUSED),
    ("resume", Status.PAUSED, Status.PROVISIONING),
]


@pytest.mark.parametrize(("verb", "start", "end"), VERB_CASES)
def test_a_verb_moves_the_workspace_and_records_the_token_as_actor(
    org: Org,
    token: str,
    client_a: Api,
    make_workspace: MakeWorkspace,
    verb: str,
    start: str,
    end: str,
) -> None:
    workspace = make_workspace(org, start)
    response = client_a.post(url(workspace, f"/{verb}"))
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["verb"]) == (end, verb)
    assert fresh(workspace).status == end
    event = latest_event(workspace)
    assert (event.actor, event.payload["cause"]) == (f"token:{token[:8]}", verb)


def test_a_restart_through_the_api_stops_and_starts_on_the_backend(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    run_tasks: Any,
) -> None:
    workspace = make_workspace(org)
    with run_tasks():
        client_a.post(url(workspace, "/restart"))
    assert recording["local"].calls[-2:] == [
        ("stop", workspace.instance_id),
        ("start", str(workspace.pk)),
    ]


@pytest.mark.parametrize(
    ("verb", "start"),
    [
        ("resume", Status.ONLINE),
        ("provision", Status.ONLINE),
        ("stop", Status.PAUSED),
        ("restart", Status.PAUSED),
        ("pause", Status.REMOVED),
    ],
)
def test_a_refused_verb_is_409_with_the_state_machines_reason(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, verb: str, start: str
) -> None:
    workspace = make_workspace(org, start)
    before = event_count()
    response = client_a.post(url(workspace, f"/{verb}"))
    assert response.status_code == 409
    assert response.json() == {
        "error": str(TransitionRefused(workspace_name="PM", cause=verb, current=start))
    }
    assert fresh(workspace).status == start
    assert event_count() == before


def test_pause_cascades_and_lists_every_workspace_it_moved(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    lead = make_workspace(org, name="Lead")
    child = make_workspace(org, name="Child", parent=lead)
    response = client_a.post(url(lead, "/pause"))
    assert set(response.json()["moved"]) == {str(lead.pk), str(child.pk)}
    assert fresh(child).status == Status.PAUSED


def test_expand_and_collapse_a_team_through_the_api(
    org: Org,
    client_a: Api,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    run_tasks: Any,
) -> None:
    lead = make_workspace(
        org, name="Lead", spec={"children": [{"name": "Front", "tier": 1}, {"name": "Back"}]}
    )
    with run_tasks():
        expanded = client_a.post(url(lead, "/expand"))
    assert expanded.status_code == 202
    children = Workspace.objects.filter(parent=lead)
    assert sorted(c.name for c in children) == ["Back", "Front"]
    assert set(expanded.json()["moved"]) == {str(c.pk) for c in children}
    assert latest_event(lead).event_type == EventType.WORKSPACE_EXPANDED
    again = client_a.post(url(lead, "/expand"))
    assert again.status_code == 409
    assert "collapse the team first" in again.json()["error"]
    with run_tasks():
        collapsed = client_a.post(url(lead, "/collapse"))
    assert collapsed.status_code == 202
    assert {c.status for c in Workspace.objects.filter(parent=lead)} == {Status.REMOVED}
    assert latest_event(lead).event_type == EventType.WORKSPACE_COLLAPSED
    assert client_a.post(url(lead, "/collapse")).status_code == 409


def test_expanding_a_workspace_without_a_team_spec_is_400(
    org: Org, client_a: Api, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org)
    response = client_a.post(url(workspace, "/expand"))
    assert response.status_code == 400
    assert "no children in its team spec" in response.json()["error"]


@pytest.mark.parametrize("verb", ["explode", "delete"])
def test_an_unknown_verb_is_404(
    org: Org, client_a: Api, make_workspace: MakeWorkspace, verb: str
) -> None:
    workspace = make_workspace(org)
    before = event_count()
    response = client_a.post(url(workspace, f"/{verb}"))
    assert response.status_code == 404
    assert fresh(workspace).status == Status.ONLINE
    assert event_count() == before


def test_verbs_only_answer_post(org: Org, client_a: Api, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org)
    response = client_a.get(url(workspace, "/stop"))
    assert response.status_code == 405
    assert fresh(workspace).status == Status.ONLINE
