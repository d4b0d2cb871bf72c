"""The local backend for real: agents are child processes that register and heartbeat."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from workspaces import dispatch
from workspaces.models import Status, Workspace

pytestmark = pytest.mark.django_db(transaction=True)


def status_of(workspace: Workspace) -> str:
    return Workspace.objects.values_list("status", flat=True).get(pk=workspace.pk)


def test_a_provisioned_workspace_registers_and_comes_online(local_fleet, org):
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")
    wait_for(lambda: status_of(workspace) == Status.ONLINE)
    workspace.refresh_from_db()
    assert workspace.instance_id.startswith("local:")
    assert workspace.url.startswith("http://127.0.0.1:")
    wait_for(lambda: Workspace.objects.get(pk=workspace.pk).uptime_seconds >= 1, timeout=10)
