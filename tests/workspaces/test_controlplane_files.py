"""The controlplane backend's files against the double's files endpoints: the VM's /configs
while it runs, the /workspace volume after it is gone, and what the control plane refuses."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cpdouble.server import ControlPlaneDouble
from tests.support.agents import make_spec
from tests.support.cpdouble import client, vm_of
from workspaces.backends.controlplane import ControlPlaneBackend
from workspaces.backends.files import FileProblem, Storage

pytest_plugins = ["tests.support.cpdouble_fixtures"]


@pytest.fixture
def backend(cp_double: ControlPlaneDouble) -> ControlPlaneBackend:
    return client(cp_double)


def kind_of(call: Callable[[], object]) -> str:
    with pytest.raises(FileProblem) as refused:
        call()
    return refused.value.kind


def test_files_of_a_vm_and_of_its_volume(
    backend: ControlPlaneBackend, cp_double: ControlPlaneDouble, tmp_path: Path
) -> None:
    spec = make_spec()
    storage = Storage(spec.workspace_id)
    instance = backend.start(spec)
    configs = Path(vm_of(cp_double, instance)["configs_dir"])

    backend.write_file(storage, "configs", "notes/a.md", b"hello\n")
    assert (configs / "notes" / "a.md").read_bytes() == b"hello\n"
    assert oct((configs / "notes" / "a.md").stat().st_mode & 0o777) == "0o600"
    names = {e.name: e.kind for e in backend.list_files(storage, "configs", "").entries}
    assert names["notes"] == "folder" and names["config.yaml"] == "file"
    assert backend.read_file(storage, "configs", "notes/a.md", max_bytes=100) == b"hello\n"
    assert kind_of(lambda: backend.read_file(storage, "configs", "notes/a.md", max_bytes=3)) == (
        "too_large"
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, configs / "link")
    assert kind_of(lambda: backend.write_file(storage, "configs", "link/x", b"x")) == "conflict"
    assert list(outside.iterdir()) == []
    backend.rename_file(storage, "configs", "notes/a.md", "b.md")
    assert kind_of(lambda: backend.rename_file(storage, "configs", "b.md", "config.yaml")) == (
        "conflict"
    )
    backend.delete_file(storage, "configs", "notes")
    assert kind_of(lambda: backend.delete_file(storage, "configs", "notes")) == "missing"
    backend.write_file(storage, "workspace", "out.txt", b"42")

    backend.stop(instance)
    # The volume outlives the VM; /configs was the VM's.
    assert backend.read_file(storage, "workspace", "out.txt", max_bytes=10) == b"42"
    assert kind_of(lambda: backend.list_files(storage, "configs", "")) == "unavailable"
