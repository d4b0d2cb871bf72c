"""The one rule for an operator's ``workspace_dir``, used wherever one comes in or is used.

Org import, the API, the page, the admin and team specs refuse a bad one with its sentence
(through ``workspaces.fields``); the local and docker backends check it again at the moment they
create, chdir into or bind-mount it (a row may predate a rule, and the filesystem may have
changed since). One function, so a path the import accepts is never refused later at start.

A path is judged by what it names, not by how it is spelt: repeated slashes, ``.`` segments and
a trailing slash are taken out first (``//etc``, ``/./etc`` and ``/etc/.`` are /etc; note that
``posixpath.normpath("//etc")`` keeps the two slashes, as POSIX allows), and the longest part of
it that exists is resolved, so a symbolic link (``/srv/link -> /etc``) or another name for a
system directory (a bind mount) is refused too. Letter case is kept: Linux filesystems are
case-sensitive, and /ETC is not /etc (if /ETC turned out to be /etc under another name, the
same-file check below refuses it).

At the doors, an acceptable directory must also be *written* in that plain form (``/srv/acme/``
is refused with "write it as /srv/acme"), so what is stored is always the normal spelling and
nothing downstream normalises. The backends accept an older row's spelling and use its normal
form.
"""

from __future__ import annotations

import os
import posixpath
import re

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
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normal_form(path: str) -> str:
    """``path`` without repeated slashes, ``.`` segments or a trailing slash (``..`` is kept:
    it is refused, never resolved, since what it climbs out of may be a link)."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


def _system_path(normal: str) -> str | None:
    for system in SYSTEM_PATHS:
        if normal == system or normal.startswith(system + "/"):
            return system
    return None


def _existing_ancestor(normal: str) -> str:
    """The longest leading part of ``normal`` that exists (as anything, a dangling link too)."""
    probe = normal
    while probe != "/" and not os.path.lexists(probe):
        probe = posixpath.dirname(probe)
    return probe


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _filesystem_problem(value: str, normal: str) -> str | None:
    """What the filesystem says ``normal`` really is, when that is not what it says it is."""
    existing = _existing_ancestor(normal)
    real = os.path.realpath(existing)
    if real != existing:
        resolved = (real.rstrip("/") + normal[len(existing) :]) or "/"
        return f"{value} resolves to {resolved} through a symbolic link; name the real directory"
    # Another name for a system directory (a bind mount, a case-insensitive filesystem): the
    # existing part, or any directory above it, is the very same directory as a system path.
    systems = {identity: system for system in SYSTEM_PATHS if (identity := _identity(system))}
    probe = existing
    while probe != "/":
        if (system := systems.get(_identity(probe))) and probe != system:
            return f"{value} is the system path {system} under another name ({probe})"
        probe = posixpath.dirname(probe)
    return None


def workspace_dir_problem(value: object, *, exact_spelling: bool = True) -> str | None:
    """Why ``value`` cannot be a workspace directory (a sentence's end), or None when it can.

    ``exact_spelling=False`` is for the backends at start: a row stored before the spelling rule
    (``/srv/acme/``) is judged, and then used, in its normal form (:func:`normal_form`).
    """
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if CONTROL.search(value):
        return "must not contain control characters"
    if not value.startswith("/"):
        return "must be an absolute path"
    if ".." in value.split("/"):
        return "must not contain '..'"
    normal = normal_form(value)
    spelt = "" if normal == value else f" ({normal})"
    if normal in BROAD_PATHS:
        return f"{value} is a whole top-level directory{spelt}"
    if _system_path(normal):
        return f"{value} is a system path{spelt}"
    if problem := _filesystem_problem(value, normal):
        return problem
    if exact_spelling and spelt:
        return f"{value} is not written plainly: write it as {normal}"
    return None


def relative_path_problem(path: object, *, max_path: int = 500, max_part: int = 255) -> str | None:
    """Why ``path`` cannot name something inside a root (the agent's configs directory, a
    workspace's storage, a plugin's folder), or None.

    Only plain relative paths: no absolute path, no ``..`` or ``.`` segment, no empty segment
    (``a//b``, a trailing slash), no backslash, no NUL or other control character.
    """
    if not isinstance(path, str) or not path:
        return "is empty"
    shown = repr(path[:80])
    if len(path) > max_path:
        return f"{shown}… is longer than {max_path} characters"
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        return f"{shown} holds a NUL or another control character"
    if path.startswith("/"):
        return f"{shown} is an absolute path"
    if "\\" in path:
        return f"{shown} holds a backslash"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"{shown} holds an empty, '.' or '..' segment"
        if len(part.encode()) > max_part:
            return f"{shown} has a segment longer than {max_part} bytes"
    return None
