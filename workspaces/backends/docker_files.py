"""The docker backend's files: the workspace's volumes, through the engine's archive API.

Roots: ``configs`` is the volume at /configs, ``workspace`` the volume (or the operator's own
directory) at /workspace. Reads, listings and writes go through the archive API
(``get_archive``/``put_archive``) of the workspace's container when it exists, and otherwise
of a helper container: created from the workspace image with the same volumes, never started,
removed at once. The archive API works on a created container's volumes, so a stopped
workspace's files are reachable too. The archive API cannot remove or move anything: rename
and delete run a short Python program (the image has Python) in a helper container that mounts
the volumes, started and removed for that one request.

Paths resolve inside a container, whose root is the image's: a link the agent left can lead
elsewhere in the container, never onto the host. Links on the way are refused all the same, as
on the other backends. A listing reads the folder's archive as a stream and keeps its direct
entries; it stops after ``LIST_STREAM_BYTES`` of archive (a folder holding gigabytes) and says
it is truncated. Helpers carry the label ``molecule.files-helper`` (not the console's instance
label: the orphan sweep never takes one for an agent).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from workspaces.backends.base import BackendError
from workspaces.backends.configs import CONFIGS_MOUNT
from workspaces.backends.containers import (
    LABEL_WORKSPACE,
    configs_archive,
    configs_volume_name,
    container_name,
    validated_workspace_dir,
    volume_name,
)
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

LABEL_HELPER = "molecule.files-helper"
LIST_STREAM_BYTES = 64 * 1024 * 1024
HELPER_SECONDS = 60
# Go's os.FileMode bits, as the engine reports a path's mode in the archive's stat header.
MODE_DIR, MODE_SYMLINK = 1 << 31, 1 << 27
# Run in a helper container: argv op ("rm" or "mv"), base, path[, new path]. Exit 3: a link or
# a file on the way, 4: nothing at path, 5: something at the new path, 6: moved into itself.
CHANGE = r"""
import os, shutil, sys
op, base, path, *rest = sys.argv[1:]
def place(relative, create):
    here = base
    *parents, name = relative.split("/")
    for part in parents:
        here = os.path.join(here, part)
        if not os.path.lexists(here) and create:
            os.mkdir(here, 0o700)
        if os.path.islink(here) or not os.path.isdir(here):
            sys.exit(3 if os.path.lexists(here) else 4)
    return os.path.join(here, name)
source = place(path, False)
if not os.path.lexists(source):
    sys.exit(4)
if op == "rm":
    if os.path.isdir(source) and not os.path.islink(source):
        shutil.rmtree(source)
    else:
        os.unlink(source)
else:
    target = place(rest[0], True)
    if os.path.lexists(target):
        sys.exit(5)
    try:
        os.rename(source, target)
    except OSError:
        sys.exit(6)
"""
CHANGE_FAILURES = {
    3: ("conflict", "a link or a file stands on the way (links are never followed)"),
    4: ("missing", "there is nothing at that path"),
    5: ("conflict", "something exists at the new path already"),
    6: ("conflict", "a folder cannot be moved into itself"),
}


def _entry_kind(info: tarfile.TarInfo) -> str:
    if info.isdir():
        return FOLDER
    if info.isreg():
        return FILE
    return LINK if info.issym() or info.islnk() else OTHER


class _Chunks(io.RawIOBase):
    """The archive's chunks as a file, counting what was read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._pending, self.read_bytes = chunks, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        self.read_bytes += size
        return size


class DockerFiles:
    """The file methods of :class:`~workspaces.backends.docker.DockerBackend`."""

    image: str
    console_id: str
    # DockerBackend._engine: the SDK client, engine failures as BackendErrors.
    _engine: Any

    @staticmethod
    def _mount(root: str) -> str:
        return CONFIGS_MOUNT if root == CONFIGS else "/workspace"

    def _volumes(self, client: docker.DockerClient, storage: Storage) -> dict[str, dict[str, str]]:
        """The helper's mounts: the same configs and /workspace the agent gets."""
        configs = configs_volume_name(storage.workspace_id)
        try:
            client.volumes.get(configs)
        except NotFound:
            raise FileProblem(
                "unavailable", "The workspace has no storage yet: start it once."
            ) from None
        volumes = {configs: {"bind": CONFIGS_MOUNT, "mode": "rw"}}
        if storage.workspace_volume:
            if storage.workspace_dir:
                try:
                    bind = validated_workspace_dir(storage.workspace_dir)
                except BackendError as refused:
                    raise FileProblem("unavailable", refused.message) from None
                volumes[bind] = {"bind": "/workspace", "mode": "rw"}
            else:
                name = volume_name(storage.workspace_id)
                with contextlib.suppress(NotFound):
                    client.volumes.get(name)
                    volumes[name] = {"bind": "/workspace", "mode": "rw"}
        return volumes

    def _helper(
        self, client: docker.DockerClient, storage: Storage, command: list[str] | None
    ) -> Container:
        name = f"{container_name(storage.workspace_id)}-files-{secrets.token_hex(3)}"
        try:
            return client.containers.create(
                self.image,
                command=command or ["true"],
                name=name,
                labels={LABEL_HELPER: self.console_id, LABEL_WORKSPACE: storage.workspace_id},
                volumes=self._volumes(client, storage),
                network_mode="none",
                detach=True,
            )
        except docker.errors.ImageNotFound:
            raise BackendError(
                f"The workspace image {self.image!r} is not in the engine; files of a stopped "
                "workspace are read through it. Build it with scripts/agent-image.",
                permanent=True,
            ) from None

    @contextlib.contextmanager
    def _archive_holder(self, storage: Storage, root: str, doing: str) -> Iterator[Container]:
        """The workspace's container, or a helper mounting its volumes, for the archive API."""
        if root != CONFIGS and not storage.workspace_volume:
            raise FileProblem("unavailable", "This workspace's tier (T1) has no /workspace.")
        with self._engine(doing) as client:
            try:
                found: Container | None = client.containers.get(
                    container_name(storage.workspace_id)
                )
            except NotFound:
                found = None
            mounts = (
                {m.get("Destination") for m in (found.attrs.get("Mounts") or [])}
                if found
                else set()
            )
            if (
                found is not None
                and found.labels.get(LABEL_WORKSPACE) == storage.workspace_id
                and (root == CONFIGS or "/workspace" in mounts)
            ):
                yield found
                return
            helper = self._helper(client, storage, None)
            try:
                yield helper
            finally:
                with contextlib.suppress(APIError):
                    helper.remove(force=True)

    @staticmethod
    def _stat(container: Container, target: str) -> dict[str, Any] | None:
        """What the engine says is at ``target`` (its archive stat), or None when nothing is.

        A HEAD of the archive endpoint: the stat alone, without the engine packing a folder.
        """
        api = container.client.api
        response = api.head(
            api._url("/containers/{0}/archive", container.id), params={"path": target}
        )
        if response.status_code == 404:
            return None
        header = response.headers.get("X-Docker-Container-Path-Stat")
        if response.ok and header:
            return json.loads(base64.b64decode(header))
        # An engine without the HEAD: the GET's header, its stream closed unread.
        try:
            chunks, found = container.get_archive(target)
        except NotFound:
            return None
        with contextlib.suppress(AttributeError):
            chunks.close()
        return found

    def _checked_parents(self, container: Container, root: str, path: str) -> None:
        """Refuse a link or a file standing where a folder of ``path`` goes."""
        parts = path.split("/")[:-1]
        for index in range(len(parts)):
            here = "/".join(parts[: index + 1])
            found = self._stat(container, f"{self._mount(root)}/{here}")
            if found is None:
                return
            if found.get("mode", 0) & MODE_SYMLINK or not found.get("mode", 0) & MODE_DIR:
                raise FileProblem(
                    "conflict",
                    f"{here} in {root} is a link or a file, not a folder: links are never "
                    "followed.",
                )

    # --- the contract -------------------------------------------------------------------------
    def list_files(self, storage: Storage, root: str, path: str) -> Listing:
        target = f"{self._mount(root)}/{path}".rstrip("/")
        with self._archive_holder(storage, root, f"list {path or root}") as container:
            if path:
                self._checked_parents(container, root, f"{path}/x")
            try:
                chunks, found = container.get_archive(target)
            except NotFound:
                raise missing(root, path) from None
            mode = found.get("mode", 0)
            if mode & MODE_SYMLINK or not mode & MODE_DIR:
                raise FileProblem("conflict", f"{path} is not a folder.")
            stream = _Chunks(iter(chunks))
            entries, truncated = [], False
            with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
                for info in tar:
                    parts = info.name.rstrip("/").split("/")
                    if len(parts) == 2:
                        entries.append(
                            FileEntry(parts[1], _entry_kind(info), info.size, float(info.mtime))
                        )
                    if stream.read_bytes > LIST_STREAM_BYTES:
                        truncated = True
                        break
            with contextlib.suppress(AttributeError):
                chunks.close()
        listing = sorted_listing(entries)
        return Listing(listing.entries, listing.truncated or truncated)

    def read_file(self, storage: Storage, root: str, path: str, *, max_bytes: int) -> bytes:
        with self._archive_holder(storage, root, f"read {path}") as container:
            self._checked_parents(container, root, path)
            try:
                chunks, found = container.get_archive(f"{self._mount(root)}/{path}")
            except NotFound:
                raise missing(root, path) from None
            mode = found.get("mode", 0)
            try:
                if mode & MODE_SYMLINK:
                    raise FileProblem("conflict", f"{path} is a link: links are never followed.")
                if mode & MODE_DIR:
                    raise FileProblem("conflict", f"{path} is a folder, not a file.")
                if int(found.get("size", 0)) > max_bytes:
                    raise too_large(path, int(found["size"]), max_bytes)
                stream = _Chunks(iter(chunks))
                with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
                    for info in tar:
                        if not info.isreg():
                            raise FileProblem("conflict", f"{path} is not a regular file.")
                        if info.size > max_bytes:
                            raise too_large(path, info.size, max_bytes)
                        handle = tar.extractfile(info)
                        return handle.read() if handle else b""
            finally:
                with contextlib.suppress(AttributeError):
                    chunks.close()
        raise missing(root, path)

    def write_file(self, storage: Storage, root: str, path: str, data: bytes) -> None:
        with self._archive_holder(storage, root, f"write {path}") as container:
            self._checked_parents(container, root, path)
            found = self._stat(container, f"{self._mount(root)}/{path}")
            if found and found.get("mode", 0) & MODE_DIR and not found["mode"] & MODE_SYMLINK:
                raise FileProblem("conflict", f"{path} is a folder, not a file.")
            archive = configs_archive({path: data}, mtime=time.time())
            if not container.put_archive(self._mount(root), archive):
                raise BackendError(f"The engine did not write {path} into {root}.")

    def _change(self, storage: Storage, root: str, argv: list[str], doing: str) -> None:
        if root != CONFIGS and not storage.workspace_volume:
            raise FileProblem("unavailable", "This workspace's tier (T1) has no /workspace.")
        with self._engine(doing) as client:
            helper = self._helper(client, storage, ["python3", "-I", "-c", CHANGE, *argv])
            try:
                helper.start()
                code = int(helper.wait(timeout=HELPER_SECONDS).get("StatusCode", 1))
                if code in CHANGE_FAILURES:
                    kind, why = CHANGE_FAILURES[code]
                    raise FileProblem(kind, f"Cannot {doing}: {why}.")
                if code:
                    said = helper.logs().decode(errors="replace").strip()[-300:]
                    raise BackendError(f"Cannot {doing}: the helper exited {code}: {said}")
            finally:
                with contextlib.suppress(APIError):
                    helper.remove(force=True)

    def rename_file(self, storage: Storage, root: str, path: str, new_path: str) -> None:
        self._change(
            storage, root, ["mv", self._mount(root), path, new_path], f"rename {path} in {root}"
        )

    def delete_file(self, storage: Storage, root: str, path: str) -> None:
        self._change(storage, root, ["rm", self._mount(root), path], f"delete {path} in {root}")
