"""The local backend on its own: real agent processes, checked from the outside through /proc.

These call ``LocalBackend`` directly with an ``InstanceSpec``, the way dispatch does, but without
a console: the agents are pointed at a closed port and just keep retrying to register, which is
all a backend-level test needs of them. tests/workspaces/test_local_fleet.py runs the same backend
through dispatch with a live console.

The /proc helpers (tests/support/procs.py) read /proc themselves rather than reuse the backend's
own, so a mistake there cannot hide itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.support.agents import CLOSED_REGISTRY, health, make_spec
from tests.support.procs import (
    address_space_limit,
    environ,
    group_members,
    is_alive,
    kill_all_under,
    processes_under,
)
from tests.support.waiting import wait_for
from workspaces.backends import BackendError, Instance
from workspaces.backends.configs import MAX_FILE_BYTES
from workspaces.backends.local import LocalBackend
from workspaces.tiers import MiB

# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def root(local_root: Path) -> Iterator[Path]:
    folder = local_root / "root"
    yield folder
    # Whatever a failing test left running (agents, sidecars) goes with it.
    kill_all_under(folder)


@pytest.fixture
def backend(root: Path) -> LocalBackend:
    return LocalBackend(root)


def pid_and_ticks(instance: Instance) -> tuple[int, int]:
    return instance.state["pid"], instance.state["start_ticks"]


# --- start ------------------------------------------------------------------------------------


def test_start_runs_the_agent_in_its_own_process_group_and_directory(backend, root):
    spec = make_spec()
    instance = backend.start(spec)
    pid, ticks = pid_and_ticks(instance)

    assert instance.instance_id == f"local:{pid}:{ticks}"
    assert is_alive(pid, ticks)
    # Its own group (so stop can take the whole group), not the test runner's.
    assert os.getpgid(pid) == pid != os.getpgid(0)
    home = root / spec.workspace_id
    assert Path(f"/proc/{pid}/cwd").resolve() == (home / "workspace").resolve()
    assert environ(pid)["HOME"] == str(home / "home")
    assert (home / "instance.json").exists()
    # The agent listens on loopback only, on the port the instance url names.
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", instance.url)
    assert wait_for(lambda: health(instance.url) == 200, timeout=20)
    assert backend.is_running(instance)


def test_two_workspaces_get_separate_directories_and_ports(backend, root):
    first, second = backend.start(make_spec()), backend.start(make_spec())
    assert first.state["dir"] != second.state["dir"]
    assert first.url != second.url
    wait_for(lambda: health(first.url) == 200 and health(second.url) == 200, timeout=20)


# --- stop -------------------------------------------------------------------------------------


def test_stop_kills_the_whole_process_group_including_a_sidecar(backend, root):
    instance = backend.start(make_spec(env={"MOLECULE_AGENT_SIDECAR": "sleep 300"}))
    pid, _ = pid_and_ticks(instance)
    members = wait_for(lambda: len(group_members(pid)) == 2 and group_members(pid), timeout=20)
    (sidecar,) = set(members) - {pid}
    assert Path(f"/proc/{sidecar}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"300"]

    backend.stop(instance)

    assert group_members(pid) == []
    assert not is_alive(sidecar)
    assert processes_under(root) == []
    assert not (Path(instance.state["dir"]) / "instance.json").exists()


def test_stop_is_idempotent(backend):
    instance = backend.start(make_spec())
    backend.stop(instance)
    backend.stop(instance)  # a second stop is quiet
    assert not backend.is_running(instance)


def test_stopping_an_instance_whose_process_already_died_is_quiet(backend):
    instance = backend.start(make_spec())
    pid, ticks = pid_and_ticks(instance)
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not backend.is_running(instance), timeout=10)
    backend.stop(instance)
    assert not is_alive(pid, ticks)
    assert not backend.is_running(instance)


def test_a_stateless_instance_as_the_orphan_sweep_has_can_be_stopped(backend, root):
    instance = backend.start(make_spec(env={"MOLECULE_AGENT_SIDECAR": "sleep 300"}))
    pid, _ = pid_and_ticks(instance)
    wait_for(lambda: len(group_members(pid)) == 2, timeout=20)
    bare = Instance(instance.instance_id)  # no url, no state: only what list_instances gives

    assert backend.is_running(bare)
    backend.stop(bare)

    assert group_members(pid) == []
    assert not backend.is_running(bare)
    assert backend.list_instances() == []


def test_an_instance_id_the_backend_did_not_make_is_left_alone(backend):
    instance = backend.start(make_spec())
    for foreign in (Instance("docker:0123456789ab"), Instance(""), Instance("local:x:y")):
        assert not backend.is_running(foreign)
        backend.stop(foreign)  # nothing to identify: a no-op, not an error
    assert backend.is_running(instance)


# --- is_running -------------------------------------------------------------------------------


def test_a_killed_agent_is_not_running(backend):
    instance = backend.start(make_spec())
    pid, _ = pid_and_ticks(instance)
    assert backend.is_running(instance)
    os.kill(pid, signal.SIGKILL)
    # A SIGKILLed child is a zombie until reaped; it must not count as running.
    wait_for(lambda: not backend.is_running(instance), timeout=10)
    assert backend.list_instances() == []


def test_a_recycled_pid_is_not_taken_for_the_agent(backend):
    # Another process now holds the pid (here: a newer agent, which leads its own group too);
    # the stale record is recognisable by its start time.
    instance = backend.start(make_spec())
    pid, ticks = pid_and_ticks(instance)
    for stale_ticks in (ticks - 100, ticks + 100):
        stale = Instance(
            f"local:{pid}:{stale_ticks}", state={"pid": pid, "start_ticks": stale_ticks}
        )
        assert not backend.is_running(stale)
        assert not backend.is_running(Instance(stale.instance_id))
    assert backend.is_running(instance)


def test_stopping_a_stale_record_does_not_signal_the_process_that_recycled_its_pid(backend):
    # The realistic stale record: the old process started earlier than whoever has its pid now.
    newer = backend.start(make_spec())
    pid, ticks = pid_and_ticks(newer)
    stale = Instance(f"local:{pid}:{ticks - 100}", state={"pid": pid, "start_ticks": ticks - 100})

    backend.stop(stale)

    assert is_alive(pid, ticks), "the newer process that reuses the pid was killed"


# --- tier limits ------------------------------------------------------------------------------


def test_t2_is_limited_to_512_mib_of_address_space_and_one_cpu(backend):
    instance = backend.start(make_spec(tier=2))
    pid, _ = pid_and_ticks(instance)
    assert address_space_limit(pid) == str(512 * MiB)
    assert len(os.sched_getaffinity(pid)) == 1
    # Limited, yet it runs: the agent fits in the box.
    wait_for(lambda: health(instance.url) == 200, timeout=20)


def test_t3_has_no_address_space_limit_and_every_cpu(backend):
    instance = backend.start(make_spec(tier=3))
    pid, _ = pid_and_ticks(instance)
    assert address_space_limit(pid) == "unlimited"
    assert os.sched_getaffinity(pid) == os.sched_getaffinity(0)


def test_t1_gets_no_workspace_directory_while_t2_does(backend, root):
    sandboxed, standard = backend.start(make_spec(tier=1)), backend.start(make_spec(tier=2))
    sandboxed_pid, standard_pid = sandboxed.state["pid"], standard.state["pid"]

    assert "MOLECULE_WORKSPACE_DIR" not in environ(sandboxed_pid)
    assert not (Path(sandboxed.state["dir"]) / "workspace").exists()
    assert (
        Path(f"/proc/{sandboxed_pid}/cwd").resolve()
        == (Path(sandboxed.state["dir"]) / "tmp").resolve()
    )
    assert address_space_limit(sandboxed_pid) == str(512 * MiB)

    workspace_dir = Path(environ(standard_pid)["MOLECULE_WORKSPACE_DIR"])
    assert workspace_dir == Path(standard.state["dir"]) / "workspace"
    assert workspace_dir.is_dir()


# --- console, storage, listing ----------------------------------------------------------------


def test_console_has_the_boot_header_and_the_agents_output(backend):
    spec = make_spec()
    instance = backend.start(spec)
    text = wait_for(
        lambda: "console unreachable" in (out := backend.console(instance)) and out, timeout=20
    )
    lines = text.splitlines()
    assert "molecule: starting agent (generation 1, T2 standard, runtime langgraph)" in lines[0]
    assert instance.url in lines[0]
    assert any(f"workspace {spec.workspace_id} serving on" in line for line in lines)
    assert len(backend.console(instance, tail=1).splitlines()) == 1


def test_console_of_an_instance_with_no_directory_is_empty(backend):
    assert backend.console(Instance("local:1:1")) == ""


def test_remove_storage_deletes_the_workspace_directory(backend, root):
    spec = make_spec()
    instance = backend.start(spec)
    (Path(environ(instance.state["pid"])["MOLECULE_WORKSPACE_DIR"]) / "notes.txt").write_text("x")
    backend.stop(instance)

    backend.remove_storage(instance)
    backend.remove_storage(instance)  # idempotent

    assert not (root / spec.workspace_id).exists()


def test_remove_storage_keeps_an_operator_provided_workspace_dir(backend, root, tmp_path):
    operator_dir = tmp_path / "srv-acme"
    operator_dir.mkdir()
    (operator_dir / "notes.txt").write_text("the operator's data")
    spec = make_spec(workspace_dir=str(operator_dir))
    instance = backend.start(spec)
    pid = instance.state["pid"]
    assert environ(pid)["MOLECULE_WORKSPACE_DIR"] == str(operator_dir)
    assert Path(f"/proc/{pid}/cwd").resolve() == operator_dir.resolve()
    backend.stop(instance)

    backend.remove_storage(instance)

    assert not (root / spec.workspace_id).exists()
    assert (operator_dir / "notes.txt").read_text() == "the operator's data"


def test_list_instances_lists_running_instances_only(backend):
    stopped, killed, running = (backend.start(make_spec()) for _ in range(3))
    backend.stop(stopped)
    os.killpg(killed.state["pid"], signal.SIGKILL)
    wait_for(lambda: not backend.is_running(killed), timeout=10)

    assert backend.list_instances() == [running.instance_id]


# --- who the agent runs as --------------------------------------------------------------------

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a process as another")


def ids_of(pid: int) -> tuple[int, int, str]:
    """(uid, gid, supplementary groups) of a process, from /proc."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["Uid"].split()[0]), int(status["Gid"].split()[0]), status["Groups"].strip()


def owner_and_mode(path: Path) -> tuple[int, int]:
    found = path.lstat()
    return found.st_uid, stat.S_IMODE(found.st_mode)


@as_root
def test_as_root_each_agent_runs_as_a_uid_of_its_own_in_private_directories(
    backend, root, settings
):
    first, second = backend.start(make_spec(tier=2)), backend.start(make_spec(tier=1))
    uids = range(
        settings.MOLECULE_LOCAL_UID_BASE,
        settings.MOLECULE_LOCAL_UID_BASE + settings.MOLECULE_LOCAL_UID_COUNT,
    )
    seen = set()
    for instance in (first, second):
        uid, gid, groups = ids_of(instance.state["pid"])
        assert uid in uids and gid == uid and groups == ""
        assert instance.state["uid"] == uid
        seen.add(uid)
        base = Path(instance.state["dir"])
        # The console's directory: the agent passes through it, lists and writes nothing.
        assert owner_and_mode(base) == (0, 0o711)
        for name in ("console.log", "instance.json"):
            assert owner_and_mode(base / name) == (0, 0o600)
        for name in ("home", "tmp"):
            assert owner_and_mode(base / name) == (uid, 0o700)
    assert len(seen) == 2
    assert owner_and_mode(Path(first.state["dir"]) / "workspace") == (first.state["uid"], 0o700)
    assert owner_and_mode(root) == (0, 0o711)
    # Stop still reaches a process of another user.
    backend.stop(first)
    assert not backend.is_running(first)


@as_root
def test_a_workspace_keeps_its_uid_and_two_workspaces_never_share_one(backend, settings):
    settings.MOLECULE_LOCAL_UID_COUNT = 2  # every hash lands on one of two uids
    spec = make_spec()
    instance = backend.start(spec)
    uid = instance.state["uid"]
    backend.stop(instance)
    assert backend.start(spec).state["uid"] == uid  # the same user at every start

    other = backend.start(make_spec())
    assert {uid, other.state["uid"]} == {
        settings.MOLECULE_LOCAL_UID_BASE,
        settings.MOLECULE_LOCAL_UID_BASE + 1,
    }
    with pytest.raises(BackendError, match="raise MOLECULE_LOCAL_UID_COUNT") as refused:
        backend.start(make_spec())
    assert refused.value.permanent


@as_root
def test_a_directory_left_by_an_agent_that_ran_as_root_is_handed_over_with_its_contents(
    backend, root
):
    spec = make_spec()
    old = root / spec.workspace_id / "workspace" / "project"
    old.mkdir(parents=True)
    (old / "notes.txt").write_text("written when agents ran as root")
    (old / "link").symlink_to("/etc/passwd")
    instance = backend.start(spec)
    uid = instance.state["uid"]
    assert old.stat().st_uid == (old / "notes.txt").stat().st_uid == uid
    assert (old / "link").lstat().st_uid == uid
    assert Path("/etc/passwd").stat().st_uid == 0  # the link itself, never its target


def test_without_root_the_agent_runs_as_the_consoles_user(backend, monkeypatch):
    # Only root can start a process as another user; otherwise the agent is the console's
    # user (the capabilities notes and the README say so).
    monkeypatch.setattr("workspaces.backends.local.switches_users", lambda: False)
    instance = backend.start(make_spec())
    assert ids_of(instance.state["pid"])[0] == os.geteuid()
    assert instance.state["uid"] is None
    assert Path(f"/proc/{instance.state['pid']}/cmdline").read_bytes().split(b"\0")[1] == b"-I"


@as_root
def test_a_root_the_agents_users_cannot_reach_is_refused_with_the_directory_to_open(tmp_path):
    # pytest keeps /tmp/pytest-of-<user> at 0700: an agent of its own uid cannot pass through.
    with pytest.raises(BackendError, match=r"cannot pass through /tmp/pytest-of-\w+ \(mode 0700"):
        LocalBackend(tmp_path / "root").start(make_spec())


@as_root
def test_a_workspace_dir_the_backend_creates_is_the_agents_and_goes_back_on_delete(
    backend, local_root
):
    folder = local_root / "srv" / "acme" / "pm"
    instance = backend.start(make_spec(workspace_dir=str(folder)))
    uid = instance.state["uid"]
    assert owner_and_mode(folder) == (uid, 0o700)
    assert owner_and_mode(folder.parent) == (0, 0o755)  # only the directory itself
    (folder / "notes.txt").write_text("the agent's work")
    os.chown(folder / "notes.txt", uid, uid)
    backend.stop(instance)

    backend.remove_storage(instance)

    # Kept (it is the operator's place), but no longer the uid's, which another may get later.
    assert (folder / "notes.txt").read_text() == "the agent's work"
    assert folder.stat().st_uid == (folder / "notes.txt").stat().st_uid == 0


@as_root
def test_an_existing_workspace_dir_keeps_its_owner_and_the_log_names_the_uid(backend, local_root):
    folder = local_root / "srv-existing"
    folder.mkdir()
    instance = backend.start(make_spec(workspace_dir=str(folder)))
    uid = instance.state["uid"]
    assert owner_and_mode(folder)[0] == 0
    assert f"chown -R {uid}:{uid}" in backend.console(instance)


@as_root
def test_a_workspace_dir_that_belongs_to_another_workspaces_agent_is_refused(backend, local_root):
    theirs = local_root / "srv-theirs"
    other = backend.start(make_spec(workspace_dir=str(theirs)))
    with pytest.raises(BackendError, match=f"belongs to uid {other.state['uid']}") as refused:
        backend.start(make_spec(workspace_dir=str(theirs)))
    assert refused.value.permanent


# --- the agent contract: configs directory, environment, command ------------------------------

TEMPLATE_FILES = {
    "skills/research/SKILL.md": b"# Research\n",
    "seed.bin": bytes(range(256)),
    # A template shipping these never replaces what the console writes.
    "config.yaml": b"shipped: true\n",
    ".auth_token": b"shipped",
}


def agent_owner(instance: Instance) -> int:
    return instance.state["uid"] if instance.state["uid"] is not None else os.geteuid()


def test_the_configs_directory_holds_the_token_the_config_and_the_files(backend, root):
    spec = make_spec(
        files=TEMPLATE_FILES,
        config={"name": "probe", "role": "PM", "a2a": {"streaming": False}},
    )
    instance = backend.start(spec)
    pid, uid = instance.state["pid"], agent_owner(instance)
    configs = root / spec.workspace_id / "configs"

    assert owner_and_mode(configs) == (uid, 0o700)
    assert (configs / ".auth_token").read_bytes() == b"not-a-real-token"
    assert owner_and_mode(configs / ".auth_token") == (uid, 0o600)
    config = json.loads((configs / "config.yaml").read_text())
    assert config["a2a"] == {"streaming": False, "port": instance.state["port"]}
    assert (config["name"], config["role"]) == ("probe", "PM")
    assert (configs / "skills" / "research" / "SKILL.md").read_bytes() == b"# Research\n"
    assert (configs / "seed.bin").read_bytes() == bytes(range(256))
    assert owner_and_mode(configs / "seed.bin") == (uid, 0o600)
    assert owner_and_mode(configs / "skills" / "research") == (uid, 0o700)
    env = environ(pid)
    assert env["WORKSPACE_ID"] == spec.workspace_id
    assert env["PLATFORM_URL"] == CLOSED_REGISTRY
    assert env["CONFIGS_DIR"] == env["WORKSPACE_CONFIG_PATH"] == str(configs)
    # The agent reads them: it listens on config.yaml's port and reports what it found.
    report = wait_for(lambda: configs_seen(instance.url), timeout=20)
    assert report["files"]["seed.bin"] == hashlib.sha256(bytes(range(256))).hexdigest()
    assert report["token_mode"] == "0600"
    assert instance.ran == shlex.join(
        [*Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]]
    )


def configs_seen(url: str) -> dict | None:
    try:
        return httpx.get(f"{url}/configs", timeout=2, trust_env=False).json()
    except httpx.HTTPError:
        return None


def test_every_start_writes_the_new_instances_token_and_keeps_what_the_agent_wrote(backend, root):
    spec = make_spec()
    first = backend.start(spec)
    configs = root / spec.workspace_id / "configs"
    (configs / ".initial_prompt_done").write_text("a marker the runtime keeps")
    backend.stop(first)

    second = backend.start(replace(spec, token="the-next-token", generation=2))

    assert (configs / ".auth_token").read_bytes() == b"the-next-token"
    assert owner_and_mode(configs / ".auth_token") == (agent_owner(second), 0o600)
    assert (
        json.loads((configs / "config.yaml").read_text())["a2a"]["port"] == (second.state["port"])
    )
    assert (configs / ".initial_prompt_done").read_text() == "a marker the runtime keeps"


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../escape", "skills/../../escape", "a\0b", "", "a//b", "./a", "a\\b", "a/"],
)
def test_a_hostile_file_path_is_refused_before_anything_is_written(backend, root, path):
    spec = make_spec(files={"fine.md": b"ok", path: b"pwned"})

    with pytest.raises(BackendError, match="cannot be delivered") as refused:
        backend.start(spec)

    assert refused.value.permanent
    assert not (root / spec.workspace_id).exists()
    assert not (root.parent / "escape").exists()


def test_oversized_or_clashing_files_are_refused(backend):
    for files in (
        {"big.bin": b"x" * (MAX_FILE_BYTES + 1)},
        {"a": b"file", "a/b": b"under a file"},
    ):
        with pytest.raises(BackendError, match="cannot be delivered"):
            backend.start(make_spec(files=files))


def test_links_an_agent_left_in_its_configs_are_replaced_never_followed(backend, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    spec = make_spec(files={"skills/x.md": b"delivered", "victim": b"delivered"})
    backend.stop(backend.start(spec))
    configs = root / spec.workspace_id / "configs"
    # What a hostile agent could leave for the console's next start.
    shutil.rmtree(configs / "skills")
    (configs / "skills").symlink_to(outside)
    (configs / "victim").unlink()
    (configs / "victim").symlink_to(outside / "victim")
    (configs / ".auth_token").unlink()
    (configs / ".auth_token").symlink_to(outside / "victim")

    backend.start(spec)

    assert (outside / "victim").read_text() == "untouched"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert not (configs / "skills").is_symlink()
    assert (configs / "skills" / "x.md").read_bytes() == b"delivered"
    assert not (configs / "victim").is_symlink()
    assert (configs / ".auth_token").read_bytes() == b"not-a-real-token"


def test_a_platform_url_the_console_would_turn_away_is_refused(backend, settings):
    settings.ALLOWED_HOSTS = ["console.example"]
    with pytest.raises(BackendError, match="not in ALLOWED_HOSTS") as refused:
        backend.start(make_spec())
    assert refused.value.permanent


def test_a_runtime_command_runs_as_given_with_the_contract(backend, root):
    script = 'printf %s "$WORKSPACE_ID $(pwd)" > "$CONFIGS_DIR/seen"; exec sleep 300'
    spec = make_spec(command=("sh", "-c", script))
    instance = backend.start(spec)
    pid = instance.state["pid"]

    assert instance.ran == shlex.join(["sh", "-c", script])
    seen = root / spec.workspace_id / "configs" / "seen"
    wait_for(lambda: seen.exists() and seen.read_text().strip(), timeout=10)
    assert seen.read_text() == f"{spec.workspace_id} {root / spec.workspace_id / 'workspace'}"
    assert ids_of(pid)[0] == agent_owner(instance)
    assert address_space_limit(pid) == str(512 * MiB)  # the tier's limits, whatever runs
    assert "sh -c" in backend.console(instance).splitlines()[0]
    backend.stop(instance)
    assert not is_alive(pid)


def test_a_runtime_command_that_does_not_exist_is_a_permanent_error(backend):
    with pytest.raises(BackendError, match="cannot run molecule-no-such-runtime") as refused:
        backend.start(make_spec(command=("molecule-no-such-runtime", "--serve")))
    assert refused.value.permanent
    assert backend.list_instances() == []
