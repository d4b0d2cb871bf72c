"""A 50-workspace org imported onto the real local backend: every agent starts and comes online.

The live server takes the agents' registrations and heartbeats (``local_fleet``); Celery is eager,
so the backend calls run when the import's transaction commits, one start per workspace.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orgs import selectors
from orgs.importer import import_org
from orgs.models import Team
from tests.support.procs import agent_pids, environ, processes_under
from tests.support.waiting import wait_for
from workspaces.models import EventType, Status, StructureEvent, Workspace

pytestmark = pytest.mark.django_db(transaction=True)

LEADS, MEMBERS = 7, 6  # a director, 7 leads, 6 members each: 1 + 7 + 42 = 50


def fleet_yaml() -> str:
    lines = [
        "name: Fleet Research",
        "slug: fleet",
        "defaults: {tier: 2}",
        "required_env: [OPENAI_API_KEY]",
        "workspaces:",
        "  - name: Director",
        "    role: Lead",
        "    children:",
    ]
    for lead in range(LEADS):
        lines += [f"      - name: Lead {lead}", "        children:"]
        lines += [f"          - {{name: Member {lead}.{m}, tier: 1}}" for m in range(MEMBERS)]
    return "\n".join(lines) + "\n"


def test_a_fifty_workspace_tree_imports_and_comes_online_on_the_local_backend(
    local_fleet: Path, settings: Any
) -> None:
    # Registration is immediate; slower heartbeats keep 50 agents from crowding two busy cores.
    settings.MOLECULE_HEARTBEAT_INTERVAL = 5
    started = time.monotonic()

    result = import_org(fleet_yaml(), actor="test", env={"OPENAI_API_KEY": "sk-fleet"})

    ids = [w.pk for w in result.workspaces]
    assert len(ids) == 50
    assert Team.objects.filter(org=result.org).count() == 1 + LEADS

    def all_online() -> bool:
        states = list(Workspace.objects.filter(pk__in=ids).values_list("status", flat=True))
        assert Status.FAILED not in states, "a workspace failed to come up"
        return states.count(Status.ONLINE) == 50

    wait_for(all_online, timeout=90, interval=0.5)
    elapsed = time.monotonic() - started

    progress = selectors.import_progress(result.event)
    assert progress.settled
    assert progress.by_state == {"provisioning": 0, "online": 50, "failed": 0}
    # One agent process per workspace, and each got the file's required_env as a secret.
    member = Workspace.objects.get(org=result.org, name="Member 6.5")
    [pid] = agent_pids(local_fleet, member.pk)
    assert environ(pid)["OPENAI_API_KEY"] == "sk-fleet"
    running = Counter(environ(pid).get("WORKSPACE_ID") for pid in processes_under(local_fleet))
    assert {str(pk): running[str(pk)] for pk in ids} == {str(pk): 1 for pk in ids}
    assert (
        StructureEvent.objects.filter(
            workspace_id__in=ids, event_type=EventType.WORKSPACE_ONLINE
        ).count()
        == 50
    )
    print(f"\n50 workspaces imported and online in {elapsed:.1f} s")
