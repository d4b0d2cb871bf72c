"""Files in a workspace's storage: what every backend's file methods take, return and raise.

Two roots: ``workspace`` (the agent's /workspace: the workspace's own ``workspace_dir``, a
volume, or the control plane's volume; none in T1) and ``configs`` (the agent contract's configs
directory, docs/agent-contract.md). A path inside a root is a plain relative path
(``configs.path_problem``; "" is the root itself, for a listing), judged by dispatch before a
backend sees it and again by each backend where it touches storage: a symbolic link on the way
is never followed out of the root.

Backends locate storage from the workspace alone (:class:`Storage`), not from a running
instance: files of a stopped workspace are reachable too (local: its directories; docker: its
volumes, through a short-lived helper container when the agent's container is gone;
controlplane: the control plane keeps them by workspace id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workspaces.backends.base import BackendError

WORKSPACE, CONFIGS = "workspace", "configs"
ROOTS = (WORKSPACE, CONFIGS)
# A listing shows at most this many entries of one folder (sorted by name), then says so.
MAX_ENTRIES = 1000
FOLDER, FILE, LINK, OTHER = "folder", "file", "link", "other"


class FileProblem(BackendError):
    """A file request the storage refuses, and why (``kind``):

    ``missing`` (no such file or folder: 404), ``too_large`` (over the caller's cap: 413),
    ``conflict`` (a folder where a file is asked for or the reverse, a link on the way, a
    destination that exists: 409), ``unavailable`` (no such storage yet, or the backend cannot
    reach it this way: 409). Permanent: asking again changes nothing.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, permanent=True)
        self.kind = kind


def missing(root: str, path: str) -> FileProblem:
    return FileProblem("missing", f"There is no {path or 'folder'} in {root}.")


def too_large(path: str, size: int, cap: int) -> FileProblem:
    return FileProblem("too_large", f"{path} holds {size} bytes, more than {cap}.")


@dataclass(frozen=True)
class Storage:
    """Where a workspace's files are, as far as any backend needs to know."""

    workspace_id: str
    # The operator's own /workspace directory, or "" for the backend's own storage.
    workspace_dir: str = ""
    # Whether the tier gives a /workspace at all (T1 has none).
    workspace_volume: bool = True


@dataclass(frozen=True)
class FileEntry:
    name: str
    kind: str  # FOLDER, FILE, LINK or OTHER
    size: int = 0
    modified: float = 0.0


@dataclass(frozen=True)
class Listing:
    entries: list[FileEntry] = field(default_factory=list)
    truncated: bool = False


def sorted_listing(entries: list[FileEntry]) -> Listing:
    """Folders first, then by name; at most MAX_ENTRIES."""
    ordered = sorted(entries, key=lambda entry: (entry.kind != FOLDER, entry.name))
    return Listing(ordered[:MAX_ENTRIES], truncated=len(ordered) > MAX_ENTRIES)


def join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name
