"""What a workspace's container is, independent of any engine connection.

Names, labels, the ``containers.create`` options that give a container its tier's isolation,
how the registry URL is rewritten for a container, and how to read the engine's errors (Docker
and Podman answer some of them differently). Pure functions: workspaces/backends/docker.py
applies them on a live engine.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import tarfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from docker.errors import APIError, NotFound

from workspaces.backends.base import BackendError
from workspaces.backends.configs import CONFIGS_MOUNT
from workspaces.paths import normal_form, workspace_dir_problem
from workspaces.tiers import TierSettings

AGENT_PORT = 8000
LABEL_CONSOLE = "molecule.console"
LABEL_WORKSPACE = "molecule.workspace"
LABEL_ORG = "molecule.org"
LABEL_GENERATION = "molecule.generation"
LABEL_TIER = "molecule.tier"
CONSOLE_HOST_ALIAS = "molecule-console"
SOCKET_IN_CONTAINER = "/var/run/docker.sock"
TMPFS_TMP = "rw,size=64m,mode=1777"
MiB = 1024 * 1024


def container_name(workspace_id: str) -> str:
    return "ws-" + workspace_id.replace("-", "")[:12]


def volume_name(workspace_id: str) -> str:
    return f"ws-{workspace_id}-workspace"


def configs_volume_name(workspace_id: str) -> str:
    """The volume mounted at /configs: the agent contract's configs directory."""
    return f"ws-{workspace_id}-configs"


def configs_archive(content: dict[str, bytes], *, mtime: float) -> bytes:
    """A tar of the configs (relative path -> bytes, judged already) for the engine to unpack at
    /configs: every folder on the way as a directory entry (0700), every file 0600, owned by
    root. The engine replaces whatever stands at a delivered path, a link included."""
    buffer = io.BytesIO()
    folders: list[str] = []
    for path in content:
        parts = path.split("/")
        for n in range(1, len(parts)):
            folder = "/".join(parts[:n])
            if folder not in folders:
                folders.append(folder)
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, mtime
            tar.addfile(info)
        for path, data in content.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o600, mtime
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def validated_workspace_dir(path: str) -> str:
    """The operator's ``workspace_dir``, in its normal form, if it is safe to bind at /workspace
    now (judged again at the moment of use: a symbolic link may have appeared since it was
    set); else BackendError."""
    if problem := workspace_dir_problem(path, exact_spelling=False):
        raise BackendError(
            f"The workspace directory cannot be mounted at /workspace: {problem}. "
            "Give the workspace an absolute directory of its own (e.g. /srv/<org>/<name>), "
            "or none for a docker volume.",
            permanent=True,
        )
    return normal_form(path)


def container_options(
    tier: TierSettings, *, storage: str, network: str, engine_socket: str, configs: str = ""
) -> dict[str, Any]:
    """The ``containers.create`` keyword arguments that give a container its tier's isolation.

    ``storage`` is a volume name or a host directory for /workspace (ignored when the tier has
    none); ``network`` the bridge network for tiers without the host network; ``engine_socket``
    the engine's unix socket on the host, mounted into T4 containers; ``configs`` the volume
    mounted at /configs (every tier: the agent contract's configs directory).
    """
    options: dict[str, Any] = {
        "read_only": tier.read_only_rootfs,
        "privileged": tier.privileged,
    }
    if tier.tmpfs_tmp:
        options["tmpfs"] = {"/tmp": TMPFS_TMP}
    if tier.memory_bytes:
        # Equal swap limit: no swapping past the cap, a hard limit like the tier says.
        options["mem_limit"] = tier.memory_bytes
        options["memswap_limit"] = tier.memory_bytes
    if tier.cpus:
        options["nano_cpus"] = int(tier.cpus * 1e9)
    if tier.host_pid:
        options["pid_mode"] = "host"
    volumes: dict[str, dict[str, str]] = {}
    if configs:
        volumes[configs] = {"bind": CONFIGS_MOUNT, "mode": "rw"}
    if tier.workspace_volume:
        volumes[storage] = {"bind": "/workspace", "mode": "rw"}
    if tier.engine_socket:
        volumes[engine_socket] = {"bind": SOCKET_IN_CONTAINER, "mode": "rw"}
    if volumes:
        options["volumes"] = volumes
    if tier.host_network:
        options["network_mode"] = "host"
    else:
        options["network"] = network
        options["ports"] = {f"{AGENT_PORT}/tcp": ("127.0.0.1", None)}
    return options


def is_loopback_or_wildcard(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def with_host(url: str, host: str) -> str:
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def is_conflict(error: APIError) -> bool:
    # Docker answers 409 to a duplicate name; Podman's compatible API answers 500.
    text = str(error.explanation or "").lower()
    return error.status_code == 409 or (
        error.status_code == 500 and ("already" in text or "in use" in text)
    )


def is_gone(error: APIError) -> bool:
    # An object removed while being looked at: Docker answers 404 (NotFound); Podman may answer
    # 500 "no such container" (e.g. a list that inspects each container it found).
    text = str(error.explanation or "").lower()
    return isinstance(error, NotFound) or (
        error.status_code == 500 and ("no such" in text or "does not exist" in text)
    )


@contextlib.contextmanager
def unless_gone() -> Iterator[None]:
    """Swallow the error of an object that no longer exists: idempotent stop and remove."""
    try:
        yield
    except APIError as error:
        if not is_gone(error):
            raise
