"""The state machine: every (cause, state) pair is either an allowed transition or refused."""

from __future__ import annotations

import itertools

import pytest

from workspaces import lifecycle
from workspaces.lifecycle import TRANSITIONS, TransitionRefused
from workspaces.models import EventType, Status, StructureEvent, Workspace

STORED_CAUSES = [cause for cause in TRANSITIONS if cause != "create"]
PAIRS = list(itertools.product(STORED_CAUSES, [s.value for s in Status]))
ALLOWED = [(c, s) for c, s in PAIRS if s in TRANSITIONS[c].sources]
REFUSED = [(c, s) for c, s in PAIRS if s not in TRANSITIONS[c].sources]

# The design's table (docs/architecture.md §4), written out independently of TRANSITIONS so
# that a change to the data that drifts from the design fails here.
EXPECTED = {
    ("provision", "failed"): "provisioning",
    ("provision", "offline"): "provisioning",
    ("auto_restart", "offline"): "provisioning",
    ("register", "provisioning"): "online",
    ("degrade", "online"): "degraded",
    ("recover", "degraded"): "online",
    ("heartbeat_lost", "online"): "offline",
    ("heartbeat_lost", "degraded"): "offline",
    ("instance_lost", "online"): "offline",
    ("instance_lost", "degraded"): "offline",
    ("provision_failed", "provisioning"): "failed",
    ("resume", "paused"): "provisioning",
    **{("pause", s): "paused" for s in ["provisioning", "online", "degraded", "offline"]},
    **{("delete", s.value): "removed" for s in Status if s != Status.REMOVED},
    # Decisions written down in lifecycle.py: restart from live states and failed; stop rests
    # the workspace offline.
    **{
        ("restart", s): "provisioning"
        for s in ["provisioning", "online", "degraded", "offline", "failed"]
    },
    **{("stop", s): "offline" for s in ["provisioning", "online", "degraded"]},
}


def make(org, status: str) -> Workspace:
    return Workspace.objects.create(org=org, name=f"ws-{status}", backend="local", status=status)


def test_the_table_matches_the_design():
    allowed = {(c, s): str(TRANSITIONS[c].target) for c, s in ALLOWED}
    assert allowed == EXPECTED


def test_paused_and_removed_are_left_only_by_resume_and_never_by_a_sweep():
    sweeps = ["auto_restart", "heartbeat_lost", "instance_lost", "provision_failed"]
    for cause in sweeps:
        assert Status.PAUSED not in TRANSITIONS[cause].sources
        assert Status.REMOVED not in TRANSITIONS[cause].sources
    leaving_removed = [c for c, t in TRANSITIONS.items() if Status.REMOVED in t.sources]
    assert leaving_removed == []


@pytest.mark.django_db
@pytest.mark.parametrize(("cause", "status"), ALLOWED)
def test_an_allowed_transition_writes_its_event_then_moves_the_row(org, cause, status):
    workspace = make(org, status)
    event = lifecycle.apply(workspace, cause, actor="test", payload={"why": "test"})
    workspace.refresh_from_db()
    assert workspace.status == EXPECTED[(cause, status)]
    assert event.event_type == TRANSITIONS[cause].event
    assert event.workspace_id == workspace.pk and event.org_id == org.pk
    assert event.payload == {"from": status, "to": workspace.status, "cause": cause, "why": "test"}


@pytest.mark.django_db
@pytest.mark.parametrize(("cause", "status"), REFUSED)
def test_a_refused_transition_raises_and_changes_nothing(org, cause, status):
    workspace = make(org, status)
    with pytest.raises(TransitionRefused) as refused:
        lifecycle.apply(workspace, cause, actor="test")
    workspace.refresh_from_db()
    assert workspace.status == status
    assert not StructureEvent.objects.filter(workspace=workspace).exists()
    message = str(refused.value)
    assert f"it is {status}" in message and workspace.name in message


def test_the_refusal_names_the_states_the_verb_is_allowed_from():
    error = TransitionRefused(workspace_name="PM", cause="resume", current="online")
    assert str(error) == (
        "Cannot resume workspace 'PM': it is online. Resume is allowed only from: paused."
    )


def test_each_event_type_of_the_design_is_written_by_some_transition():
    written = {t.event for t in TRANSITIONS.values()}
    assert {
        EventType.WORKSPACE_PROVISIONING,
        EventType.WORKSPACE_ONLINE,
        EventType.WORKSPACE_DEGRADED,
        EventType.WORKSPACE_OFFLINE,
        EventType.WORKSPACE_PROVISION_FAILED,
        EventType.WORKSPACE_PAUSED,
        EventType.WORKSPACE_REMOVED,
    } <= written
