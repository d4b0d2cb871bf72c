"""Plugins on a workspace: install, uninstall and list them, from the catalogue, on any backend.

A plugin (workspaces/plugins.py, ``MOLECULE_PLUGINS_DIR``) is installed by writing its files and
its manifest into the workspace's configs under ``plugins/<name>/``, through the same backend
file methods as the file browser (workspaces/dispatch/files.py), so every backend delivers it
live: the running agent finds it at once (local: its directory; docker: its /configs volume;
controlplane: the VM's /configs through the control plane's files endpoints). The name is also
added to the workspace's ``plugins`` (``Workspace.template``, what config.yaml lists), so every
later start delivers it again from the catalogue, as it delivers a template's plugins: on the
control plane, whose /configs is written anew at each start, the plugin survives a restart too.

Installing again replaces the plugin's folder (an upgrade to the catalogue's version). A write
that fails midway removes what it wrote: nothing half-installed stays. Uninstall removes the
folder and the name. The list is read back from the configs (``plugins/*/plugin.toml``), not
from the row: it says what the agent really has. Installs and uninstalls are events (name,
version, files and bytes); a plugin a template names that the catalogue lacks is a
PLUGIN_MISSING event at start, and the workspace starts without it.
"""

from __future__ import annotations

import contextlib
import tomllib
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from workspaces import events
from workspaces import plugins as catalogue
from workspaces.backends import BackendError
from workspaces.backends.files import CONFIGS, FileProblem
from workspaces.dispatch.core import InvalidRequest, locked
from workspaces.dispatch.files import FileNotFound, target, translated
from workspaces.models import EventType

FOLDER = "plugins"


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    description: str


def _checked(name: object) -> str:
    if why := catalogue.name_problem(name):
        raise InvalidRequest(f"{why}.")
    return str(name)


def _named(workspace_id: Any, name: str, *, add: bool, event: EventType, payload: dict) -> None:
    """Add ``name`` to (or drop it from) the workspace's plugins, with the event, at once."""
    with transaction.atomic():
        workspace = locked(workspace_id)
        template = dict(workspace.template or {})
        names = [n for n in template.get("plugins") or [] if n != name]
        template["plugins"] = [*names, name] if add else names
        workspace.template = template
        workspace.save(update_fields=["template", "updated_at"])
        events.record(event, actor=payload.pop("actor"), workspace=workspace, payload=payload)


def install_plugin(*, workspace_id: Any, actor: str, name: str) -> catalogue.Plugin:
    """Copy the catalogue's plugin ``name`` into the workspace's configs; returns it."""
    name = _checked(name)
    plugin = catalogue.get(name)
    if plugin is None:
        raise InvalidRequest(
            f"There is no plugin {name!r} in the catalogue (MOLECULE_PLUGINS_DIR); "
            f"it holds: {', '.join(p.name for p in catalogue.catalogue()) or 'nothing'}."
        )
    workspace, backend, storage = target(workspace_id)
    folder = f"{FOLDER}/{name}"
    try:
        try:
            backend.delete_file(storage, CONFIGS, folder)
        except FileProblem as problem:
            if problem.kind != "missing":
                raise
        try:
            for path, data in plugin.files.items():
                backend.write_file(storage, CONFIGS, f"{folder}/{path}", data)
        except BackendError:
            # Nothing half-installed: what was written goes again, as far as it can.
            with contextlib.suppress(BackendError):
                backend.delete_file(storage, CONFIGS, folder)
            raise
    except BackendError as error:
        raise translated(error) from None
    _named(
        workspace.pk,
        name,
        add=True,
        event=EventType.PLUGIN_INSTALLED,
        payload={
            "actor": actor,
            "plugin": name,
            "version": plugin.version,
            "files": len(plugin.files),
            "size": plugin.size,
            "backend": workspace.backend,
        },
    )
    return plugin


def uninstall_plugin(*, workspace_id: Any, actor: str, name: str) -> None:
    """Remove the plugin's folder from the configs and its name from the workspace's plugins."""
    name = _checked(name)
    workspace, backend, storage = target(workspace_id)
    listed = name in ((workspace.template or {}).get("plugins") or [])
    try:
        backend.delete_file(storage, CONFIGS, f"{FOLDER}/{name}")
    except BackendError as error:
        failure = translated(error)
        if not (isinstance(failure, FileNotFound) and listed):
            if isinstance(failure, FileNotFound):
                raise FileNotFound(f"Plugin {name!r} is not installed.") from None
            raise failure from None
    _named(
        workspace.pk,
        name,
        add=False,
        event=EventType.PLUGIN_UNINSTALLED,
        payload={"actor": actor, "plugin": name, "backend": workspace.backend},
    )


def installed_plugins(*, workspace_id: Any) -> list[Installed]:
    """The plugins in the workspace's configs, read back from their manifests."""
    _, backend, storage = target(workspace_id)
    try:
        listing = backend.list_files(storage, CONFIGS, FOLDER)
    except FileProblem as problem:
        if problem.kind == "missing":
            return []
        raise translated(problem) from None
    except BackendError as error:
        raise translated(error) from None
    found = []
    for entry in listing.entries:
        if entry.kind != "folder" or catalogue.name_problem(entry.name):
            continue
        try:
            raw = backend.read_file(
                storage, CONFIGS, f"{FOLDER}/{entry.name}/{catalogue.MANIFEST}", max_bytes=65536
            )
            manifest = tomllib.loads(raw.decode())
        except (BackendError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            manifest = {}
        found.append(
            Installed(
                entry.name,
                str(manifest.get("version", "")),
                str(manifest.get("description", "")),
            )
        )
    return found


def available() -> list[catalogue.Plugin]:
    """The catalogue, for the doors that offer what may be installed."""
    return catalogue.catalogue()
