"""Collapse, then expand: the recreated agents start with the secrets their team had.

Collapse removes the members (and their secrets with them); expand recreates them from the lead's
spec. What the members had is kept sealed for the lead in between (workspaces/team_secrets.py),
and a member still missing a variable its org requires takes the lead's value or the expand is
refused with the names. Values never appear in events.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from orgs.importer import import_org
from orgs.models import Org
from workspaces import dispatch, vault
from workspaces.lifecycle import Refused
from workspaces.models import EventType, StructureEvent, TeamSecret, Workspace

pytestmark = pytest.mark.django_db

ORG = """\
name: Acme
slug: acme-teams
required_env: [OPENAI_API_KEY]
workspaces:
  - name: PM
    children:
      - {name: Frontend, tier: 1}
      - name: Backend
        children:
          - {name: DBA}
"""
VALUE = "sk-live-do-not-leak-0123456789"


@pytest.fixture
def tree(recording: dict[str, Any], django_capture_on_commit_callbacks: Any) -> Org:
    with django_capture_on_commit_callbacks(execute=True):
        return import_org(ORG, actor="test", env={"OPENAI_API_KEY": VALUE}).org


def ws(org: Org, name: str) -> Workspace:
    return Workspace.objects.exclude(status="removed").get(org=org, name=name)


def started_env(recording: dict[str, Any], workspace: Workspace) -> dict[str, str]:
    spec = next(
        s for s in reversed(recording["local"].specs) if s.workspace_id == str(workspace.pk)
    )
    return spec.env


def test_collapse_then_expand_gives_the_recreated_agents_their_secrets(
    tree: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    vault.set_secret(
        workspace_id=ws(tree, "Frontend").pk, key="FIGMA_TOKEN", value="figma-1", actor="test"
    )
    lead = ws(tree, "PM")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    frontend, backend = ws(tree, "Frontend"), ws(tree, "Backend")
    assert started_env(recording, frontend)["OPENAI_API_KEY"] == VALUE
    assert started_env(recording, frontend)["FIGMA_TOKEN"] == "figma-1"
    assert started_env(recording, backend)["OPENAI_API_KEY"] == VALUE
    expanded = StructureEvent.objects.filter(
        workspace=lead, event_type=EventType.WORKSPACE_EXPANDED
    ).first()
    assert sorted(expanded.payload["secrets_restored"]["Frontend"]) == [
        "FIGMA_TOKEN",
        "OPENAI_API_KEY",
    ]


def test_a_grandchilds_secrets_wait_for_its_own_parents_expand(
    tree: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    vault.set_secret(workspace_id=ws(tree, "DBA").pk, key="PGPASSWORD", value="pg", actor="t")
    lead = ws(tree, "PM")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
        dispatch.expand_team(workspace_id=ws(tree, "Backend").pk, actor="test")
    dba = ws(tree, "DBA")
    assert started_env(recording, dba)["PGPASSWORD"] == "pg"
    assert started_env(recording, dba)["OPENAI_API_KEY"] == VALUE
    assert not TeamSecret.objects.exists()  # every kept secret went back to its member


def test_values_are_kept_sealed_and_never_written_to_an_event(
    tree: Org, django_capture_on_commit_callbacks: Any
) -> None:
    lead = ws(tree, "PM")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
    assert TeamSecret.objects.filter(lead=lead).count() == 3  # Frontend, Backend, DBA
    collapsed = StructureEvent.objects.get(event_type=EventType.WORKSPACE_COLLAPSED)
    assert collapsed.payload["secrets_kept"]["Backend / DBA"] == ["OPENAI_API_KEY"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT value_encrypted FROM workspaces_teamsecret")
        blobs = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT payload::text FROM workspaces_structureevent")
        payloads = " ".join(row[0] for row in cursor.fetchall())
    assert all(blob.startswith("v1:") and VALUE not in blob for blob in blobs)
    assert VALUE not in payloads


def test_a_kept_secret_cannot_be_moved_to_another_lead(
    tree: Org, django_capture_on_commit_callbacks: Any
) -> None:
    lead = ws(tree, "PM")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
    other = dispatch.create_workspace(
        org=tree, name="Other", spec={"children": [{"name": "Frontend"}]}, actor="test"
    )
    vault.set_secret(workspace_id=other.pk, key="OPENAI_API_KEY", value="x", actor="t")
    row = TeamSecret.objects.get(lead=lead, key="OPENAI_API_KEY", member_path='["Frontend"]')
    TeamSecret.objects.create(
        lead=other, member_path=row.member_path, key="STOLEN", value_encrypted=row.value_encrypted
    )
    # The blob is bound to its lead: copied under another, it opens to nothing but an error.
    with pytest.raises(vault.SecretsUnreadable, match="altered or copied"):
        dispatch.expand_team(workspace_id=other.pk, actor="test")
    assert not Workspace.objects.filter(parent=other).exists()


def test_expand_refuses_when_a_member_would_miss_a_required_variable(
    tree: Org, recording: dict[str, Any]
) -> None:
    # A lead created later, without the variable its org requires.
    lead = dispatch.create_workspace(
        org=tree, name="Late", spec={"children": [{"name": "Helper"}]}, actor="test"
    )
    with pytest.raises(Refused, match=r"requires OPENAI_API_KEY.*'Helper' would start without"):
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    assert not Workspace.objects.filter(parent=lead).exists()
    assert not StructureEvent.objects.filter(
        workspace=lead, event_type=EventType.WORKSPACE_EXPANDED
    ).exists()


def test_a_member_inherits_a_required_variable_from_its_lead(
    tree: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    lead = dispatch.create_workspace(
        org=tree, name="Late", spec={"children": [{"name": "Helper"}]}, actor="test"
    )
    vault.set_secret(workspace_id=lead.pk, key="OPENAI_API_KEY", value="lead-value", actor="t")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    helper = ws(tree, "Helper")
    assert started_env(recording, helper)["OPENAI_API_KEY"] == "lead-value"
    event = StructureEvent.objects.filter(workspace=helper, event_type=EventType.SECRET_SET).first()
    assert event.payload["origin"].startswith("inherited from Late")


def test_kept_secrets_survive_a_key_rotation(
    tree: Org, recording: dict[str, Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    lead = ws(tree, "PM")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
    new_key = vault.new_key()
    vault.rotate(new_key=new_key)
    settings.SECRETS_ENCRYPTION_KEY = new_key
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    assert started_env(recording, ws(tree, "Frontend"))["OPENAI_API_KEY"] == VALUE


def test_deleting_the_lead_discards_what_was_kept_for_its_team(
    tree: Org, django_capture_on_commit_callbacks: Any
) -> None:
    lead = ws(tree, "PM")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
        dispatch.delete(workspace_id=lead.pk, actor="test")
    assert not TeamSecret.objects.exists()


def test_a_kept_secret_whose_name_the_rule_now_refuses_is_dropped_not_handed_on(
    tree: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    lead = ws(tree, "PM")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.collapse_team(workspace_id=lead.pk, actor="test")
    # A row kept before today's name rule: copy a sealed value under a refused name.
    row = TeamSecret.objects.get(lead=lead, key="OPENAI_API_KEY", member_path='["Frontend"]')
    TeamSecret.objects.create(
        lead=lead,
        member_path=row.member_path,
        key="LD_PRELOAD",
        value_encrypted=row.value_encrypted,
    )
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.expand_team(workspace_id=lead.pk, actor="test")
    assert "LD_PRELOAD" not in started_env(recording, ws(tree, "Frontend"))
    expanded = StructureEvent.objects.filter(
        workspace=lead, event_type=EventType.WORKSPACE_EXPANDED
    ).first()
    assert expanded.payload["secrets_dropped"] == ["Frontend: LD_PRELOAD"]
