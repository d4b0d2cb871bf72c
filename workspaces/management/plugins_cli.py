"""``manage.py workspace plugins …``: a workspace's plugins from the command line.

workspace plugins ls        WORKSPACE          installed ones, then the catalogue's others
workspace plugins install   WORKSPACE NAME     from MOLECULE_PLUGINS_DIR, live
workspace plugins uninstall WORKSPACE NAME
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError

from workspaces.dispatch import InvalidRequest, Refused, files, plugins


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("plugins", help="List, install or uninstall plugins.")
    verbs = parser.add_subparsers(dest="plugins_action", required=True)
    for name, help_text in (
        ("ls", "List installed plugins and the catalogue's."),
        ("install", "Install a plugin from the catalogue."),
        ("uninstall", "Uninstall a plugin."),
    ):
        verb = verbs.add_parser(name, help=help_text)
        verb.add_argument("workspace", help="Workspace id, id prefix or name.")
        verb.add_argument("--org", help="Org slug, to tell same-named workspaces apart.")
        if name != "ls":
            verb.add_argument("name", help="The plugin's name.")


def _refusals[T](call: Callable[[], T]) -> T:
    try:
        return call()
    except (InvalidRequest, Refused, files.FileNotFound, files.FilesFailed) as refused:
        raise CommandError(str(refused)) from None


def run(command: Any, workspace_id: Any, actor: str, options: dict[str, Any]) -> None:
    action, out = options["plugins_action"], command.stdout
    if action == "ls":
        installed = _refusals(lambda: plugins.installed_plugins(workspace_id=workspace_id))
        names = {plugin.name for plugin in installed}
        for plugin in installed:
            out.write(f"installed  {plugin.name} {plugin.version}  {plugin.description}")
        for other in plugins.available():
            if other.name not in names:
                out.write(f"available  {other.name} {other.version}  {other.description}")
    elif action == "install":
        plugin = _refusals(
            lambda: plugins.install_plugin(
                workspace_id=workspace_id, actor=actor, name=options["name"]
            )
        )
        out.write(f"{plugin.name} {plugin.version} installed ({len(plugin.files)} files)")
    else:
        _refusals(
            lambda: plugins.uninstall_plugin(
                workspace_id=workspace_id, actor=actor, name=options["name"]
            )
        )
        out.write(f"{options['name']} uninstalled")
