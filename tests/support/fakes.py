"""A recording backend for tests that exercise dispatch without starting real agents.

It keeps every call in memory, like Django's locmem e-mail backend. It stands in for real
backends only where a test is about dispatch's behaviour around a backend (routing, fallbacks,
retries, serialization); the real backends have their own tests against real processes.
"""

from __future__ import annotations

import itertools
import threading
from typing import ClassVar

from workspaces.backends.base import Backend, BackendError, Instance, InstanceSpec
from workspaces.backends.docker import DockerBackend
from workspaces.backends.files import (
    FileEntry,
    FileProblem,
    Listing,
    Storage,
    missing,
    sorted_listing,
)

_ids = itertools.count(1)


class RecordingBackend(Backend):
    name = "recording"
    capabilities: ClassVar[dict] = {}

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running: dict[str, InstanceSpec] = {}
        self.specs: list[InstanceSpec] = []
        self.fail_next: BackendError | None = None
        self.lock = threading.Lock()
        # (workspace id, root) -> path -> bytes: files in memory, folders implied by paths.
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error

    def start(self, spec: InstanceSpec) -> Instance:
        with self.lock:
            self._maybe_fail()
            instance_id = f"rec-{next(_ids)}"
            self.calls.append(("start", spec.workspace_id))
            self.running[instance_id] = spec
            self.specs.append(spec)
            return Instance(instance_id, f"http://127.0.0.1:1/{instance_id}", {"n": instance_id})

    def stop(self, instance: Instance) -> None:
        with self.lock:
            self._maybe_fail()
            self.calls.append(("stop", instance.instance_id))
            self.running.pop(instance.instance_id, None)

    def is_running(self, instance: Instance) -> bool:
        return instance.instance_id in self.running

    def console(self, instance: Instance, *, tail: int = 200) -> str:
        return f"console of {instance.instance_id}"

    def remove_storage(self, instance: Instance) -> None:
        self.calls.append(("remove_storage", instance.instance_id))

    def list_instances(self) -> list[str]:
        return list(self.running)

    def running_instances(self) -> list[str] | None:
        return list(self.running)

    def workspaces_running(self) -> list[str]:
        return [spec.workspace_id for spec in self.running.values()]

    # --- files, in memory: enough for dispatch's rules, events and the doors around them ------
    def _tree(self, storage: Storage, root: str) -> dict[str, bytes]:
        return self.files.setdefault((storage.workspace_id, root), {})

    def list_files(self, storage: Storage, root: str, path: str) -> Listing:
        tree, prefix = self._tree(storage, root), f"{path}/" if path else ""
        if path in tree:
            raise FileProblem("conflict", f"{path} is not a folder.")
        found: dict[str, FileEntry] = {}
        for name, data in tree.items():
            if name.startswith(prefix):
                first, _, rest = name[len(prefix) :].partition("/")
                found[first] = FileEntry(first, "folder" if rest else "file", len(data))
        if path and not found:
            raise missing(root, path)
        return sorted_listing(list(found.values()))

    def read_file(self, storage: Storage, root: str, path: str, *, max_bytes: int) -> bytes:
        tree = self._tree(storage, root)
        if path not in tree:
            raise missing(root, path)
        if len(tree[path]) > max_bytes:
            raise FileProblem("too_large", f"{path} is larger than {max_bytes} bytes.")
        return tree[path]

    def write_file(self, storage: Storage, root: str, path: str, data: bytes) -> None:
        self.calls.append(("write_file", path))
        self._tree(storage, root)[path] = data

    def rename_file(self, storage: Storage, root: str, path: str, new_path: str) -> None:
        tree = self._tree(storage, root)
        if path not in tree:
            raise missing(root, path)
        if new_path in tree:
            raise FileProblem("conflict", f"{new_path} exists already.")
        tree[new_path] = tree.pop(path)

    def delete_file(self, storage: Storage, root: str, path: str) -> None:
        tree = self._tree(storage, root)
        gone = [name for name in tree if name == path or name.startswith(f"{path}/")]
        if not gone:
            raise missing(root, path)
        for name in gone:
            del tree[name]


class LocalRecording(RecordingBackend):
    name = "local"


class DockerRecording(RecordingBackend):
    name = "docker"
    # What the real backend declares about its isolation, so dispatch's tier policy holds here.
    max_tenant_tier = DockerBackend.max_tenant_tier


class ControlplaneRecording(RecordingBackend):
    name = "controlplane"


RECORDING = {
    "local": "tests.support.fakes.LocalRecording",
    "docker": "tests.support.fakes.DockerRecording",
    "controlplane": "tests.support.fakes.ControlplaneRecording",
}
