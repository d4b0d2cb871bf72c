"""The runtime catalogue: which program runs a workspace of each runtime, on each backend.

A workspace names a runtime (``langgraph``, ``claude-code``, ``hermes``, …); the catalogue says
what starts it: on the local backend a command, on docker and the control plane an image.
``MOLECULE_RUNTIMES_FILE`` names a TOML file of the operator's own::

    [runtimes.hermes]
    command = ["/opt/hermes/start"]     # local: argv of the agent process
    image = "molecule-hermes:1.4"       # docker, controlplane

Without the file, a built-in catalogue maps the runtime names Molecule knows to the console's
own agent (``workspaces/agent/main.py`` locally, ``MOLECULE_WORKSPACE_IMAGE`` in containers), so
a fresh console runs every Molecule template. With the file, its entries are added to (and
override) the built-in ones. A runtime in neither is refused at create and import, with the list
of the known ones.

Whatever runs, the agent contract is the same (docs/agent-contract.md): its configs directory
with ``.auth_token`` and ``config.yaml``, and ``WORKSPACE_ID``, ``PLATFORM_URL``,
``CONFIGS_DIR`` and ``WORKSPACE_CONFIG_PATH`` in its environment.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# Molecule's runtimes (its provisioner's image table), all served by the built-in agent until the
# operator's catalogue names their own programs.
KNOWN = (
    "langgraph",
    "claude-code",
    "openclaw",
    "deepagents",
    "crewai",
    "autogen",
    "hermes",
    "gemini-cli",
)
BUILTIN = "builtin"  # the command/image value that means "the console's own agent"


class CatalogueError(ValueError):
    """The runtimes file cannot be used; the sentence says where and why."""


@dataclass(frozen=True)
class Runtime:
    name: str
    # argv for the local backend; (BUILTIN,) for the console's own agent.
    command: tuple[str, ...] = (BUILTIN,)
    # The image for docker and the control plane; BUILTIN for MOLECULE_WORKSPACE_IMAGE.
    image: str = BUILTIN

    @property
    def builtin_command(self) -> bool:
        return self.command == (BUILTIN,)

    @property
    def builtin_image(self) -> bool:
        return self.image == BUILTIN

    def describe(self) -> str:
        """What runs it, in a phrase for the workspace page."""
        command = "the built-in agent" if self.builtin_command else " ".join(self.command)
        image = "the built-in agent image" if self.builtin_image else self.image
        return f"local: {command}; containers and VMs: {image}"


def _entry(name: str, raw: object, where: str) -> Runtime:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: [runtimes.{name}] must be a table")
    unknown = set(raw) - {"command", "image"}
    if unknown:
        raise CatalogueError(f"{where}: [runtimes.{name}] has unknown keys: {sorted(unknown)}")
    command = raw.get("command", [BUILTIN])
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) and part for part in command)
    ):
        raise CatalogueError(f"{where}: runtimes.{name}.command must be a list of strings")
    image = raw.get("image", BUILTIN)
    if not isinstance(image, str) or not image:
        raise CatalogueError(f"{where}: runtimes.{name}.image must be a non-empty string")
    return Runtime(name=name, command=tuple(command), image=image)


def load(path: str | Path | None) -> dict[str, Runtime]:
    """The catalogue: the built-in entries, then the file's (``CatalogueError`` if unusable)."""
    catalogue = {name: Runtime(name) for name in KNOWN}
    if not path:
        return catalogue
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise CatalogueError(f"{where}: cannot be read ({error.strerror})") from error
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{where}: is not TOML ({error})") from error
    runtimes = data.get("runtimes", {})
    if not isinstance(runtimes, dict) or set(data) - {"runtimes"}:
        raise CatalogueError(f"{where}: must hold only [runtimes.<name>] tables")
    for name, raw in runtimes.items():
        catalogue[name] = _entry(name, raw, where)
    return catalogue


@functools.cache
def _cached(path: str) -> dict[str, Runtime]:
    return load(path or None)


def catalogue() -> dict[str, Runtime]:
    return _cached(str(settings.MOLECULE_RUNTIMES_FILE or ""))


def get(name: str) -> Runtime | None:
    """The runtime, or None when it is unknown or the catalogue cannot be read."""
    try:
        return catalogue().get(name)
    except CatalogueError:
        return None


def unknown_runtime(name: object) -> str | None:
    """Why ``name`` is no runtime this console can run, or None."""
    try:
        known_runtimes = catalogue()
    except CatalogueError as error:
        # Also a system check at start (workspaces/checks.py); never a 500 on a create.
        return f"the runtime catalogue cannot be read: {error}"
    if isinstance(name, str) and name in known_runtimes:
        return None
    known = ", ".join(sorted(known_runtimes))
    return f"unknown runtime {name!r}: this console runs {known} (MOLECULE_RUNTIMES_FILE adds more)"
