"""Issue 9, replayed: an org API token tried to run a command as root on the console's host.

The attack: secrets become the agent's environment, so ``PYTHONWARNINGS=ignore::antigravity.x``
(Python imports ``antigravity`` at start-up to resolve the warning filter, which opens a web
browser) plus ``BROWSER="/bin/sh -c '…' %s"``, then a restart, ran the command as root a second
later, on any workspace, tier 1 included. Here the whole attack goes through the JSON API with
an org token, on the real local backend with real agents, with that pair and the rest of the
family (the interpreter's other variables, the dynamic loader's, a shell's rc files, lower-case
proxy settings). Each variable is either refused by the secret name rule, or, where a name
passes it, stored and handed to the agent, where it must have no effect at all. After the
restart the agents are online again, and nothing ran: no marker file appeared in a directory
anybody could write to, the agent's process group holds the agent alone, and (the suite runs as
root) the agent runs as an unprivileged uid of its own that cannot read the console's files.

A docker variant hands the same pair straight to the docker backend (the name rule would refuse
``PYTHONWARNINGS`` at the API) and checks that the image's isolated interpreter ignores it.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from orgs.models import Org
from tests.support.agents import make_spec
from tests.support.engine import CONSOLE_ID, Engine, remove_labelled
from tests.support.keys import Api, api, mint_token
from tests.support.procs import environ, group_members, is_alive
from tests.support.waiting import wait_for
from workspaces.backends import BackendError, InstanceSpec
from workspaces.backends.docker import DockerBackend
from workspaces.backends.local import LocalBackend
from workspaces.models import Status, Workspace
from workspaces.tiers import tier_settings

pytestmark = pytest.mark.django_db(transaction=True)
# The engine fixtures, for the docker variant.
pytest_plugins = ["tests.support.engine_fixtures"]


def process_ids(pid: int) -> dict[str, list[int]]:
    """The Uid, Gid and Groups lines of /proc/<pid>/status."""
    lines = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {key: [int(n) for n in lines[key].split()] for key in ("Uid", "Gid", "Groups")}


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.fixture
def trap(local_root: Path) -> Path:
    """A directory anyone may write to: whoever a command ran as, its marker would land here.

    It holds the attacker's helper files too (readable by all): a sitecustomize module for
    PYTHONPATH, a start-up file for PYTHONSTARTUP, an rc file for shells (BASH_ENV, ENV).
    """
    folder = local_root / "trap"
    folder.mkdir()
    folder.chmod(0o1777)
    helpers = local_root / "helpers"
    (helpers / "site").mkdir(parents=True)
    (helpers / "site" / "sitecustomize.py").write_text(
        f"open({str(folder / 'sitecustomize')!r}, 'w').close()\n"
    )
    (helpers / "startup.py").write_text(f"open({str(folder / 'pythonstartup')!r}, 'w').close()\n")
    (helpers / "rc.sh").write_text(f"touch {folder}/shell-rc\n")
    for path in [helpers, *helpers.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def attack(trap: Path) -> dict[str, str]:
    helpers = trap.parent / "helpers"
    return {
        # The pair that did it.
        "PYTHONWARNINGS": "ignore::antigravity.x",
        "BROWSER": f"/bin/sh -c 'touch {trap}/browser' %s",
        # The interpreter's other doors.
        "PYTHONSTARTUP": str(helpers / "startup.py"),
        "PYTHONPATH": str(helpers / "site"),
        "PYTHONINSPECT": "1",
        # The dynamic loader's, read before any program runs.
        "LD_PRELOAD": str(trap / "evil.so"),
        "LD_DEBUG": "files",
        "LD_DEBUG_OUTPUT": str(trap / "ld-debug"),
        "GLIBC_TUNABLES": "glibc.malloc.check=3",
        # Shells' start-up files (no shell is ever started for an agent).
        "BASH_ENV": str(helpers / "rc.sh"),
        "ENV": str(helpers / "rc.sh"),
        # Lower case: the proxy curl obeys, and the shape of no credential.
        "http_proxy": "http://127.0.0.1:9",
        # The platform's own.
        "MOLECULE_AGENT_SIDECAR": f"/bin/sh -c 'touch {trap}/sidecar'",
        "PATH": str(trap),
    }


# What the name rule lets through: upper-case names nothing on the way to the agent reads.
PASSES = {"BROWSER", "BASH_ENV", "ENV"}


def online(workspace_id: str) -> Workspace:
    def ready() -> Workspace | None:
        row = Workspace.objects.get(pk=workspace_id)
        return row if row.status == Status.ONLINE and row.backend_state.get("pid") else None

    return wait_for(ready, timeout=40)


def run_as(uid: int, code: str) -> subprocess.CompletedProcess[str]:
    """Python code run as ``uid`` (with the interpreter the backend found for agents)."""
    from workspaces.backends import local

    python = local._agent_python.get("python", "/usr/bin/python3")
    return subprocess.run(
        [python, "-I", "-c", code],
        user=uid,
        group=uid,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
    )


def can_read(uid: int, path: Path | str) -> bool:
    ran = run_as(uid, f"open({str(path)!r}, 'rb').read(1)")
    return ran.returncode == 0


@pytest.mark.parametrize("tier", [1, 2])
def test_an_org_token_cannot_steer_the_agents_start_or_run_anything_as_root(
    local_fleet: Path, org: Org, trap: Path, tier: int
) -> None:
    client: Api = api(mint_token(org))
    base = f"orgs/{org.slug}/workspaces"
    created = client.post(base, {"name": f"Target T{tier}", "tier": tier})
    assert created.status_code == 201, created.content
    workspace_id = created.json()["id"]
    before = online(workspace_id)

    stored, refused = set(), {}
    for key, value in attack(trap).items():
        response = client.put(f"{base}/{workspace_id}/secrets/{key}", {"value": value})
        if response.status_code == 400:
            refused[key] = response.json()["fields"]["key"][0]
        else:
            assert response.status_code == 201, (key, response.content)
            stored.add(key)

    restarted = client.post(f"{base}/{workspace_id}/restart")
    assert restarted.status_code == 202, restarted.content
    new = wait_for(
        lambda: (
            (row := Workspace.objects.get(pk=workspace_id)).backend_state.get("pid")
            and row.instance_id != before.instance_id
            and row
        )
    )
    # The original attack's command ran a second after the restart: give it more than that.
    time.sleep(2)
    assert sorted(p.name for p in trap.iterdir()) == [], "something ran"
    assert group_members(new.backend_state["pid"]) == [new.backend_state["pid"]], (
        "the agent started something beside itself"
    )

    # Refused by the name rule, each with its reason; the rest stored, and inert (below).
    assert stored == PASSES
    assert refused["PYTHONWARNINGS"] == "PYTHONWARNINGS is reserved for the platform"
    assert refused["LD_DEBUG"] == (
        "LD_DEBUG is read by the dynamic loader, so no agent is started with it"
    )
    assert refused["http_proxy"].startswith("must be upper-case letters")
    row = online(workspace_id)
    pid = row.backend_state["pid"]
    assert pid == new.backend_state["pid"]
    assert is_alive(pid)
    env = environ(pid)
    # The names that passed did reach the agent, and did nothing there.
    assert {key: env.get(key) for key in PASSES} == {
        key: value for key, value in attack(trap).items() if key in PASSES
    }
    assert not {key for key in env if key.startswith(("PYTHON", "LD_", "GLIBC_"))}
    assert env["PATH"] == os.environ.get("PATH", "/usr/bin:/bin")
    assert not any(key.islower() for key in env)
    # The interpreter runs isolated: no PYTHON* variable, user site or cwd is looked at.
    assert cmdline(pid)[1:4] == ["-I", "-u", "-B"]

    if os.geteuid() == 0:
        # Not root, not the console's user: a user of its own, with no groups beside its own.
        ids = process_ids(pid)
        uid = ids["Uid"][0]
        assert set(ids["Uid"]) == {uid} and set(ids["Gid"]) == {uid}
        assert ids["Groups"] == []
        first = settings.MOLECULE_LOCAL_UID_BASE
        assert first <= uid < first + settings.MOLECULE_LOCAL_UID_COUNT
        # From there, the console's secrets are out of reach: its key files and database,
        # its own environment (the admin token would be there), the agent's own boot log and
        # instance record (the console's files), and what the console keeps in var/.
        home = Path(row.backend_state["dir"])
        for path in (
            Path(settings.VAR_DIR) / "secrets_encryption_key",
            Path(settings.VAR_DIR) / "secret_key",
            Path(settings.VAR_DIR) / "molecule.sqlite3",
            f"/proc/{os.getpid()}/environ",
            home / "console.log",
            home / "instance.json",
        ):
            if Path(path).exists():
                assert not can_read(uid, path), path
        listing = run_as(uid, f"import os; os.listdir({str(settings.VAR_DIR)!r})")
        assert listing.returncode != 0, "the agent listed var/"
        # Its own directories it can use.
        assert run_as(uid, f"open({str(home / 'tmp' / 'x')!r}, 'w')").returncode == 0


def test_one_orgs_agent_cannot_read_another_orgs_files(
    local_fleet: Path, org: Org, other_org: Org
) -> None:
    if os.geteuid() != 0:
        pytest.skip("agents run as users of their own only when the console runs as root")
    rows = {}
    for owner in (org, other_org):
        client = api(mint_token(owner))
        response = client.post(f"orgs/{owner.slug}/workspaces", {"name": "PM"})
        assert response.status_code == 201, response.content
        rows[owner.slug] = online(response.json()["id"])
    ours, theirs = rows[org.slug], rows[other_org.slug]
    our_uid = process_ids(ours.backend_state["pid"])["Uid"][0]
    their_uid = process_ids(theirs.backend_state["pid"])["Uid"][0]
    assert our_uid != their_uid
    their_dir = Path(theirs.backend_state["dir"])
    (their_dir / "workspace" / "notes.txt").write_text("globex's plans")
    os.chown(their_dir / "workspace" / "notes.txt", their_uid, their_uid)
    for path in ("workspace/notes.txt", "home", "tmp", "console.log"):
        assert not can_read(our_uid, their_dir / path), path
    assert can_read(their_uid, their_dir / "workspace" / "notes.txt")


# --- docker -------------------------------------------------------------------------------------


def test_the_docker_image_runs_the_agent_with_an_isolated_interpreter(
    docker_settings: Engine,
) -> None:
    engine = docker_settings
    try:
        backend = DockerBackend()
        for tier in (1, 2):
            spec = _docker_spec(tier)
            instance = backend.start(spec)
            container = engine.client.containers.get(instance.state["container"])
            # Running, and it had its chance at start-up: it logged that it serves.
            wait_for(lambda c=container: b"serving on" in c.logs(), timeout=60)
            time.sleep(1)
            found = container.exec_run(["python3", "-I", "-c", CHECK_MARKER]).output.decode()
            assert found.strip() == "clean", (tier_settings(tier).label, found)
            assert container.attrs["Config"]["Cmd"][:4] == ["python3", "-I", "-u", "-B"]
            backend.stop(instance)
    finally:
        remove_labelled(engine.client, CONSOLE_ID)


CHECK_MARKER = "import os; print('pwned' if os.path.exists('/tmp/pwned') else 'clean')"


def _docker_spec(tier: int) -> InstanceSpec:
    workspace_id = str(uuid.uuid4())
    return InstanceSpec(
        workspace_id=workspace_id,
        name="target",
        org_slug="acme",
        runtime="langgraph",
        tier=tier_settings(tier),
        generation=1,
        env={
            "MOLECULE_WORKSPACE_ID": workspace_id,
            "MOLECULE_WORKSPACE_TOKEN": "token-for-test",
            "MOLECULE_REGISTRY_URL": "http://127.0.0.1:9",
            # Handed over directly: the API's name rule would refuse PYTHONWARNINGS.
            "PYTHONWARNINGS": "ignore::antigravity.x",
            "BROWSER": "/bin/sh -c 'touch /tmp/pwned' %s",
        },
    )


# --- the backend alone, with the name rule out of the way -----------------------------------------


def test_the_local_backend_starts_the_agent_deaf_to_the_interpreters_variables(
    local_root: Path, trap: Path
) -> None:
    # Handed to the backend directly, as a row from before the name rule would be: the
    # isolated interpreter ignores every PYTHON* variable, so the pair does nothing.
    env = {key: attack(trap)[key] for key in ("PYTHONWARNINGS", "BROWSER", "PYTHONPATH")}
    env["PYTHONSTARTUP"] = attack(trap)["PYTHONSTARTUP"]
    backend = LocalBackend(local_root / "root")
    instance = backend.start(make_spec(tier=1, env=env))
    try:
        pid = instance.state["pid"]
        wait_for(lambda: "serving on" in backend.console(instance), timeout=20)
        time.sleep(1)
        assert sorted(p.name for p in trap.iterdir()) == [], "something ran"
        assert group_members(pid) == [pid]
        assert environ(pid)["PYTHONWARNINGS"] == "ignore::antigravity.x"  # there, and inert
    finally:
        backend.stop(instance)


@pytest.mark.parametrize(
    "env",
    [
        {"LD_PRELOAD": "/nonexistent.so"},
        {"LD_DEBUG": "files", "LD_DEBUG_OUTPUT": "/tmp/ld"},
        {"GLIBC_TUNABLES": "glibc.malloc.check=3"},
        {"GCONV_PATH": "/tmp"},
        {"http_proxy": "http://127.0.0.1:9"},
    ],
)
def test_the_backends_refuse_what_no_interpreter_flag_can_neutralise(
    local_root: Path, env: dict[str, str]
) -> None:
    # The dynamic loader reads these before the interpreter exists; a lower-case name has no
    # place in an agent's environment. A row that slipped past the name rule stops here.
    with pytest.raises(BackendError, match="which no agent is started with") as refused:
        LocalBackend(local_root / "root").start(make_spec(env=env))
    assert refused.value.permanent
    assert not (local_root / "root").exists()
    with pytest.raises(BackendError, match="which no agent is started with"):
        DockerBackend().start(make_spec(env=env))
