"""The local backend's files: the workspace's directories, reached without following a link.

Roots: ``configs`` is ``MOLECULE_LOCAL_ROOT/<id>/configs``; ``workspace`` is the workspace's own
``workspace_dir`` (judged again here, as at start) or ``MOLECULE_LOCAL_ROOT/<id>/workspace``.
Every path is walked one folder at a time through directory descriptors opened with
``O_NOFOLLOW``: a symbolic link the agent left on the way is refused (a ``conflict``), never
followed, so no request reaches outside the root whatever the agent did inside it. A file is
read only when it is a regular file (a FIFO or a device would block or lie about its size).

Writes land as the root folder's owner (the agent's uid when the console runs as root), files
0600 and folders 0700 like everything the agent finds in its configs, each written under a draft
name and renamed over the old one, so the agent never reads half a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from workspaces.backends import configs
from workspaces.backends.base import BackendError
from workspaces.backends.files import (
    CONFIGS,
    FILE,
    FOLDER,
    LINK,
    OTHER,
    FileEntry,
    FileProblem,
    Listing,
    Storage,
    missing,
    sorted_listing,
    too_large,
)
from workspaces.paths import normal_form, workspace_dir_problem

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISREG(mode):
        return FILE
    return LINK if stat.S_ISLNK(mode) else OTHER


class LocalFiles:
    """The file methods of :class:`~workspaces.backends.local.LocalBackend`."""

    root: Path

    def _root_dir(self, storage: Storage, root: str) -> Path:
        base = self.root / storage.workspace_id
        if root == CONFIGS:
            return base / "configs"
        if not storage.workspace_volume:
            raise FileProblem("unavailable", "This workspace's tier (T1) has no /workspace.")
        if storage.workspace_dir:
            if problem := workspace_dir_problem(storage.workspace_dir, exact_spelling=False):
                raise FileProblem("unavailable", f"The workspace directory {problem}.")
            return Path(normal_form(storage.workspace_dir))
        return base / "workspace"

    @contextlib.contextmanager
    def _folder(
        self, storage: Storage, root: str, parts: list[str], *, create: bool = False
    ) -> Iterator[tuple[int, tuple[int, int]]]:
        """A descriptor of the folder ``parts`` under the root and the root's (uid, gid).

        ``create``: missing folders on the way are made (0700, the root's owner).
        """
        top = self._root_dir(storage, root)
        try:
            fd = os.open(top, DIR_FLAGS)
        except FileNotFoundError:
            raise FileProblem(
                "unavailable", f"The workspace has no {root} storage yet: start it once."
            ) from None
        except OSError as error:
            raise FileProblem("unavailable", f"{top} cannot be opened: {error.strerror}.") from None
        try:
            found = os.fstat(fd)
            owner = (found.st_uid, found.st_gid)
            for index, part in enumerate(parts):
                try:
                    inner = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise missing(root, "/".join(parts[: index + 1])) from None
                    os.mkdir(part, configs.DIR_MODE, dir_fd=fd)
                    inner = os.open(part, DIR_FLAGS, dir_fd=fd)
                    if os.geteuid() == 0:
                        os.fchown(inner, *owner)
                except OSError as error:
                    if error.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise FileProblem(
                            "conflict",
                            f"{'/'.join(parts[: index + 1])} in {root} is a link or a file, "
                            "not a folder: links are never followed.",
                        ) from None
                    raise
                os.close(fd)
                fd = inner
            yield fd, owner
        finally:
            os.close(fd)

    @staticmethod
    def _split(path: str) -> tuple[list[str], str]:
        *parents, name = path.split("/")
        return parents, name

    def _storage_error(self, error: OSError, doing: str) -> BackendError:
        return BackendError(f"Cannot {doing} in the workspace's storage: {error.strerror}.")

    # --- the contract -------------------------------------------------------------------------
    def list_files(self, storage: Storage, root: str, path: str) -> Listing:
        parts = path.split("/") if path else []
        try:
            with self._folder(storage, root, parts) as (fd, _):
                entries = []
                with os.scandir(fd) as scan:
                    for entry in scan:
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        entries.append(
                            FileEntry(entry.name, _kind(info.st_mode), info.st_size, info.st_mtime)
                        )
        except FileProblem:
            raise
        except OSError as error:
            raise self._storage_error(error, f"list {path or root}") from error
        return sorted_listing(entries)

    def read_file(self, storage: Storage, root: str, path: str, *, max_bytes: int) -> bytes:
        parents, name = self._split(path)
        try:
            with self._folder(storage, root, parents) as (folder, _):
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
                except FileNotFoundError:
                    raise missing(root, path) from None
                except OSError as error:
                    if error.errno == errno.ELOOP:
                        raise FileProblem(
                            "conflict", f"{path} is a link: links are never followed."
                        ) from None
                    raise
                with os.fdopen(fd, "rb") as handle:
                    found = os.fstat(fd)
                    if stat.S_ISDIR(found.st_mode):
                        raise FileProblem("conflict", f"{path} is a folder, not a file.")
                    if not stat.S_ISREG(found.st_mode):
                        raise FileProblem("conflict", f"{path} is not a regular file.")
                    if found.st_size > max_bytes:
                        raise too_large(path, found.st_size, max_bytes)
                    data = handle.read(max_bytes + 1)
        except FileProblem:
            raise
        except OSError as error:
            raise self._storage_error(error, f"read {path}") from error
        if len(data) > max_bytes:  # it grew while being read
            raise too_large(path, len(data), max_bytes)
        return data

    def write_file(self, storage: Storage, root: str, path: str, data: bytes) -> None:
        parents, name = self._split(path)
        try:
            with self._folder(storage, root, parents, create=True) as (folder, owner):
                mode = configs.FILE_MODE
                with contextlib.suppress(FileNotFoundError):
                    existing = os.lstat(name, dir_fd=folder)
                    if stat.S_ISDIR(existing.st_mode):
                        raise FileProblem("conflict", f"{path} is a folder, not a file.")
                    if stat.S_ISREG(existing.st_mode):
                        mode = stat.S_IMODE(existing.st_mode)
                draft = f".molecule-draft-{os.getpid()}-{secrets.token_hex(4)}"
                fd = os.open(
                    draft,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                    mode,
                    dir_fd=folder,
                )
                try:
                    with os.fdopen(fd, "wb") as handle:
                        os.fchmod(fd, mode)
                        if os.geteuid() == 0:
                            os.fchown(fd, *owner)
                        handle.write(data)
                    # A link or file at the name is replaced, never written through.
                    os.replace(draft, name, src_dir_fd=folder, dst_dir_fd=folder)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(draft, dir_fd=folder)
                    raise
        except FileProblem:
            raise
        except OSError as error:
            raise self._storage_error(error, f"write {path}") from error

    def rename_file(self, storage: Storage, root: str, path: str, new_path: str) -> None:
        parents, name = self._split(path)
        new_parents, new_name = self._split(new_path)
        try:
            with (
                self._folder(storage, root, parents) as (source, _),
                self._folder(storage, root, new_parents, create=True) as (target, _),
            ):
                try:
                    os.lstat(name, dir_fd=source)
                except FileNotFoundError:
                    raise missing(root, path) from None
                with contextlib.suppress(FileNotFoundError):
                    os.lstat(new_name, dir_fd=target)
                    raise FileProblem("conflict", f"{new_path} exists already in {root}.")
                os.rename(name, new_name, src_dir_fd=source, dst_dir_fd=target)
        except FileProblem:
            raise
        except OSError as error:
            if error.errno == errno.EINVAL:
                raise FileProblem(
                    "conflict", f"{path} cannot be moved into itself ({new_path})."
                ) from None
            raise self._storage_error(error, f"rename {path}") from error

    def delete_file(self, storage: Storage, root: str, path: str) -> None:
        parents, name = self._split(path)
        try:
            with self._folder(storage, root, parents) as (folder, _):
                try:
                    found = os.lstat(name, dir_fd=folder)
                except FileNotFoundError:
                    raise missing(root, path) from None
                if stat.S_ISDIR(found.st_mode):
                    # rmtree with a dir_fd never follows a link inside the tree.
                    shutil.rmtree(name, dir_fd=folder)
                else:
                    os.unlink(name, dir_fd=folder)
        except FileProblem:
            raise
        except OSError as error:
            raise self._storage_error(error, f"delete {path}") from error
