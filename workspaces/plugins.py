"""The plugin catalogue: ``MOLECULE_PLUGINS_DIR``, one folder per plugin, each with a manifest.

A plugin is a folder holding ``plugin.toml``::

    name = "web-search"            # the folder's name; letters, digits, . _ -
    version = "1.2.0"
    description = "Search the web from the agent."
    files = ["SKILL.md", "tools/search.py"]   # optional: every regular file of the folder

Installing one (workspaces/dispatch/plugins.py) copies its files and its manifest into the
workspace's configs under ``plugins/<name>/``, through the files machinery, so every backend
delivers it; a template that names it in ``plugins`` gets it at every start (agent_config).
The catalogue is read from disk at each use (it is small, and an operator may add a plugin
while the console runs); a folder whose manifest is missing or wrong is left out, with the
reason (:func:`problems`), never half-read. Links are never followed out of a plugin's folder.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from workspaces.paths import relative_path_problem as path_problem

MANIFEST = "plugin.toml"
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_FILES = 100
MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Plugin:
    name: str
    version: str
    description: str
    # Relative path -> bytes, the manifest included (what lands under plugins/<name>/).
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(map(len, self.files.values()))


class BadPlugin(ValueError):
    pass


def catalogue_dir() -> Path | None:
    value = str(settings.MOLECULE_PLUGINS_DIR or "")
    return Path(value) if value else None


def name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return (
            f"{str(name)[:80]!r} is not a plugin name (lowercase letters, digits, '.', '_' "
            "and '-', at most 64)"
        )
    return None


def _read(folder: Path) -> Plugin:
    manifest = folder / MANIFEST
    if manifest.is_symlink() or not manifest.is_file():
        raise BadPlugin(f"{folder.name}: no {MANIFEST}")
    try:
        data = tomllib.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise BadPlugin(f"{folder.name}: {MANIFEST} cannot be read: {error}") from None
    name, version = data.get("name"), data.get("version", "")
    if name != folder.name:
        raise BadPlugin(f"{folder.name}: the manifest names {name!r}, not its folder's name")
    if not isinstance(version, str) or not isinstance(data.get("description", ""), str):
        raise BadPlugin(f"{folder.name}: version and description must be strings")
    listed = data.get("files")
    if listed is None:
        listed = sorted(
            str(path.relative_to(folder))
            for path in folder.rglob("*")
            if path.is_file() and not path.is_symlink() and path.name != MANIFEST
        )
    if not isinstance(listed, list) or len(listed) > MAX_FILES:
        raise BadPlugin(f"{folder.name}: files must be a list of at most {MAX_FILES} paths")
    files: dict[str, bytes] = {MANIFEST: manifest.read_bytes()}
    for relative in listed:
        if why := path_problem(relative):
            raise BadPlugin(f"{folder.name}: the file path {why}")
        path = folder / relative
        # No link anywhere on the way: a plugin ships its own files only.
        here = folder
        for part in str(relative).split("/"):
            here = here / part
            if here.is_symlink():
                raise BadPlugin(f"{folder.name}: {relative} goes through a link")
        if not path.is_file():
            raise BadPlugin(f"{folder.name}: {relative} is not a file")
        files[str(relative)] = path.read_bytes()
    plugin = Plugin(name, version, str(data.get("description", "")), files)
    if plugin.size > MAX_BYTES:
        raise BadPlugin(f"{folder.name}: its files hold more than {MAX_BYTES} bytes")
    return plugin


def _folders() -> list[Path]:
    root = catalogue_dir()
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def catalogue() -> list[Plugin]:
    """Every valid plugin of the catalogue, by name."""
    found = []
    for folder in _folders():
        try:
            found.append(_read(folder))
        except BadPlugin:
            continue
    return found


def problems() -> list[str]:
    """Why each folder of the catalogue that is not a plugin is not one."""
    found = []
    for folder in _folders():
        try:
            _read(folder)
        except BadPlugin as bad:
            found.append(str(bad))
    return found


def get(name: str) -> Plugin | None:
    """The plugin called ``name``, or None when the catalogue has no valid one by that name."""
    root = catalogue_dir()
    if name_problem(name) or root is None:
        return None
    folder = root / name
    if folder.is_symlink() or not folder.is_dir():
        return None
    try:
        return _read(folder)
    except BadPlugin:
        return None


def delivered(names: list[str]) -> tuple[dict[str, bytes], list[str]]:
    """(configs path -> bytes of the plugins found, names not in the catalogue), for a start."""
    files: dict[str, bytes] = {}
    missing = []
    for name in names:
        plugin = get(name) if isinstance(name, str) else None
        if plugin is None:
            missing.append(str(name))
            continue
        files |= {f"plugins/{name}/{path}": data for path, data in plugin.files.items()}
    return files, missing
