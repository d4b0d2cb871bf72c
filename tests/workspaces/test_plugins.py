"""Plugins from the catalogue on the local backend's real filesystem: install, list, uninstall,
the catalogue's refusals, and a template's plugin at start (no agent runs here; the agent
reading a plugin is the parity row's part, tests/contract/)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orgs.models import Org
from workspaces import agent_config, backends, dispatch
from workspaces import plugins as catalogue
from workspaces.dispatch import plugins
from workspaces.models import EventType, Status, Workspace

pytestmark = pytest.mark.django_db


def make_plugin(root: Path, name: str, manifest: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(manifest)
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    return folder


@pytest.fixture
def shelf(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "catalogue"
    root.mkdir()
    settings.MOLECULE_PLUGINS_DIR = str(root)
    make_plugin(
        root,
        "web-search",
        'name = "web-search"\nversion = "0.3.0"\ndescription = "Search."\n',
        {"SKILL.md": "# Search\n", "tools/search.py": "print('x')\n"},
    )
    return root


@pytest.fixture
def workspace(settings: Any, tmp_path: Path, org: Org) -> Workspace:
    settings.MOLECULE_BACKENDS = ["local"]
    settings.MOLECULE_LOCAL_ROOT = tmp_path / "root"
    backends.reset()
    row = Workspace.objects.create(
        org=org, name="Plugged", backend="local", status=Status.OFFLINE, tier=2
    )
    (tmp_path / "root" / str(row.pk) / "configs").mkdir(parents=True)
    return row


def configs(workspace: Workspace, tmp_path: Path) -> Path:
    return tmp_path / "root" / str(workspace.pk) / "configs"


def test_install_copies_the_files_lists_them_back_and_uninstall_removes_them(
    shelf: Path, workspace: Workspace, tmp_path: Path
) -> None:
    plugin = plugins.install_plugin(workspace_id=workspace.pk, actor="t", name="web-search")
    folder = configs(workspace, tmp_path) / "plugins" / "web-search"
    assert (folder / "SKILL.md").read_text() == "# Search\n"
    assert (folder / "tools" / "search.py").read_text() == "print('x')\n"
    assert (folder / "plugin.toml").exists()
    listed = plugins.installed_plugins(workspace_id=workspace.pk)
    assert [(p.name, p.version, p.description) for p in listed] == [
        ("web-search", "0.3.0", "Search.")
    ]
    workspace.refresh_from_db()
    assert workspace.template["plugins"] == ["web-search"]
    event = workspace.events.get(event_type=EventType.PLUGIN_INSTALLED)
    assert event.payload == {
        "plugin": "web-search",
        "version": "0.3.0",
        "files": 3,
        "size": plugin.size,
        "backend": "local",
    }

    plugins.uninstall_plugin(workspace_id=workspace.pk, actor="t", name="web-search")
    assert not folder.exists()
    assert plugins.installed_plugins(workspace_id=workspace.pk) == []
    workspace.refresh_from_db()
    assert workspace.template["plugins"] == []
    with pytest.raises(dispatch.FileNotFound, match="not installed"):
        plugins.uninstall_plugin(workspace_id=workspace.pk, actor="t", name="web-search")


@pytest.mark.parametrize("name", ["nope", "../etc", "Web-Search", "", "a" * 70, ".auth_token"])
def test_a_name_the_catalogue_does_not_hold_is_refused_and_nothing_is_written(
    shelf: Path, workspace: Workspace, tmp_path: Path, name: str
) -> None:
    with pytest.raises(dispatch.InvalidRequest):
        plugins.install_plugin(workspace_id=workspace.pk, actor="t", name=name)
    assert list(configs(workspace, tmp_path).iterdir()) == []
    assert not workspace.events.filter(event_type=EventType.PLUGIN_INSTALLED).exists()


def test_the_catalogue_leaves_out_folders_that_are_not_plugins_and_says_why(
    shelf: Path, tmp_path: Path
) -> None:
    make_plugin(shelf, "no-manifest", "", {})
    (shelf / "no-manifest" / "plugin.toml").unlink()
    make_plugin(shelf, "wrong-name", 'name = "other"\n', {})
    make_plugin(shelf, "escapes", 'name = "escapes"\nfiles = ["../web-search/SKILL.md"]\n', {})
    linked = make_plugin(shelf, "linked", 'name = "linked"\nfiles = ["secret"]\n', {})
    outside = tmp_path / "host-secret"
    outside.write_text("host")
    os.symlink(outside, linked / "secret")
    make_plugin(shelf, "broken", "name = [", {})

    assert [p.name for p in catalogue.catalogue()] == ["web-search"]
    reasons = "\n".join(catalogue.problems())
    for said in ("no plugin.toml", "names 'other'", "'..'", "through a link", "cannot be read"):
        assert said in reasons
    assert catalogue.get("linked") is None


def test_a_templates_plugins_come_with_the_configs_and_a_missing_one_is_named(
    shelf: Path, workspace: Workspace
) -> None:
    workspace.template = {"plugins": ["web-search", "not-in-catalogue"]}
    files = agent_config.files(workspace)
    assert files["plugins/web-search/SKILL.md"] == b"# Search\n"
    assert agent_config.missing_plugins(workspace) == ["not-in-catalogue"]
    assert agent_config.config(workspace)["plugins"] == ["web-search", "not-in-catalogue"]


def test_the_command_installs_lists_and_uninstalls(shelf: Path, workspace: Workspace) -> None:
    out = io.StringIO()
    wid = str(workspace.pk)
    call_command("workspace", "plugins", "ls", wid, stdout=out)
    call_command("workspace", "plugins", "install", wid, "web-search", stdout=out)
    call_command("workspace", "plugins", "ls", wid, stdout=out)
    call_command("workspace", "plugins", "uninstall", wid, "web-search", stdout=out)
    said = out.getvalue().splitlines()
    assert said == [
        "available  web-search 0.3.0  Search.",
        "web-search 0.3.0 installed (3 files)",
        "installed  web-search 0.3.0  Search.",
        "web-search uninstalled",
    ]
    with pytest.raises(CommandError, match="no plugin 'nope'"):
        call_command("workspace", "plugins", "install", wid, "nope", stdout=out)
