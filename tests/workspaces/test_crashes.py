"""Crashes: the sweeps judge the right instance, and what happened stays on screen.

A crash is over in about a second (offline for milliseconds, provisioning for a second), so a
page that polls every 2 s often shows nothing of it. These pin what stays: the restart count,
the last exit with its reason and time, a crash loop that stands out, and an agent report that
belongs to the instance now running. They use the recording backends (tests/support/fakes.py);
test_local_fleet.py kills real agents.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orgs.models import Org
from workspaces import dispatch, heartbeats
from workspaces.bearer_secrets import hash_token
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db


def _token(recording: dict[str, Any], workspace: Workspace) -> str:
    spec = next(
        s for s in reversed(recording["local"].specs) if s.workspace_id == str(workspace.pk)
    )
    return spec.token


def _register(recording: dict[str, Any], workspace: Workspace) -> None:
    heartbeats.register(
        workspace_id=workspace.pk,
        token_hash=hash_token(_token(recording, workspace)),
        url="",
        agent_card={},
    )


def _report(recording: dict[str, Any], workspace: Workspace, *, uptime: int, task: str) -> None:
    heartbeats.heartbeat(
        workspace_id=workspace.pk,
        token_hash=hash_token(_token(recording, workspace)),
        report=heartbeats.Report(
            error_rate=0.0,
            sample_error="",
            active_tasks=1,
            uptime_seconds=uptime,
            current_task=task,
        ),
    )


@pytest.fixture
def online(
    org: Org, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> Workspace:
    with django_capture_on_commit_callbacks(execute=True):
        workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    _register(recording, workspace)
    workspace.refresh_from_db()
    assert workspace.status == Status.ONLINE
    return workspace


def _kill(recording: dict[str, Any], workspace: Workspace) -> None:
    workspace.refresh_from_db()
    recording["local"].running.pop(workspace.instance_id)


def test_a_second_sweep_before_reconcile_does_not_fail_the_restarted_workspace(
    online: Workspace, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    _kill(recording, online)
    # The sweep moves the row to a new generation; the worker has not replaced the instance yet.
    with django_capture_on_commit_callbacks(execute=False) as pending:
        assert dispatch.health_sweep() == [str(online.pk)]
    online.refresh_from_db()
    assert online.status == Status.PROVISIONING
    assert online.instance_generation < online.generation  # still the dead instance's record
    # A second sweep comes round first: the dead instance is not this generation's to judge.
    assert dispatch.health_sweep() == []
    for callback in pending:
        callback()
    online.refresh_from_db()
    assert online.instance_generation == online.generation
    _register(recording, online)
    online.refresh_from_db()
    assert online.status == Status.ONLINE
    types = set(
        StructureEvent.objects.filter(workspace=online).values_list("event_type", flat=True)
    )
    assert EventType.WORKSPACE_PROVISION_FAILED not in types
    # Nothing of the new agent's was taken for an orphan either.
    assert recording["local"].workspaces_running() == [str(online.pk)]


def test_a_restart_forgets_the_old_agents_uptime_and_task(
    online: Workspace,
    recording: dict[str, Any],
    owner: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _report(recording, online, uptime=4321, task="writing the quarterly report")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.restart(workspace_id=online.pk, actor="test")
    online.refresh_from_db()
    assert (online.uptime_seconds, online.current_task, online.active_tasks) == (0, "", 0)
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("workspace", args=[online.pk])).content.decode()
    assert "4321" not in page
    assert "writing the quarterly report" not in page


def test_the_old_agent_cannot_register_once_a_restart_is_recorded(
    online: Workspace, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    old_token = _token(recording, online)
    with django_capture_on_commit_callbacks(execute=False):
        dispatch.restart(workspace_id=online.pk, actor="test")
    # The worker has not run: the old agent tries to report in as if nothing happened.
    with pytest.raises(heartbeats.Unauthorized):
        heartbeats.register(
            workspace_id=online.pk, token_hash=hash_token(old_token), url="", agent_card={}
        )
    online.refresh_from_db()
    assert online.status == Status.PROVISIONING


def test_an_automatic_restart_is_counted_with_its_reason_and_time(
    online: Workspace, recording: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    before = timezone.now()
    _kill(recording, online)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.health_sweep()
    online.refresh_from_db()
    assert online.restart_count == 1
    assert "local backend reports the instance is not running" in online.last_exit_reason
    assert online.last_exit_at is not None and online.last_exit_at >= before
    assert not online.crash_looping


def test_the_dashboard_shows_restarts_long_after_the_workspace_is_back(
    online: Workspace,
    recording: dict[str, Any],
    owner: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _kill(recording, online)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.health_sweep()
    online.refresh_from_db()
    _register(recording, online)  # back online: the crash itself is no longer visible
    client = Client()
    client.force_login(owner)
    fleet = client.get(reverse("dashboard"), headers={"HX-Request": "true"}).content.decode()
    assert 'data-restarts="1"' in fleet
    assert 'data-crash="recent"' in fleet
    page = client.get(reverse("workspace", args=[online.pk])).content.decode()
    assert "1 automatic" in page
    assert online.last_exit_reason in page


def test_a_crash_loop_stands_out_until_an_operator_acts(
    online: Workspace,
    recording: dict[str, Any],
    owner: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MOLECULE_CRASH_LOOP_LIMIT = 2
    for _ in range(3):
        _kill(recording, online)
        with django_capture_on_commit_callbacks(execute=True):
            dispatch.health_sweep()
        online.refresh_from_db()
        if online.status == Status.PROVISIONING:
            _register(recording, online)
    online.refresh_from_db()
    assert (online.status, online.crash_looping) == (Status.OFFLINE, True)
    client = Client()
    client.force_login(owner)
    fleet = client.get(reverse("dashboard")).content.decode()
    assert 'class="crash-looping"' in fleet
    assert 'data-crash="loop"' in fleet
    page = client.get(reverse("workspace", args=[online.pk])).content.decode()
    assert "Crash loop" in page
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.restart(workspace_id=online.pk, actor="test")
    online.refresh_from_db()
    assert not online.crash_looping
    assert 'data-crash="loop"' not in client.get(reverse("dashboard")).content.decode()
