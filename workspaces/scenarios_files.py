"""The parity rows that reach into a workspace's storage: ``files`` and ``plugins``.

Run like every scenario (workspaces/scenarios.py, which imports these): real workspaces on the
backend under test, changes made through dispatch, and the agent itself asked what it reads now
(``GET /configs/file?path=``, workspaces/agent/main.py), so a file that reached the storage but
not the agent fails the row.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from workspaces import dispatch
from workspaces import plugins as catalogue
from workspaces.dispatch import files, plugins
from workspaces.models import EventType, Status, Workspace
from workspaces.scenarios import (
    ACTOR,
    Context,
    ScenarioFailed,
    ScenarioSkipped,
    _expect,
    _templated,
)

FILES_FIRST = "# Parity notes\nwritten through the console \u2713\n"
FILES_SECOND = "# Parity notes\nedited: the agent must read this line\n"


def agent_reads(workspace: Workspace, path: str) -> dict[str, Any] | None:
    """What the agent reads at ``path`` of its configs now; None when it finds nothing there."""
    url = f"{workspace.url.rstrip('/')}/configs/file?path={quote(path)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def _sees(ctx: Context, workspace: Workspace, path: str, text: str | None) -> None:
    digest = hashlib.sha256(text.encode()).hexdigest() if text is not None else None

    def seen() -> bool:
        found = agent_reads(workspace, path)
        return found is None if digest is None else found is not None and found["sha256"] == digest

    what = f"the new content of {path}" if text is not None else f"no {path} any more"
    ctx.wait(f"the agent reading {what}", seen, timeout=20)


def scenario_files(ctx: Context) -> None:
    workspace = ctx.online("files")
    wid = workspace.pk

    files.write_file(
        workspace_id=wid,
        actor=ACTOR,
        root="configs",
        path="notes/parity.md",
        data=FILES_FIRST.encode(),
    )
    _sees(ctx, workspace, "notes/parity.md", FILES_FIRST)
    files.write_file(
        workspace_id=wid,
        actor=ACTOR,
        root="configs",
        path="notes/parity.md",
        data=FILES_SECOND.encode(),
    )
    _sees(ctx, workspace, "notes/parity.md", FILES_SECOND)
    shown = files.read_file(workspace_id=wid, root="configs", path="notes/parity.md")
    _expect(shown.text == FILES_SECOND, f"reading the file back gave {shown.text!r}")

    listed = {
        entry.name: entry for entry in files.list_files(workspace_id=wid, root="configs").entries
    }
    _expect(
        listed.get("notes") is not None and listed["notes"].kind == "folder",
        f"the configs listing shows no folder notes: {sorted(listed)}",
    )
    inner = files.list_files(workspace_id=wid, root="configs", path="notes").entries
    _expect(
        [(e.name, e.size) for e in inner] == [("parity.md", len(FILES_SECOND.encode()))],
        f"the notes folder lists {[(e.name, e.size) for e in inner]}",
    )

    files.rename_file(
        workspace_id=wid,
        actor=ACTOR,
        root="configs",
        path="notes/parity.md",
        new_path="notes/renamed.md",
    )
    _sees(ctx, workspace, "notes/renamed.md", FILES_SECOND)
    _sees(ctx, workspace, "notes/parity.md", None)
    files.delete_file(workspace_id=wid, actor=ACTOR, root="configs", path="notes")
    _sees(ctx, workspace, "notes/renamed.md", None)
    names = {e.name for e in files.list_files(workspace_id=wid, root="configs").entries}
    _expect("notes" not in names, "the deleted folder notes is still listed")

    # The agent's /workspace: written and read back the same way.
    files.write_file(
        workspace_id=wid, actor=ACTOR, root="workspace", path="out/report.txt", data=b"42\n"
    )
    back = files.read_file(workspace_id=wid, root="workspace", path="out/report.txt")
    _expect(back.text == "42\n", f"/workspace/out/report.txt reads back as {back.text!r}")

    # What was written stays: the restarted agent reads it, and a stopped workspace's files
    # are still there to read.
    files.write_file(
        workspace_id=wid, actor=ACTOR, root="configs", path="keep.md", data=FILES_FIRST.encode()
    )
    before = ctx.row(workspace).instance_id
    dispatch.restart(workspace_id=wid, actor=ACTOR)
    restarted = ctx.wait(
        "a new instance coming online",
        lambda: (
            (row := ctx.row(workspace)).status == Status.ONLINE
            and row.instance_id != before
            and row
        ),
    )
    _sees(ctx, restarted, "keep.md", FILES_FIRST)
    dispatch.stop(workspace_id=wid, actor=ACTOR)
    ctx.reach(workspace, Status.OFFLINE)
    for root, path, text in (
        ("configs", "keep.md", FILES_FIRST),
        ("workspace", "out/report.txt", "42\n"),
    ):
        try:
            found = files.read_file(workspace_id=wid, root=root, path=path)
        except (dispatch.Refused, files.FileNotFound) as refused:
            raise ScenarioFailed(f"{root}/{path} of the stopped workspace: {refused}") from None
        _expect(found.text == text, f"{root}/{path} of the stopped workspace reads {found.text!r}")

    changes = list(
        ctx.row(workspace)
        .events.filter(
            event_type__in=[EventType.FILE_WRITTEN, EventType.FILE_RENAMED, EventType.FILE_DELETED]
        )
        .values_list("event_type", "payload")
    )
    _expect(len(changes) == 6, f"the six changes left {len(changes)} events")
    _expect(
        not any("Parity notes" in str(payload) or "42\n" in str(payload) for _, payload in changes),
        "a file event holds the file's content",
    )


PROBE = "parity-probe"
PROBE_SKILL = f"plugins/{PROBE}/SKILL.md"


def scenario_plugins(ctx: Context) -> None:
    probe = catalogue.get(PROBE)
    if probe is None:
        raise ScenarioSkipped(f"the plugin catalogue (MOLECULE_PLUGINS_DIR) has no {PROBE}")
    skill = probe.files["SKILL.md"].decode()

    # Named by a template: delivered at provision; one the catalogue lacks is a warning event.
    templated = _templated(ctx, "plugins-at-start", template={"plugins": [PROBE, "no-such-plugin"]})
    _sees(ctx, templated, PROBE_SKILL, skill)
    missing = ctx.row(templated).events.filter(event_type=EventType.PLUGIN_MISSING).first()
    _expect(
        missing is not None and missing.payload.get("plugin") == "no-such-plugin",
        "a template's plugin missing from the catalogue left no PLUGIN_MISSING event",
    )

    # Installed live on a running workspace, listed back, kept across a restart, removed.
    workspace = ctx.online("plugins")
    wid = workspace.pk
    plugins.install_plugin(workspace_id=wid, actor=ACTOR, name=PROBE)
    _sees(ctx, workspace, PROBE_SKILL, skill)
    listed = [(p.name, p.version) for p in plugins.installed_plugins(workspace_id=wid)]
    _expect(listed == [(PROBE, probe.version)], f"the installed plugins read back as {listed}")
    before = ctx.row(workspace).instance_id
    dispatch.restart(workspace_id=wid, actor=ACTOR)
    restarted = ctx.wait(
        "a new instance coming online",
        lambda: (
            (row := ctx.row(workspace)).status == Status.ONLINE
            and row.instance_id != before
            and row
        ),
    )
    _sees(ctx, restarted, PROBE_SKILL, skill)
    plugins.uninstall_plugin(workspace_id=wid, actor=ACTOR, name=PROBE)
    _sees(ctx, restarted, PROBE_SKILL, None)
    left = plugins.installed_plugins(workspace_id=wid)
    _expect(left == [], f"after the uninstall the configs still hold {left}")
    kinds = sorted(
        ctx.row(workspace)
        .events.filter(event_type__startswith="PLUGIN_")
        .values_list("event_type", flat=True)
    )
    _expect(
        kinds == [EventType.PLUGIN_INSTALLED, EventType.PLUGIN_UNINSTALLED],
        f"install and uninstall left the events {kinds}",
    )
