"""Team verbs through dispatch: expand, collapse, move."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from orgs.models import Team
from workspaces import dispatch
from workspaces.lifecycle import Refused
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db

SPEC = {
    "children": [
        {"name": "Frontend", "tier": 1},
        {"name": "Backend", "tier": 3, "children": [{"name": "DBA"}]},
    ]
}


@pytest.fixture
def lead(org, recording, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return dispatch.create_workspace(org=org, name="PM", spec=SPEC, actor="test")


def test_expand_creates_and_provisions_each_child_of_the_spec(
    lead, recording, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = dispatch.expand_team(workspace_id=lead.pk, actor="user:olivia")
    children = {w.name: w for w in Workspace.objects.filter(parent=lead)}
    assert set(children) == {"Frontend", "Backend"}
    assert (children["Frontend"].tier, children["Backend"].tier) == (1, 3)
    # Teams nest: the grandchild waits in its parent's spec for its own expand.
    assert children["Backend"].spec == {"children": [{"name": "DBA"}]}
    assert {w.status for w in children.values()} == {Status.PROVISIONING}
    started = {ws for verb, ws in recording["local"].calls if verb == "start"}
    assert {str(w.pk) for w in children.values()} <= started
    assert Team.objects.filter(lead=lead).exists()
    event = StructureEvent.objects.get(workspace=lead, event_type=EventType.WORKSPACE_EXPANDED)
    assert sorted(event.payload["children"]) == sorted(str(w.pk) for w in children.values())
    assert event.actor == "user:olivia"
    assert [w.name for w in result.moved] == ["Frontend", "Backend"]


def test_expanding_twice_is_refused(lead):
    dispatch.expand_team(workspace_id=lead.pk, actor="test")
    with pytest.raises(Refused, match="collapse the team first"):
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    assert Workspace.objects.filter(parent=lead).count() == 2


def test_expand_without_children_in_the_spec_is_invalid(org, recording):
    lone = dispatch.create_workspace(org=org, name="Solo", actor="test")
    with pytest.raises(dispatch.InvalidRequest, match="no children"):
        dispatch.expand_team(workspace_id=lone.pk, actor="test")


def test_an_invalid_spec_is_refused_at_create_with_every_problem(org, recording):
    bad = {"children": [{"name": "A", "tier": 9}, {"name": "A"}, {"nme": "typo"}]}
    with pytest.raises(ValidationError) as invalid:
        dispatch.create_workspace(org=org, name="PM", spec=bad, actor="test")
    assert set(invalid.value.message_dict) >= {
        "spec.children[0].tier",
        "spec.children[1].name",
        "spec.children[2].nme",
    }
    assert not Workspace.objects.exists()


def test_a_spec_stored_before_the_rule_is_refused_at_expand_before_anything_is_created(
    org, recording
):
    lead = dispatch.create_workspace(org=org, name="PM", actor="test")
    bad = {"children": [{"name": "A", "tier": 9}, {"name": "A"}, {"nme": "typo"}]}
    # Written behind the services' back, as a row from an older release could hold it.
    Workspace.objects.filter(pk=lead.pk).update(spec=bad)
    with pytest.raises(dispatch.InvalidRequest) as invalid:
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    message = str(invalid.value)
    assert "children[0].tier: unknown tier 9" in message
    assert "children[1].name: duplicate name 'A'" in message
    assert "children[2].nme: unknown key" in message
    assert not Workspace.objects.filter(parent=lead).exists()


def test_collapse_stops_and_removes_every_descendant_and_keeps_the_lead(
    lead, recording, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    backend_child = Workspace.objects.get(parent=lead, name="Backend")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.expand_team(workspace_id=backend_child.pk, actor="test")
        result = dispatch.collapse_team(workspace_id=lead.pk, actor="test")
    assert sorted(w.name for w in result.moved) == ["Backend", "DBA", "Frontend"]
    statuses = set(Workspace.objects.exclude(pk=lead.pk).values_list("status", flat=True))
    assert statuses == {Status.REMOVED}
    assert recording["local"].workspaces_running() == [str(lead.pk)]
    assert not Team.objects.exists()
    assert StructureEvent.objects.filter(
        workspace=lead, event_type=EventType.WORKSPACE_COLLAPSED
    ).exists()
    with pytest.raises(Refused, match="leads no live workspace"):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
    # Collapsed, the lead can be expanded again from its spec.
    dispatch.expand_team(workspace_id=lead.pk, actor="test")


def test_move_reparents_and_writes_its_event(lead, org, recording):
    dispatch.expand_team(workspace_id=lead.pk, actor="test")
    front = Workspace.objects.get(name="Frontend")
    back = Workspace.objects.get(name="Backend")
    dispatch.move_workspace(workspace_id=front.pk, parent_id=back.pk, actor="test")
    front.refresh_from_db()
    assert front.parent_id == back.pk
    event = StructureEvent.objects.get(workspace=front, event_type=EventType.WORKSPACE_MOVED)
    assert event.payload == {"from_parent": str(lead.pk), "to_parent": str(back.pk)}
    assert Team.objects.filter(lead=back).exists()
    dispatch.move_workspace(workspace_id=front.pk, parent_id=None, actor="test")
    front.refresh_from_db()
    assert front.parent_id is None


def test_move_refuses_cycles_and_other_orgs(lead, other_org, recording):
    dispatch.expand_team(workspace_id=lead.pk, actor="test")
    child = Workspace.objects.get(name="Backend")
    with pytest.raises(dispatch.InvalidRequest, match="cycle"):
        dispatch.move_workspace(workspace_id=lead.pk, parent_id=child.pk, actor="test")
    with pytest.raises(dispatch.InvalidRequest, match="cycle"):
        dispatch.move_workspace(workspace_id=lead.pk, parent_id=lead.pk, actor="test")
    stranger = Workspace.objects.create(org=other_org, name="X", backend="local")
    with pytest.raises(dispatch.InvalidRequest, match="one org"):
        dispatch.move_workspace(workspace_id=child.pk, parent_id=stranger.pk, actor="test")
    child.refresh_from_db()
    assert child.parent_id == lead.pk
    assert not StructureEvent.objects.filter(event_type=EventType.WORKSPACE_MOVED).exists()


def test_moving_to_the_current_parent_writes_nothing(lead, recording):
    dispatch.expand_team(workspace_id=lead.pk, actor="test")
    child = Workspace.objects.get(name="Backend")
    dispatch.move_workspace(workspace_id=child.pk, parent_id=lead.pk, actor="test")
    assert not StructureEvent.objects.filter(event_type=EventType.WORKSPACE_MOVED).exists()
