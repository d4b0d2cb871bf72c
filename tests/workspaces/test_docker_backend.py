"""The docker backend on a real engine: naming, networking, storage, idempotency and errors.

The first tests are pure (the tier options and the workspace_dir rule). The rest call
``DockerBackend`` directly with an ``InstanceSpec``, as dispatch does, with agents pointed at a
closed port (they keep retrying to register, which is all a backend-level test needs), or go
through dispatch with a live console where the point is what the operator sees: a workspace that
ends failed with a sentence to act on, never one stuck in provisioning.
tests/contract/ runs the lifecycle scenarios; test_docker_tiers.py the isolation of each tier.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import docker
import httpx
import pytest

from tests.support.engine import CONSOLE_ID, Engine, remove_labelled
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.backends import BackendError, Instance, InstanceSpec
from workspaces.backends.docker import (
    CONSOLE_HOST_ALIAS,
    LABEL_CONSOLE,
    DockerBackend,
    configs_volume_name,
    container_name,
    container_options,
    validated_workspace_dir,
    volume_name,
)
from workspaces.models import EventType, Status, StructureEvent, Workspace
from workspaces.tiers import MiB, tier_settings

# The engine fixtures (docker_engine, docker_settings, docker_console, docker_fleet).
pytest_plugins = ["tests.support.engine_fixtures"]
CLOSED_REGISTRY = "http://127.0.0.1:9"
OOM_IMAGE = "molecule-agent-oomtest:latest"


def make_spec(tier: int = 2, **changes: Any) -> InstanceSpec:
    workspace_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "workspace_id": workspace_id,
        "name": "PM",
        "org_slug": "acme",
        "runtime": "langgraph",
        "tier": tier_settings(tier),
        "generation": 3,
        "env": {"MOLECULE_HEARTBEAT_INTERVAL": "1"},
        "token": "token-for-test",
        "platform_url": CLOSED_REGISTRY,
        "config": {"name": "PM", "runtime": "langgraph", "workspace_id": workspace_id},
    }
    return InstanceSpec(**(fields | changes))


def health(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/health", timeout=5, trust_env=False).status_code
    except httpx.HTTPError:
        return None


@pytest.fixture
def engine(docker_settings: Engine, settings: Any) -> Iterator[Engine]:
    # The name containers call the console by (settings.py adds it when docker is configured).
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, CONSOLE_HOST_ALIAS]
    yield docker_settings
    remove_labelled(docker_settings.client, CONSOLE_ID)


# --- pure: what each tier asks of the engine ----------------------------------------------------


def test_container_options_follow_the_tier_settings():
    def options(tier: int) -> dict[str, Any]:
        return container_options(
            tier_settings(tier), storage="vol", network="net", engine_socket="/run/e.sock"
        )

    published = {"8000/tcp": ("127.0.0.1", None)}
    assert options(1) == {
        "read_only": True,
        "privileged": False,
        "tmpfs": {"/tmp": "rw,size=64m,mode=1777"},
        "mem_limit": 512 * MiB,
        "memswap_limit": 512 * MiB,
        "nano_cpus": 1_000_000_000,
        "network": "net",
        "ports": published,
    }
    assert options(2) == {
        "read_only": False,
        "privileged": False,
        "mem_limit": 512 * MiB,
        "memswap_limit": 512 * MiB,
        "nano_cpus": 1_000_000_000,
        "volumes": {"vol": {"bind": "/workspace", "mode": "rw"}},
        "network": "net",
        "ports": published,
    }
    assert options(3) == {
        "read_only": False,
        "privileged": True,
        "pid_mode": "host",
        "volumes": {"vol": {"bind": "/workspace", "mode": "rw"}},
        "network": "net",
        "ports": published,
    }
    assert options(4) == {
        "read_only": False,
        "privileged": True,
        "pid_mode": "host",
        "volumes": {
            "vol": {"bind": "/workspace", "mode": "rw"},
            "/run/e.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
        },
        "network_mode": "host",
    }
    assert options(0) == options(7) == options(2)


@pytest.mark.parametrize("path", ["/srv/acme", "/home/ops/pm", "/data/ws/", "/tmp/pytest/x"])
def test_a_workspace_dir_of_its_own_is_accepted(path):
    assert validated_workspace_dir(path) == path.rstrip("/")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("srv/acme", "must be an absolute path"),
        ("/srv/acme/../../etc", "must not contain '..'"),
        ("/", "whole top-level directory"),
        ("/srv", "whole top-level directory"),
        ("/etc", "system path"),
        ("/usr/lib/python3", "system path"),
        ("/var/run/docker.sock", "system path"),
        ("/proc/1/root", "system path"),
        ("/var/lib/containers", "system path"),
    ],
)
def test_a_dangerous_workspace_dir_is_refused(path, why):
    with pytest.raises(BackendError) as refused:
        validated_workspace_dir(path)
    assert why in refused.value.message
    assert refused.value.permanent


def test_names_follow_the_design():
    workspace_id = "1234abcd-56ef-7890-abcd-ef0123456789"
    assert container_name(workspace_id) == "ws-1234abcd56ef"
    assert volume_name(workspace_id) == f"ws-{workspace_id}-workspace"


# --- a container per workspace ------------------------------------------------------------------


def test_start_runs_a_labelled_container_published_on_loopback(engine):
    spec = make_spec()
    backend = DockerBackend()

    instance = backend.start(spec)

    container = engine.client.containers.get(instance.instance_id)
    assert container.name == container_name(spec.workspace_id)
    assert container.status == "running"
    labels = {
        LABEL_CONSOLE: CONSOLE_ID,
        "molecule.workspace": spec.workspace_id,
        "molecule.org": "acme",
        "molecule.generation": "3",
        "molecule.tier": "2",
    }
    assert {key: container.labels.get(key) for key in labels} == labels
    [binding] = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    assert instance.url == f"http://127.0.0.1:{binding['HostPort']}"
    wait_for(lambda: health(instance.url) == 200, timeout=30)
    assert container.attrs["HostConfig"]["Init"] is True
    # The agent calls the console by a name that the container maps to molecule-net's gateway.
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["PLATFORM_URL"] == f"http://{CONSOLE_HOST_ALIAS}:9"
    assert env["WORKSPACE_ID"] == spec.workspace_id
    assert not any(key.startswith("MOLECULE_") and "TOKEN" in key for key in env)
    gateway = engine.client.networks.get("molecule-net").attrs["IPAM"]["Config"][0]["Gateway"]
    _, hosts = container.exec_run(["cat", "/etc/hosts"])
    assert f"{gateway}\t{CONSOLE_HOST_ALIAS}" in hosts.decode()
    assert instance.state["container"] == container.id
    assert instance.state["volume"] == volume_name(spec.workspace_id)
    assert instance.state["workspace_id"] == spec.workspace_id
    assert backend.is_running(instance)
    assert backend.list_instances() == [instance.instance_id]


def test_console_shows_what_started_and_the_agents_log(engine):
    backend = DockerBackend()
    instance = backend.start(make_spec())

    text = wait_for(
        lambda: (out := backend.console(instance)) and "console unreachable" in out and out,
        timeout=30,
    )
    first, second = text.splitlines()[:2]
    assert "molecule: container ws-" in first and "molecule-agent:latest" in first
    # The agent's very first line too: Podman's own tail would drop it.
    assert "serving on 0.0.0.0:8000" in second
    assert len(backend.console(instance, tail=2).splitlines()) == 2


def test_stop_is_fast_removes_the_container_and_is_idempotent(engine):
    backend = DockerBackend()
    spec = make_spec()
    instance = backend.start(spec)
    wait_for(lambda: health(instance.url) == 200, timeout=30)

    started = time.monotonic()
    backend.stop(instance)
    assert time.monotonic() - started < 5  # SIGTERM reached the agent: no stop timeout waited

    with pytest.raises(docker.errors.NotFound):
        engine.client.containers.get(instance.instance_id)
    backend.stop(instance)
    backend.stop(Instance(instance.instance_id))  # an orphan: the id alone
    assert not backend.is_running(instance)
    assert backend.console(instance) == ""
    assert backend.list_instances() == []
    # Storage outlives stop; remove_storage removes it, twice without complaint.
    engine.client.volumes.get(volume_name(spec.workspace_id))
    assert backend.has_storage(instance) is True
    backend.remove_storage(instance)
    backend.remove_storage(instance)
    with pytest.raises(docker.errors.NotFound):
        engine.client.volumes.get(volume_name(spec.workspace_id))
    assert backend.has_storage(instance) is False


def test_remove_storage_works_from_the_workspace_id_alone(engine):
    backend = DockerBackend()
    spec = make_spec()
    backend.stop(backend.start(spec))

    backend.remove_storage(Instance("", state={"workspace_id": spec.workspace_id}))

    with pytest.raises(docker.errors.NotFound):
        engine.client.volumes.get(volume_name(spec.workspace_id))


def test_a_workspace_dir_is_bound_at_workspace_and_never_removed(engine, tmp_path):
    folder = tmp_path / "pm"
    folder.mkdir()
    backend = DockerBackend()
    instance = backend.start(make_spec(workspace_dir=str(folder)))
    container = engine.client.containers.get(instance.instance_id)

    assert container.exec_run(["sh", "-c", "echo hi > /workspace/from-agent"]).exit_code == 0
    assert (folder / "from-agent").read_text() == "hi\n"

    backend.stop(instance)
    backend.remove_storage(instance)
    assert (folder / "from-agent").exists()
    assert instance.state["volume"] == ""
    assert backend.has_storage(instance) is None  # the operator's, not the engine's


def test_list_instances_sees_only_this_consoles_containers(engine, settings):
    mine = DockerBackend().start(make_spec())
    settings.MOLECULE_DOCKER_CONSOLE_ID = f"{CONSOLE_ID}-other"
    other_backend = DockerBackend()
    other = other_backend.start(make_spec())
    try:
        assert other_backend.list_instances() == [other.instance_id]
        settings.MOLECULE_DOCKER_CONSOLE_ID = CONSOLE_ID
        assert DockerBackend().list_instances() == [mine.instance_id]
    finally:
        other_backend.stop(other)
        other_backend.remove_storage(other)


def test_a_leftover_container_of_the_same_workspace_is_replaced(engine):
    backend = DockerBackend()
    spec = make_spec()
    forgotten = backend.start(spec)  # its result never recorded, say

    again = backend.start(spec)

    assert again.instance_id != forgotten.instance_id
    assert backend.list_instances() == [again.instance_id]


# --- errors an operator can act on --------------------------------------------------------------


def test_a_missing_image_is_a_permanent_error_that_says_how_to_build_it(engine, settings):
    settings.MOLECULE_WORKSPACE_IMAGE = "molecule-agent:not-built"
    spec = make_spec()

    with pytest.raises(BackendError) as refused:
        DockerBackend().start(spec)

    assert refused.value.permanent
    assert "scripts/agent-image" in refused.value.message
    assert "never pulled" in refused.value.message
    with pytest.raises(docker.errors.NotFound):
        engine.client.containers.get(container_name(spec.workspace_id))


def test_an_unreachable_engine_is_a_transient_error_that_says_so(docker_settings, settings):
    settings.MOLECULE_DOCKER_HOST = "unix:///nonexistent/engine.sock"

    with pytest.raises(BackendError) as refused:
        DockerBackend().start(make_spec())

    assert not refused.value.permanent
    assert "Cannot reach the container engine at unix:///nonexistent/engine.sock" in (
        refused.value.message
    )
    with pytest.raises(BackendError):
        DockerBackend().is_running(Instance("abc"))


def test_a_foreign_container_holding_the_name_is_refused_and_left_alone(engine):
    spec = make_spec()
    name = container_name(spec.workspace_id)
    foreign = engine.client.containers.create(
        engine.image, name=name, labels={LABEL_CONSOLE: CONSOLE_ID}, command=["true"]
    )

    with pytest.raises(BackendError) as refused:
        DockerBackend().start(spec)

    assert refused.value.permanent
    assert f"A container named {name} already exists" in refused.value.message
    assert f"docker rm -f {name}" in refused.value.message
    assert engine.client.containers.get(name).id == foreign.id


# --- the same errors through dispatch: the workspace ends failed, with the sentence --------------


@pytest.fixture
def docker_org(org: Any, docker_fleet: Engine) -> Any:
    org.backend = "docker"
    org.save(update_fields=["backend"])
    return org


def failure_of(workspace: Workspace) -> dict[str, Any]:
    assert Workspace.objects.get(pk=workspace.pk).status == Status.FAILED
    event = StructureEvent.objects.filter(
        workspace=workspace, event_type=EventType.WORKSPACE_PROVISION_FAILED
    ).get()
    return event.payload


@pytest.mark.django_db(transaction=True)
def test_dispatch_fails_a_workspace_whose_image_is_missing(docker_org, settings):
    settings.MOLECULE_WORKSPACE_IMAGE = "molecule-agent:not-built"

    workspace = dispatch.create_workspace(org=docker_org, name="PM", actor="test")

    assert "Build it with scripts/agent-image" in failure_of(workspace)["error"]


@pytest.mark.django_db(transaction=True)
def test_dispatch_fails_a_workspace_with_a_refused_workspace_dir(docker_org):
    # Every door refuses /etc now; the backend still checks a row from before that rule.
    workspace = dispatch.create_workspace(org=docker_org, name="PM", actor="test")
    Workspace.objects.filter(pk=workspace.pk).update(workspace_dir="/etc")
    dispatch.restart(workspace_id=workspace.pk, actor="test")

    assert "/etc is a system path" in failure_of(workspace)["error"]


@pytest.mark.django_db(transaction=True)
def test_dispatch_fails_a_workspace_when_the_engine_stays_unreachable(docker_org, settings):
    settings.MOLECULE_DOCKER_HOST = "unix:///nonexistent/engine.sock"
    # Eagerly, every retry runs at once; the last attempt gives up: failed, with the sentence,
    # not stuck in provisioning.
    workspace = dispatch.create_workspace(org=docker_org, name="PM", actor="test")

    assert Workspace.objects.get(pk=workspace.pk).status == Status.FAILED
    assert "Cannot reach the container engine" in failure_of(workspace)["error"]


@pytest.fixture(scope="module")
def oom_image(docker_engine: Engine) -> str:
    """The agent image with a CMD that allocates past T2's 512 MiB at once."""
    dockerfile = (
        f"FROM {docker_engine.image}\n"
        'CMD ["python3", "-c", "print(\'loading\', flush=True); b = b\'x\' * (1 << 30)"]\n'
    ).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    docker_engine.client.images.build(
        fileobj=context, custom_context=True, tag=OOM_IMAGE, pull=False
    )
    return OOM_IMAGE


@pytest.mark.django_db(transaction=True)
def test_an_out_of_memory_exit_fails_the_workspace_with_a_sentence(docker_org, settings, oom_image):
    settings.MOLECULE_WORKSPACE_IMAGE = oom_image

    workspace = dispatch.create_workspace(org=docker_org, name="PM", actor="test")
    assert wait_for(dispatch.health_sweep, timeout=60) == [str(workspace.pk)]

    payload = failure_of(workspace)
    assert payload["error"] == "the instance exited before the agent registered"
    assert "killed for using more than its 512 MiB memory limit" in payload["console"]
    assert "out of memory" in payload["console"]


@pytest.mark.django_db(transaction=True)
def test_a_container_killed_by_hand_is_not_taken_for_out_of_memory(docker_org, docker_fleet):
    workspace = dispatch.create_workspace(org=docker_org, name="PM", actor="test")
    wait_for(lambda: Workspace.objects.get(pk=workspace.pk).status == Status.ONLINE, timeout=90)
    workspace.refresh_from_db()
    docker_fleet.client.containers.get(workspace.instance_id).kill()

    output = wait_for(
        lambda: "exit 137" in (text := dispatch.console(workspace_id=workspace.pk)) and text,
        timeout=30,
    )
    assert "the container was killed (SIGKILL, exit 137)" in output
    assert "out of memory" not in output


# --- the agent contract: the configs volume, the environment, the image ------------------------


def run_inside(container: Any, script: str) -> bytes:
    code, output = container.exec_run(["sh", "-c", script])
    assert code == 0, output
    return output


def agent_configs(url: str) -> dict | None:
    try:
        return httpx.get(f"{url}/configs", timeout=2, trust_env=False).json()
    except httpx.HTTPError:
        return None


def test_the_configs_volume_holds_the_token_the_config_and_the_files(engine):
    seed = bytes(range(256)) * 3
    spec = make_spec(
        files={"skills/research/SKILL.md": b"# Research\n", "seed.bin": seed},
        config={"name": "PM", "role": "lead", "a2a": {"streaming": False}},
    )
    backend = DockerBackend()
    instance = backend.start(spec)
    container = engine.client.containers.get(instance.instance_id)

    [mount] = [m for m in container.attrs["Mounts"] if m["Destination"] == "/configs"]
    assert mount["Name"] == configs_volume_name(spec.workspace_id)
    assert run_inside(container, "cat /configs/.auth_token") == b"token-for-test"
    modes = run_inside(container, "stat -c %a /configs/.auth_token /configs/seed.bin")
    assert modes.split() == [b"600", b"600"]
    config = json.loads(run_inside(container, "cat /configs/config.yaml"))
    assert config["a2a"] == {"streaming": False, "port": 8000}
    assert config["role"] == "lead"
    assert run_inside(container, "cat /configs/skills/research/SKILL.md") == b"# Research\n"
    digest = run_inside(container, "sha256sum /configs/seed.bin").split()[0].decode()
    assert digest == hashlib.sha256(seed).hexdigest()
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["WORKSPACE_ID"] == spec.workspace_id
    assert env["PLATFORM_URL"] == f"http://{CONSOLE_HOST_ALIAS}:9"
    assert env["CONFIGS_DIR"] == env["WORKSPACE_CONFIG_PATH"] == "/configs"
    # The agent read them: it answers on the port config.yaml names, with what it found.
    report = wait_for(lambda: agent_configs(instance.url), timeout=30)
    assert report["files"]["seed.bin"] == digest
    assert report["token_mode"] == "0600"
    assert instance.ran.startswith(f"{engine.image} (sha256:")

    # The next instance gets its own token; what the agent wrote in /configs stays.
    run_inside(container, "echo kept > /configs/.initial_prompt_done")
    backend.stop(instance)
    second = backend.start(replace(spec, token="the-next-token", generation=4))
    container = engine.client.containers.get(second.instance_id)
    assert run_inside(container, "cat /configs/.auth_token") == b"the-next-token"
    assert run_inside(container, "cat /configs/.initial_prompt_done") == b"kept\n"

    # Delete takes the configs volume with the workspace volume.
    backend.stop(second)
    backend.remove_storage(second)
    for name in (volume_name(spec.workspace_id), configs_volume_name(spec.workspace_id)):
        with pytest.raises(docker.errors.NotFound):
            engine.client.volumes.get(name)


def test_a_link_left_in_the_configs_volume_is_replaced_not_followed(engine):
    spec = make_spec(files={"skills/x.md": b"delivered"})
    backend = DockerBackend()
    first = backend.start(spec)
    container = engine.client.containers.get(first.instance_id)
    run_inside(
        container,
        "rm -r /configs/skills && ln -s /etc /configs/skills && "
        "rm /configs/config.yaml && ln -s /etc/hostname /configs/config.yaml",
    )
    backend.stop(first)

    second = backend.start(spec)

    container = engine.client.containers.get(second.instance_id)
    assert run_inside(container, "test -L /configs/skills || echo real") == b"real\n"
    assert run_inside(container, "cat /configs/skills/x.md") == b"delivered"
    assert run_inside(container, "test -e /etc/x.md || echo clean") == b"clean\n"
    assert json.loads(run_inside(container, "cat /configs/config.yaml"))["a2a"]["port"] == 8000


def test_the_runtimes_image_runs_and_the_instance_says_so(engine):
    engine.client.images.get(engine.image).tag("molecule-runtime-test", "1")
    try:
        instance = DockerBackend().start(make_spec(image="molecule-runtime-test:1"))
        assert instance.state["image"] == "molecule-runtime-test:1"
        assert instance.ran.startswith("molecule-runtime-test:1 (sha256:")
        wait_for(lambda: health(instance.url) == 200, timeout=30)
    finally:
        remove_labelled(engine.client, CONSOLE_ID)
        engine.client.images.remove("molecule-runtime-test:1")


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape", "a/../../b", "a\0b", "a//b"])
def test_a_hostile_file_path_is_refused_before_anything_is_created(engine, path):
    spec = make_spec(files={path: b"pwned"})

    with pytest.raises(BackendError, match="cannot be delivered") as refused:
        DockerBackend().start(spec)

    assert refused.value.permanent
    with pytest.raises(docker.errors.NotFound):
        engine.client.containers.get(container_name(spec.workspace_id))
    with pytest.raises(docker.errors.NotFound):
        engine.client.volumes.get(configs_volume_name(spec.workspace_id))


def test_a_platform_url_the_console_would_turn_away_is_refused(engine, settings):
    settings.ALLOWED_HOSTS = ["console.example"]
    with pytest.raises(BackendError, match="not in ALLOWED_HOSTS") as refused:
        DockerBackend().start(make_spec())
    assert refused.value.permanent
