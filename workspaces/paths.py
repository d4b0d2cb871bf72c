"""The one rule for an operator's ``workspace_dir``, used wherever one comes in or is used.

Org import, the API and team expand refuse a bad one with its sentence; the local and docker
backends check it again before they create, chdir into or bind-mount it (a row may predate a
rule). One function, so a path the import accepts is never refused later at start.
"""

from __future__ import annotations

import posixpath

# A workspace_dir inside one of these would hand the agent the host's own system.
SYSTEM_PATHS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib",
    "/var/run",
)
# Allowed to hold workspace directories, but too broad to be one.
BROAD_PATHS = frozenset({"/", "/home", "/mnt", "/media", "/opt", "/srv", "/tmp", "/var"})


def workspace_dir_problem(value: object) -> str | None:
    """Why ``value`` cannot be a workspace directory (a sentence's end), or None when it can."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if not value.startswith("/"):
        return "must be an absolute path"
    if ".." in value.split("/"):
        return "must not contain '..'"
    normal = posixpath.normpath(value)
    if normal in BROAD_PATHS:
        return f"{value} is a whole top-level directory"
    if any(normal == p or normal.startswith(p + "/") for p in SYSTEM_PATHS):
        return f"{value} is a system path"
    return None
