"""The 43-workspace Molecule template (tests/data/templates/harbor-works) imported on PostgreSQL
onto the real local backend: every agent comes online, and each one's configs directory holds its
files_dir, its prompts (system-prompt.md; config.yaml's initial_prompt, idle_prompt, schedules)
and its memories (config.yaml's initial_memories, global_memories on the Director).

The live server takes the agents' registrations and heartbeats (``local_fleet``); Celery is eager,
so the backend calls run when the import's transaction commits, one start per workspace. The time
to all online is printed (a figure, not an assertion).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from orgs import selectors
from orgs.importer import import_org
from orgs.models import Team
from orgs.tree import DirTree
from tests.support.procs import agent_pids, environ
from tests.support.templates import HARBOR, HARBOR_ENV, HARBOR_TEAMS, HARBOR_WORKSPACES
from tests.support.waiting import wait_for
from workspaces.models import Status, Workspace, WorkspaceFile

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_harbor_template_comes_online_with_every_agents_configs(
    local_fleet: Path, settings: Any
) -> None:
    # Registration is immediate; slower heartbeats keep 43 agents from crowding two busy cores.
    settings.MOLECULE_HEARTBEAT_INTERVAL = 5
    # The Director's workspace_dir is ${HARBOR_DATA}/director: somewhere the backend may create.
    env = {**HARBOR_ENV, "HARBOR_DATA": str(local_fleet.parent / "harbor-data")}
    started = time.monotonic()

    result = import_org(DirTree(HARBOR), actor="test", env=env)

    ids = [w.pk for w in result.workspaces]
    assert len(ids) == HARBOR_WORKSPACES
    assert Team.objects.filter(org=result.org).count() == HARBOR_TEAMS

    def all_online() -> bool:
        states = list(Workspace.objects.filter(pk__in=ids).values_list("status", flat=True))
        assert Status.FAILED not in states, "a workspace failed to come up"
        return states.count(Status.ONLINE) == HARBOR_WORKSPACES

    wait_for(all_online, timeout=180, interval=0.5)
    elapsed = time.monotonic() - started
    progress = selectors.import_progress(result.event)
    assert progress.by_state == {"provisioning": 0, "online": HARBOR_WORKSPACES, "failed": 0}

    checked_files = 0
    for workspace in Workspace.objects.filter(pk__in=ids):
        configs = local_fleet / str(workspace.pk) / "configs"
        template = workspace.template
        config = json.loads((configs / "config.yaml").read_text())
        assert (config["name"], config["workspace_id"]) == (workspace.name, str(workspace.pk))
        # Its prompts and memories, as the template resolved them.
        for key in ("initial_prompt", "idle_prompt", "idle_interval_seconds", "plugins"):
            assert config.get(key) == template.get(key), (workspace.name, key)
        assert config["initial_memories"] == template["initial_memories"]
        assert config["schedules"] == template["schedules"]
        assert config.get("global_memories") == template.get("global_memories")
        assert config.get("channels") == template.get("channels")
        assert config["model"] == template.get("model", "sonnet")
        # Its files_dir, byte for byte; the inline system prompt wins over a shipped one.
        for row in WorkspaceFile.objects.filter(workspace=workspace):
            if row.path == "system-prompt.md" and template.get("system_prompt"):
                continue
            assert (configs / row.path).read_bytes() == bytes(row.content), row.path
            checked_files += 1
        prompt = (configs / "system-prompt.md").read_text()
        assert prompt == template.get("system_prompt", prompt)
        assert not (configs / ".env").exists()

    director = Workspace.objects.get(pk=ids[0])
    assert director.name == "Director"
    assert [m["scope"] for m in director.template["global_memories"]] == ["GLOBAL", "GLOBAL"]
    # A .env name reached the agent's environment as a secret.
    scout = Workspace.objects.get(org=result.org, parent__name="Docs Lead", name="Scout")
    [pid] = agent_pids(local_fleet, scout.pk)
    assert environ(pid)["SCOUT_FEED_TOKEN"] == "feed-token-for-tests"
    assert checked_files > 100
    print(
        f"\nharbor-works: {HARBOR_WORKSPACES} workspaces, {HARBOR_TEAMS} teams, "
        f"{result.files} files imported and online in {elapsed:.1f} s "
        f"(import_org tests/data/templates/harbor-works on PostgreSQL, local backend)"
    )
