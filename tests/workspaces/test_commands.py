"""``manage.py workspace`` and ``manage.py demo`` as adapters: they find, call dispatch, report.

Commands run in-process with ``call_command`` on the recording backends, so no agent starts.
"""

from __future__ import annotations

import getpass
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from orgs.models import Org, Team
from tests.support.rows import MakeWorkspace, event_count, last_event, status_of
from workspaces.lifecycle import TransitionRefused
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

CLI_ACTOR = f"cli:{getpass.getuser()}"


@pytest.fixture(autouse=True)
def _no_real_backends(recording: dict[str, Any]) -> None:
    # The commands create and move workspaces; none of them may start a real agent.
    return None


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- list ---------------------------------------------------------------------------------------


def test_list_prints_one_line_per_workspace(org: Org, make_workspace: MakeWorkspace) -> None:
    lead = make_workspace(org, Status.ONLINE, name="Lead")
    make_workspace(org, Status.PAUSED, name="Helper")
    lines = run("workspace", "list").splitlines()
    assert lines[0].split() == ["ID", "ORG", "NAME", "STATUS", "TIER", "BACKEND"]
    assert lines[1].split() == [lead.short_id, "acme", "Lead", "online", "T2", "local"]
    assert lines[2].split()[2:4] == ["Helper", "paused"]
    assert len(lines) == 3


def test_list_leaves_removed_workspaces_out_unless_asked(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    make_workspace(org, Status.REMOVED, name="Gone")
    assert "Gone" not in run("workspace", "list")
    assert "Gone" in run("workspace", "list", "--all")


def test_list_json_is_valid_json_with_the_fields(org: Org, make_workspace: MakeWorkspace) -> None:
    workspace = make_workspace(org, name="Lead")
    [row] = json.loads(run("workspace", "list", "--json"))
    assert row["id"] == str(workspace.pk)
    assert (row["org"], row["name"], row["status"], row["tier"], row["backend"]) == (
        "acme",
        "Lead",
        "online",
        2,
        "local",
    )
    assert row["instance_id"] == workspace.instance_id
    expected = {"runtime", "parent", "url", "last_heartbeat_at", "created_at", "role"}
    assert expected <= row.keys()


def test_list_filters_by_org(org: Org, other_org: Org, make_workspace: MakeWorkspace) -> None:
    make_workspace(org, name="AcmeLead")
    make_workspace(other_org, name="GlobexLead")
    rows = json.loads(run("workspace", "list", "--json", "--org", "globex"))
    assert [(r["org"], r["name"]) for r in rows] == [("globex", "GlobexLead")]


def test_list_filters_by_status(org: Org, make_workspace: MakeWorkspace) -> None:
    make_workspace(org, Status.ONLINE, name="Busy")
    make_workspace(org, Status.PAUSED, name="Resting")
    rows = json.loads(run("workspace", "list", "--json", "--status", "paused"))
    assert [r["name"] for r in rows] == ["Resting"]


def test_list_refuses_an_unknown_org(org: Org) -> None:
    with pytest.raises(CommandError, match="No org has the slug 'initech'"):
        run("workspace", "list", "--org", "initech")


# --- verbs --------------------------------------------------------------------------------------

# verb, the state it starts from, the state it ends in, the event it writes.
VERB_CASES = [
    ("provision", Status.OFFLINE, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("stop", Status.ONLINE, Status.OFFLINE, EventType.WORKSPACE_OFFLINE),
    ("restart", Status.ONLINE, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("pause", Status.ONLINE, Status.PAUSED, EventType.WORKSPACE_PAUSED),
    ("resume", Status.PAUSED, Status.PROVISIONING, EventType.WORKSPACE_PROVISIONING),
    ("delete", Status.ONLINE, Status.REMOVED, EventType.WORKSPACE_REMOVED),
]
REFERENCES: dict[str, Callable[[Workspace], str]] = {
    "id": lambda workspace: str(workspace.pk),
    "id-prefix": lambda workspace: workspace.short_id,
    "name": lambda workspace: workspace.name,
}


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize(("verb", "start", "end", "event_type"), VERB_CASES)
def test_a_verb_finds_the_workspace_and_moves_it_through_dispatch(
    org: Org,
    make_workspace: MakeWorkspace,
    verb: str,
    start: str,
    end: str,
    event_type: str,
    reference: str,
) -> None:
    workspace = make_workspace(org, start, name="Lead")
    make_workspace(org, start, name="Bystander")  # must not be the one found
    before = event_count(workspace)
    out = run("workspace", verb, REFERENCES[reference](workspace))
    assert out.strip() == f"{verb}: Lead → {end}"
    assert status_of(workspace) == end
    assert event_count(workspace) == before + 1
    event = last_event(workspace)
    assert (event.event_type, event.actor, event.payload["cause"]) == (event_type, CLI_ACTOR, verb)
    assert Workspace.objects.get(name="Bystander").status == start


def test_stop_from_the_command_stops_the_instance_on_its_backend(
    org: Org,
    make_workspace: MakeWorkspace,
    recording: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    workspace = make_workspace(org)
    with django_capture_on_commit_callbacks(execute=True):
        run("workspace", "stop", "PM")
    assert recording["local"].calls[-1] == ("stop", workspace.instance_id)


def test_an_ambiguous_name_is_refused_with_every_match_listed(
    org: Org, other_org: Org, make_workspace: MakeWorkspace
) -> None:
    ours = make_workspace(org, name="PM")
    theirs = make_workspace(other_org, name="PM")
    with pytest.raises(CommandError) as refused:
        run("workspace", "stop", "PM")
    message = str(refused.value)
    assert f"acme/PM ({ours.pk})" in message
    assert f"globex/PM ({theirs.pk})" in message
    assert "--org" in message
    assert status_of(ours) == status_of(theirs) == Status.ONLINE


def test_org_tells_same_named_workspaces_apart(
    org: Org, other_org: Org, make_workspace: MakeWorkspace
) -> None:
    ours = make_workspace(org, name="PM")
    theirs = make_workspace(other_org, name="PM")
    run("workspace", "stop", "PM", "--org", "globex")
    assert status_of(theirs) == Status.OFFLINE
    assert status_of(ours) == Status.ONLINE


def test_an_unknown_workspace_is_refused(org: Org, make_workspace: MakeWorkspace) -> None:
    make_workspace(org)
    with pytest.raises(CommandError, match="No workspace is called 'Nobody'"):
        run("workspace", "stop", "Nobody")


def test_a_refused_transition_is_a_command_error_with_the_clear_message(
    org: Org, make_workspace: MakeWorkspace
) -> None:
    workspace = make_workspace(org, Status.ONLINE)
    before = event_count(workspace)
    message = str(TransitionRefused(workspace_name="PM", cause="resume", current="online"))
    with pytest.raises(CommandError) as refused:
        run("workspace", "resume", "PM")
    assert str(refused.value) == message
    assert status_of(workspace) == Status.ONLINE
    assert event_count(workspace) == before


# --- create -------------------------------------------------------------------------------------


def test_create_creates_and_provisions_through_dispatch(
    org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        out = run("workspace", "create", "--org", "acme", "--name", "Scout", "--tier", "3")
    workspace = Workspace.objects.get(name="Scout")
    assert out.strip() == f"{workspace.pk} provisioning"
    assert (workspace.org, workspace.tier) == (org, 3)
    event = last_event(workspace)
    assert (event.event_type, event.actor, event.payload["cause"]) == (
        EventType.WORKSPACE_PROVISIONING,
        CLI_ACTOR,
        "create",
    )
    assert recording["local"].calls == [("start", str(workspace.pk))]


def test_create_under_a_parent_found_by_name(org: Org, make_workspace: MakeWorkspace) -> None:
    lead = make_workspace(org, name="Lead")
    run("workspace", "create", "--org", "acme", "--name", "Helper", "--parent", "Lead")
    assert Workspace.objects.get(name="Helper").parent == lead


@pytest.mark.parametrize("tier", ["0", "5", "-1"])
def test_create_refuses_an_unknown_tier(org: Org, tier: str) -> None:
    with pytest.raises(CommandError, match=f"tier: unknown tier {tier}: use 1, 2, 3 or 4"):
        run("workspace", "create", "--org", "acme", "--name", "Scout", "--tier", tier)
    assert not Workspace.objects.exists()


def test_create_refuses_an_unknown_org(org: Org) -> None:
    with pytest.raises(CommandError, match="No org has the slug 'initech'"):
        run("workspace", "create", "--org", "initech", "--name", "Scout")
    assert not Workspace.objects.exists()


# --- demo ---------------------------------------------------------------------------------------


def test_demo_creates_an_org_with_a_lead_and_three_children_in_a_team(db: None) -> None:
    run("demo")
    demo = Org.objects.get(slug="demo")
    workspaces = Workspace.objects.filter(org=demo)
    lead = workspaces.get(parent=None)
    assert workspaces.count() == 4
    assert sorted(lead.children.values_list("name", flat=True)) == [
        "Backend",
        "Frontend",
        "Research",
    ]
    assert set(workspaces.values_list("status", flat=True)) == {Status.PROVISIONING}
    assert Team.objects.get(org=demo).lead == lead
    # Created through dispatch: each one has its "create" event.
    creates = StructureEvent.objects.filter(org=demo, payload__cause="create")
    assert creates.count() == 4


def test_demo_run_twice_creates_nothing_new(db: None) -> None:
    run("demo")
    counts = (Org.objects.count(), Workspace.objects.count(), Team.objects.count())
    events = StructureEvent.objects.count()
    out = run("demo")
    assert "nothing created" in out
    assert (Org.objects.count(), Workspace.objects.count(), Team.objects.count()) == counts
    assert StructureEvent.objects.count() == events
