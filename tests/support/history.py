"""A history holding every event the code can write, made by the code that writes them.

``lived_history`` drives the real services (dispatch's verbs and sweeps, the agent registry,
org import and archive, tokens, partner keys, secrets) over the recording backends, so every
event carries exactly the payload its writer gives it. ``missing_from`` then says which event
types and which lifecycle causes the history does not hold: a new event type or transition that
no step here produces is reported, rather than silently left out of the page tests.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from orgs import api_tokens, partner_keys
from orgs import services as org_services
from orgs.importer import import_org
from orgs.models import Org
from workspaces import dispatch, heartbeats, lifecycle, vault
from workspaces.backends import BackendError
from workspaces.bearer_secrets import hash_token
from workspaces.dispatch import files, plugins
from workspaces.models import EventType, Status, StructureEvent, SweepState, Workspace

ORG_FILE = """\
name: History
slug: history
required_env: [OPENAI_API_KEY]
workspaces:
  - name: Lead
    role: Lead
    children:
      - {name: Member, tier: 1}
      - {name: Other, tier: 3}
"""


def _committing() -> Any:
    """Run what the block queues on commit, as a real commit would (the tests' transaction
    never commits): the backend calls happen, so the rows record instances."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def _token_of(recording: dict[str, Any], workspace: Workspace) -> str:
    backend = recording[workspace.backend]
    spec = next(s for s in reversed(backend.specs) if s.workspace_id == str(workspace.pk))
    return spec.token


def _register(recording: dict[str, Any], workspace: Workspace) -> None:
    heartbeats.register(
        workspace_id=workspace.pk,
        token_hash=hash_token(_token_of(recording, workspace)),
        url="http://127.0.0.1:1/agent",
        agent_card={"name": workspace.name},
    )


def _heartbeat(recording: dict[str, Any], workspace: Workspace, error_rate: float) -> None:
    heartbeats.heartbeat(
        workspace_id=workspace.pk,
        token_hash=hash_token(_token_of(recording, workspace)),
        report=heartbeats.Report(
            error_rate=error_rate,
            sample_error="<script>alert('x')</script> & a failing tool" if error_rate else "",
            active_tasks=2,
            uptime_seconds=120,
            current_task="summarise {{ the }} report {% now %}",
        ),
    )


def _fresh(workspace: Workspace) -> Workspace:
    workspace.refresh_from_db()
    return workspace


def lived_history(recording: dict[str, Any], settings: Any) -> Org:
    """Drive every writer of events once; returns the org they happened in."""
    settings.MOLECULE_CRASH_LOOP_LIMIT = 2
    with _committing():
        result = import_org(ORG_FILE, actor="test:history", env={"OPENAI_API_KEY": "sk-test"})
    org = result.org
    lead = Workspace.objects.get(org=org, name="Lead")
    member = Workspace.objects.get(org=org, name="Member")
    other = Workspace.objects.get(org=org, name="Other")

    _register(recording, lead)  # register
    _heartbeat(recording, lead, 0.9)  # degrade
    _heartbeat(recording, lead, 0.0)  # recover

    # heartbeat_lost: silent past the liveness timeout while the sweep has been watching.
    _register(recording, member)
    past = timezone.now() - timedelta(hours=1)
    Workspace.objects.filter(pk=member.pk).update(last_heartbeat_at=past)
    SweepState.objects.update_or_create(
        name="liveness", defaults={"last_run_at": timezone.now(), "watching_since": past}
    )
    with _committing():
        dispatch.liveness_sweep()  # heartbeat_lost, then auto_restart

    # instance_lost twice: the second one hits the crash-loop limit (2).
    for _ in range(2):
        _register(recording, _fresh(member))
        recording["local"].running.pop(_fresh(member).instance_id, None)
        with _committing():
            dispatch.health_sweep()

    # provision_failed by the timeout sweep.
    with _committing():
        dispatch.provision(workspace_id=member.pk, actor="test:history")
    Workspace.objects.filter(pk=member.pk).update(status_changed_at=past)
    dispatch.provision_timeout_sweep()

    with _committing():
        dispatch.restart(workspace_id=other.pk, actor="test:history")  # restart
    _register(recording, _fresh(other))
    recording["local"].fail_next = BackendError("the engine refused to stop it", permanent=True)
    with _committing():
        dispatch.stop(workspace_id=other.pk, actor="test:history")  # stop + BACKEND_CALL_FAILED
    # A plugin the catalogue lacks, named by the template: a warning event at the start.
    Workspace.objects.filter(pk=other.pk).update(template={"plugins": ["no-such-plugin"]})
    with _committing():
        dispatch.provision(workspace_id=other.pk, actor="test:history")  # provision
        dispatch.pause(workspace_id=other.pk, actor="test:history")  # pause
        dispatch.resume(workspace_id=other.pk, actor="test:history")  # resume

    dispatch.edit_workspace(workspace_id=other.pk, actor="test:history", role="Reviewer", tier=2)
    dispatch.move_workspace(workspace_id=other.pk, parent_id=None, actor="test:history")
    with _committing():
        dispatch.collapse_team(workspace_id=lead.pk, actor="test:history")
        dispatch.expand_team(workspace_id=lead.pk, actor="test:history")

    # A message the agent cannot take (a recording instance's URL leads nowhere): the exchange
    # is recorded with its failure.
    with contextlib.suppress(dispatch.AgentFailed):
        dispatch.send_message(workspace_id=lead.pk, actor="test:history", text="history")
    # A file written, renamed and deleted in the lead's configs.
    files.write_file(
        workspace_id=lead.pk, actor="test:history", root="configs", path="a.md", data=b"a"
    )
    files.rename_file(
        workspace_id=lead.pk, actor="test:history", root="configs", path="a.md", new_path="b.md"
    )
    files.delete_file(workspace_id=lead.pk, actor="test:history", root="configs", path="b.md")
    plugins.install_plugin(workspace_id=lead.pk, actor="test:history", name="parity-probe")
    plugins.uninstall_plugin(workspace_id=lead.pk, actor="test:history", name="parity-probe")
    vault.set_secret(workspace_id=lead.pk, key="EXTRA", value="v", actor="test:history")
    vault.delete_secret(workspace_id=lead.pk, key="EXTRA", actor="test:history")
    minted = api_tokens.mint(org=org, name="history", created_by="test:history")
    api_tokens.revoke(org=org, token_id=minted.token.pk, actor="test:history")
    key = partner_keys.mint(
        name="history partner", scopes=["orgs:read"], org=org, created_by="test:history"
    )
    partner_keys.revoke(key_id=key.key.pk, actor="test:history")

    # An instance that no workspace owns, stopped by the orphan sweep.
    recording["local"].running["rec-orphan"] = recording["local"].specs[0]
    dispatch.orphan_sweep(grace=0)

    with _committing():
        dispatch.delete(workspace_id=other.pk, actor="test:history")  # delete
    archived = org_services.create_org(slug="history-archived", name="Gone", actor="test:history")
    org_services.archive_org(org_id=archived.pk, actor="test:history")
    return org


def missing_from(events: list[StructureEvent]) -> list[str]:
    """Event types and lifecycle causes the history lacks, as sentences."""
    types = {event.event_type for event in events}
    causes = {event.payload.get("cause") for event in events}
    missing = [f"event type {t}" for t in EventType.values if t not in types]
    missing += [f"lifecycle cause {c!r}" for c in lifecycle.TRANSITIONS if c not in causes]
    missing += ["the crash-loop event"] if "crash_loop" not in causes else []
    return missing


def copy_history(events: list[StructureEvent], onto: Workspace) -> None:
    """The same events again, on another workspace: each page shows a whole history."""
    from workspaces.events import record

    with transaction.atomic():
        for event in reversed(events):
            record(
                EventType(event.event_type),
                actor=event.actor,
                payload=event.payload,
                workspace=onto if event.workspace_id else None,
                org_id=None if event.workspace_id else event.org_id,
            )


def workspace_in_each_state(org: Org) -> dict[str, Workspace]:
    """One workspace per state the state machine has, in ``org``, set by hand (a test world)."""
    found = {}
    for status in Status:
        workspace = Workspace.objects.create(
            org=org,
            name=f"In {status}",
            backend=org.backend,
            status=status,
            generation=3,
            instance_id="rec-gone" if status != Status.REMOVED else "",
            url="http://127.0.0.1:1/gone",
            restart_count=4,
            crash_looping=status == Status.OFFLINE,
            last_exit_reason="the local backend reports the instance is not running",
            last_exit_at=timezone.now() - timedelta(seconds=30),
            last_heartbeat_at=timezone.now() - timedelta(seconds=90),
            uptime_seconds=10**9,
            current_task="<b>{{ x }}</b>",
            agent_card={"name": "<i>card</i>", "skills": [{"id": "x"}]},
        )
        found[str(status)] = workspace
    return found
