"""The agent contract's configs directory and environment, the same for every backend.

docs/agent-contract.md is the contract. Each backend delivers what :func:`contents` returns
where its agents run (a directory beside the workspace, a config volume, the provision request)
and sets :func:`contract_env` over the rest of the environment. Nothing here touches a
filesystem or an engine: the backends write, each with its own care (the local backend never
follows a link an agent left in its configs directory).

The template's files come from the database (``WorkspaceFile``, written by the org import,
which confines and caps them); they are judged again here, at the moment of use, and a spec
holding one that is not a plain relative path, or too large, is refused: nothing is written.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from workspaces.backends.base import BackendError, InstanceSpec
from workspaces.configfile import render
from workspaces.paths import relative_path_problem

TOKEN_FILE = ".auth_token"
CONFIG_FILE = "config.yaml"
# Where containers and VMs find the directory (Molecule's default for both variables).
CONFIGS_MOUNT = "/configs"
# At the moment of use, whatever the import allowed: per file, all together, how many.
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 4 * 1024 * 1024
MAX_FILES = 500
MAX_PATH = 500
MAX_PART = 255
FILE_MODE = 0o600
DIR_MODE = 0o700


def path_problem(path: object) -> str | None:
    """Why ``path`` cannot name a file in the configs directory, or None (the shared rule of
    workspaces/paths.py: plain relative paths only)."""
    return relative_path_problem(path, max_path=MAX_PATH, max_part=MAX_PART)


def contents(spec: InstanceSpec, *, port: int) -> dict[str, bytes]:
    """Relative path -> bytes of everything the configs directory receives at this start.

    The template's files, then ``.auth_token`` (the instance's token, no newline) and
    ``config.yaml`` (the spec's config with ``a2a.port`` = ``port``, the port the backend
    exposes), which a template file of the same name never replaces. Raises a permanent
    BackendError, before anything is written, for a file path or size the contract refuses.
    """
    problems = []
    total = 0
    for path, data in spec.files.items():
        if why := path_problem(path):
            problems.append(why)
        elif not isinstance(data, bytes | bytearray | memoryview):
            problems.append(f"{path!r} is not bytes")
        elif len(data) > MAX_FILE_BYTES:
            problems.append(f"{path!r} is larger than {MAX_FILE_BYTES} bytes")
        else:
            total += len(data)
    if len(spec.files) > MAX_FILES:
        problems.append(f"there are {len(spec.files)} files, more than {MAX_FILES}")
    if total > MAX_TOTAL_BYTES:
        problems.append(f"the files hold {total} bytes, more than {MAX_TOTAL_BYTES}")
    if not problems:
        # A path that is a file and also the folder of another (a and a/b) cannot be both.
        folders: set[str] = set()
        for path in spec.files:
            parts = path.split("/")
            folders.update("/".join(parts[:n]) for n in range(1, len(parts)))
        if clash := sorted(folders & (set(spec.files) | {TOKEN_FILE, CONFIG_FILE})):
            problems.append(f"{clash[0]!r} is both a file and a folder")
    if problems:
        raise BackendError(
            "The template's files cannot be delivered to the agent's configs directory: "
            + "; ".join(problems[:5])
            + ". Fix the template's files_dir and import it again.",
            permanent=True,
        )
    found = {path: bytes(data) for path, data in spec.files.items()}
    found.pop(TOKEN_FILE, None)
    found.pop(CONFIG_FILE, None)
    config: dict[str, Any] = dict(spec.config)
    config["a2a"] = {**(spec.config.get("a2a") or {}), "port": port}
    found[TOKEN_FILE] = spec.token.encode()
    found[CONFIG_FILE] = render(config)
    return found


def platform_url_problem(url: str) -> str | None:
    """Why agents calling ``url`` would be turned away by this console, or None.

    Django answers 400 to a Host that ``ALLOWED_HOSTS`` does not accept, so an agent given such
    a URL could never register: the start is refused with the reason instead.
    """
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"PLATFORM_URL {url!r} is not an http(s) URL with a host"
    domain, _ = split_domain_port(parts.netloc.rsplit("@", 1)[-1])
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return (
            f"the console would refuse agents calling {url}: its host is not in ALLOWED_HOSTS "
            f"({', '.join(allowed) or 'empty'}); add it there, or set MOLECULE_REGISTRY_URL "
            "(MOLECULE_DOCKER_REGISTRY_URL for containers) to an address the console accepts"
        )
    return None


def checked_platform_url(url: str) -> str:
    if why := platform_url_problem(url):
        raise BackendError(f"The agent cannot be started: {why}.", permanent=True)
    return url


def contract_env(spec: InstanceSpec, *, platform_url: str, configs_dir: str) -> dict[str, str]:
    """The contract's four variables, set by the backend over everything else."""
    return {
        "WORKSPACE_ID": spec.workspace_id,
        "PLATFORM_URL": platform_url,
        "CONFIGS_DIR": configs_dir,
        "WORKSPACE_CONFIG_PATH": configs_dir,
    }
