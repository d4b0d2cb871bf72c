"""The docker backend's files on a real engine: the archive API on the running container, a
helper container once it is gone, and a link the agent planted never followed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.engine import CONSOLE_ID, Engine, remove_labelled
from tests.support.waiting import wait_for
from workspaces.backends import InstanceSpec
from workspaces.backends.docker import CONSOLE_HOST_ALIAS, DockerBackend
from workspaces.backends.docker_files import LABEL_HELPER
from workspaces.backends.files import FileProblem, Storage
from workspaces.tiers import tier_settings

pytest_plugins = ["tests.support.engine_fixtures"]
CLOSED_REGISTRY = "http://127.0.0.1:9"


def make_spec() -> InstanceSpec:
    workspace_id = str(uuid.uuid4())
    return InstanceSpec(
        workspace_id=workspace_id,
        name="Files",
        org_slug="acme",
        runtime="langgraph",
        tier=tier_settings(2),
        generation=1,
        env={"MOLECULE_HEARTBEAT_INTERVAL": "1"},
        token="token-for-test",
        platform_url=CLOSED_REGISTRY,
        config={"name": "Files", "workspace_id": workspace_id},
    )


def health(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/health", timeout=5, trust_env=False).status_code
    except httpx.HTTPError:
        return None


@pytest.fixture
def engine(docker_settings: Engine, settings: Any) -> Iterator[Engine]:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, CONSOLE_HOST_ALIAS]
    yield docker_settings
    remove_labelled(docker_settings.client, CONSOLE_ID)


def test_files_are_reached_while_running_and_after_the_container_is_gone(engine: Engine) -> None:
    backend = DockerBackend()
    spec = make_spec()
    storage = Storage(spec.workspace_id)
    instance = backend.start(spec)
    wait_for(lambda: health(instance.url) == 200, timeout=30)
    container = engine.client.containers.get(instance.instance_id)

    backend.write_file(storage, "configs", "notes/a.md", b"hello\n")
    assert container.exec_run(["cat", "/configs/notes/a.md"]).output == b"hello\n"
    container.exec_run(["ln", "-s", "/etc", "/configs/link"])
    container.exec_run(["ln", "-s", "/etc/hostname", "/configs/file-link"])
    entries = {e.name: e.kind for e in backend.list_files(storage, "configs", "").entries}
    assert entries["notes"] == "folder" and entries["link"] == "link"
    assert entries["file-link"] == "link"
    for path in ("link/passwd", "file-link"):
        with pytest.raises(FileProblem) as refused:
            backend.read_file(storage, "configs", path, max_bytes=4096)
        assert refused.value.kind == "conflict"
    with pytest.raises(FileProblem) as refused:
        backend.write_file(storage, "configs", "link/planted", b"x")
    assert refused.value.kind == "conflict"
    assert container.exec_run(["test", "-e", "/etc/planted"]).exit_code != 0
    with pytest.raises(FileProblem) as refused:
        backend.read_file(storage, "configs", "notes/a.md", max_bytes=3)
    assert refused.value.kind == "too_large"

    backend.stop(instance)  # the container is removed: a helper mounts the volumes
    assert backend.read_file(storage, "configs", "notes/a.md", max_bytes=4096) == b"hello\n"
    backend.write_file(storage, "workspace", "out.txt", b"42")
    backend.rename_file(storage, "configs", "notes/a.md", "b/c.md")
    assert backend.read_file(storage, "configs", "b/c.md", max_bytes=4096) == b"hello\n"
    with pytest.raises(FileProblem) as refused:
        backend.rename_file(storage, "workspace", "out.txt", "out.txt")
    assert refused.value.kind == "conflict"
    backend.delete_file(storage, "configs", "b")
    with pytest.raises(FileProblem) as refused:
        backend.read_file(storage, "configs", "b/c.md", max_bytes=4096)
    assert refused.value.kind == "missing"
    assert backend.read_file(storage, "workspace", "out.txt", max_bytes=10) == b"42"
    # No helper outlives its request.
    assert engine.client.containers.list(all=True, filters={"label": LABEL_HELPER}) == []
    backend.remove_storage(instance)


def test_a_workspace_never_started_has_no_storage_to_reach(engine: Engine) -> None:
    with pytest.raises(FileProblem) as refused:
        DockerBackend().list_files(Storage(make_spec().workspace_id), "configs", "")
    assert refused.value.kind == "unavailable"
