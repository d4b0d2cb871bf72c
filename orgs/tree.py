"""A template's files: a directory on disk, or an archive's entries held in memory.

Org import reads a Molecule org template through one of these: ``org.yaml`` and the files it
includes, prompt files, ``.env`` files and each workspace's ``files_dir``. Every path is relative
to the template's root and stays inside it: no absolute path, no ``..`` that leaves the root, no
symlink that leads out of it, nothing but regular files and directories. A refusal is a
``TreeError`` whose sentence the import turns into a problem with the line that named the path.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path

# What one workspace's files_dir may hold, and one import in all (every workspace's copy counts).
MAX_FILE = 256 * 1024
MAX_WORKSPACE_BYTES = 2 * 1024 * 1024
MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_WORKSPACE_FILES = 1_000
# WorkspaceFile.path's column.
MAX_FILE_PATH = 500


OUTSIDE = "outside"


class TreeError(ValueError):
    """A path the template cannot give; the message is the end of a sentence about it."""


def join(base: str, relative: str) -> str:
    """``relative`` (posix, from the directory ``base``) as a path from the root ("" is the
    root itself); ``TreeError`` when it is absolute or leaves the root."""
    if relative.startswith("/") or "\\" in relative or "\x00" in relative:
        raise TreeError(f"{relative[:80]!r} must be a relative path (with / between folders)")
    joined = posixpath.normpath(posixpath.join(base, relative))
    if joined == "." or joined == "":
        return ""
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        raise TreeError(f"{relative[:80]!r} leads out of the template directory")
    return joined


def parent_of(path: str) -> str:
    return posixpath.dirname(path)


@dataclass
class Listing:
    """The regular files under a directory: path below the directory -> path from the root."""

    files: dict[str, str] = field(default_factory=dict)


class Tree:
    """What org import asks of a template's files. ``label`` names it in events and messages."""

    label = ""

    def kind(self, path: str) -> str | None:
        """ "file", "dir", or None when nothing is there."""
        raise NotImplementedError

    def read(self, path: str, *, limit: int = MAX_FILE) -> bytes:
        """A regular file's bytes; ``TreeError`` if it is missing, not a file or over ``limit``."""
        raise NotImplementedError

    def files_under(self, path: str) -> Listing:
        """Every regular file below the directory ``path``, at any depth."""
        raise NotImplementedError


class DirTree(Tree):
    """A template directory on disk (``manage.py import_org DIR``).

    Symlinks are followed while they stay inside the directory (checked on the resolved path);
    one that leads out of it, a FIFO, a device or a socket is refused rather than read.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.label = root.name or str(root)
        self._cache: dict[str, bytes] = {}

    def _real(self, path: str) -> str:
        full = os.path.realpath(os.path.join(self.root, path))
        if full != str(self.root) and not full.startswith(str(self.root) + os.sep):
            raise TreeError(f"{path} is a symlink that leads out of the template directory")
        return full

    def kind(self, path: str) -> str | None:
        try:
            mode = os.stat(self._real(path)).st_mode
        except TreeError:
            return OUTSIDE
        except OSError:
            return None
        if stat.S_ISDIR(mode):
            return "dir"
        return "file" if stat.S_ISREG(mode) else "other"

    def read(self, path: str, *, limit: int = MAX_FILE) -> bytes:
        if path in self._cache:
            data = self._cache[path]
        else:
            real = self._real(path)
            try:
                info = os.stat(real)
            except OSError:
                raise TreeError(f"{path} does not exist in the template") from None
            if stat.S_ISDIR(info.st_mode):
                raise TreeError(f"{path} is a directory, not a file")
            if not stat.S_ISREG(info.st_mode):
                raise TreeError(f"{path} is not a regular file")
            if info.st_size > limit:
                raise TreeError(f"{path} is {info.st_size} bytes; at most {limit} are taken")
            try:
                with open(real, "rb") as handle:
                    data = handle.read(limit + 1)
            except OSError as error:
                raise TreeError(f"{path} cannot be read ({error.strerror})") from None
            self._cache[path] = data
        if len(data) > limit:
            raise TreeError(f"{path} is more than {limit} bytes")
        return data

    def files_under(self, path: str) -> Listing:
        listing = Listing()
        seen: set[str] = set()
        stack = [(path, "")]
        while stack:
            folder, below = stack.pop()
            real = self._real(folder)
            if real in seen:
                continue  # a symlink back into a folder already listed
            seen.add(real)
            try:
                entries = sorted(os.scandir(real), key=lambda entry: entry.name)
            except OSError as error:
                raise TreeError(f"{folder or '.'} cannot be listed ({error.strerror})") from None
            for entry in entries:
                inner = posixpath.join(folder, entry.name) if folder else entry.name
                relative = posixpath.join(below, entry.name) if below else entry.name
                kind = self.kind(inner)  # follows a symlink
                if kind == OUTSIDE:
                    self._real(inner)  # raises, saying which symlink leads out
                if kind == "dir":
                    stack.append((inner, relative))
                elif kind == "file":
                    listing.files[relative] = inner
                    if len(listing.files) > MAX_WORKSPACE_FILES:
                        raise TreeError(
                            f"{path or '.'} holds more than {MAX_WORKSPACE_FILES} files"
                        )
                else:
                    raise TreeError(f"{inner} is not a regular file or a directory")
        return listing


class MemoryTree(Tree):
    """A template held in memory: an uploaded archive's entries, or one pasted file."""

    def __init__(self, files: dict[str, bytes], *, label: str = "", dirs: set[str] = frozenset()):
        self.files = files
        self.label = label
        self.dirs = set(dirs) | {""}
        for name in files:
            while name := parent_of(name):
                self.dirs.add(name)

    def kind(self, path: str) -> str | None:
        if path in self.files:
            return "file"
        return "dir" if path in self.dirs else None

    def read(self, path: str, *, limit: int = MAX_FILE) -> bytes:
        if path in self.dirs:
            raise TreeError(f"{path or '.'} is a directory, not a file")
        if path not in self.files:
            raise TreeError(f"{path} does not exist in the template")
        data = self.files[path]
        if len(data) > limit:
            raise TreeError(f"{path} is {len(data)} bytes; at most {limit} are taken")
        return data

    def files_under(self, path: str) -> Listing:
        prefix = f"{path}/" if path else ""
        listing = Listing()
        for name in sorted(self.files):
            if name.startswith(prefix):
                listing.files[name[len(prefix) :]] = name
        if len(listing.files) > MAX_WORKSPACE_FILES:
            raise TreeError(f"{path or '.'} holds more than {MAX_WORKSPACE_FILES} files")
        return listing
