"""The controlplane backend on its own: its HTTP client against the control-plane double.

Real HTTP both ways: ``ControlPlaneBackend`` calls the double (tests/support/cpdouble_fixtures.py)
on a loopback port, and the double's "VMs" are real agent processes. As in test_local_backend.py
the agents point at a closed registry and keep retrying, which is all a backend-level test needs;
tests/workspaces/test_controlplane_fleet.py runs the same backend through dispatch with a console.

Also here: the double's own promises that other tests rely on (its faults, its bearer check,
its shutdown), and that it stays an outside system that imports nothing of the console.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from cpdouble import ControlPlaneDouble
from tests.support.agents import CLOSED_REGISTRY, health, make_spec
from tests.support.cpdouble import PROVISION, agent_pid, client, post_faults, requests_to, vm_of
from tests.support.procs import address_space_limit, environ, group_members, is_alive, live_pids
from tests.support.services import free_port
from tests.support.waiting import wait_for
from workspaces.backends import BackendError, Instance
from workspaces.backends.controlplane import ControlPlaneBackend
from workspaces.tiers import MiB

pytest_plugins = ["tests.support.cpdouble_fixtures"]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def backend(cp_double: ControlPlaneDouble) -> ControlPlaneBackend:
    return client(cp_double)


# --- provision --------------------------------------------------------------------------------


def test_provision_boots_a_vm_whose_agent_answers_on_the_returned_url(backend, cp_double):
    spec = make_spec(env={"SECRET_OPENAI_API_KEY": "sk-test"})

    instance = backend.start(spec)

    assert re.fullmatch(r"vm-[0-9a-f]{12}", instance.instance_id)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", instance.url)
    assert instance.state["workspace_id"] == spec.workspace_id
    assert wait_for(lambda: health(instance.url) == 200, timeout=20)
    assert backend.is_running(instance)
    # The VM got the agent's environment: the contract's variables, the secrets.
    agent_env = environ(agent_pid(cp_double, instance))
    assert agent_env["WORKSPACE_ID"] == spec.workspace_id
    assert agent_env["PLATFORM_URL"] == CLOSED_REGISTRY
    assert agent_env["SECRET_OPENAI_API_KEY"] == "sk-test"
    # Its own process group, as a VM is its own machine: stop can take everything with it.
    pid = agent_pid(cp_double, instance)
    assert os.getpgid(pid) == pid != os.getpgid(0)


def test_provision_sends_the_org_tier_image_and_generation(backend, cp_double):
    standard, sandboxed = make_spec(tier=2), make_spec(tier=1)
    first, second = backend.start(standard), backend.start(sandboxed)

    vm = vm_of(cp_double, first)
    assert (vm["org"], vm["tier"], vm["generation"]) == ("acme", 2, 1)
    assert vm["image"] == "molecule-agent:test"
    # The tier settings size the VM: T2's 512 MiB, and a /workspace volume for T2 but not T1.
    pid = agent_pid(cp_double, first)
    assert address_space_limit(pid) == str(512 * MiB)
    assert environ(pid)["MOLECULE_WORKSPACE_DIR"].endswith(f"/volumes/{standard.workspace_id}")
    assert "MOLECULE_WORKSPACE_DIR" not in environ(agent_pid(cp_double, second))


def test_a_repeated_provision_of_one_generation_gets_the_same_vm(backend, cp_double):
    # What a retry after a lost answer looks like: same workspace, same generation.
    spec = make_spec()
    first = backend.start(spec)
    again = backend.start(spec)
    assert again.instance_id == first.instance_id
    assert len(cp_double.vms()) == 1
    assert requests_to(cp_double, *PROVISION) == [201, 200]
    # The next generation is a new VM.
    assert backend.start(replace(spec, generation=2)).instance_id != first.instance_id


def test_a_slow_booting_vm_counts_as_running_before_its_agent_starts(backend, cp_double):
    post_faults(cp_double, slow_boot=1.5)
    instance = backend.start(make_spec())

    assert vm_of(cp_double, instance)["state"] == "booting"
    assert backend.is_running(instance)
    assert health(instance.url) is None
    assert "booting slowly" in backend.console(instance)
    assert wait_for(lambda: health(instance.url) == 200, timeout=30)
    assert vm_of(cp_double, instance)["state"] == "running"


# --- stop -------------------------------------------------------------------------------------


def test_stop_destroys_the_vm_and_its_whole_process_group(backend, cp_double):
    instance = backend.start(make_spec(env={"MOLECULE_AGENT_SIDECAR": "sleep 300"}))
    pid = agent_pid(cp_double, instance)
    wait_for(lambda: len(group_members(pid)) == 2, timeout=20)

    backend.stop(instance)

    assert group_members(pid) == []
    assert cp_double.vms() == []
    assert not backend.is_running(instance)


def test_stop_is_idempotent_because_gone_means_stopped(backend, cp_double):
    instance = backend.start(make_spec())
    backend.stop(instance)
    backend.stop(instance)  # the control plane answers 404: already gone, which is success
    backend.stop(Instance(""))
    path = f"/cp/workspaces/{instance.instance_id}"
    assert requests_to(cp_double, "DELETE", path) == [200, 404]


# --- status, console, listing, storage --------------------------------------------------------


def test_an_unknown_instance_is_not_running_and_has_no_console(backend):
    assert not backend.is_running(Instance("vm-000000000000"))
    assert backend.console(Instance("vm-000000000000")) == ""
    assert not backend.is_running(Instance(""))


def test_an_exited_agent_is_not_running_but_its_vm_is_still_listed(backend, cp_double):
    instance = backend.start(make_spec())
    pid = agent_pid(cp_double, instance)
    os.killpg(pid, signal.SIGKILL)

    wait_for(lambda: not backend.is_running(instance), timeout=10)
    assert vm_of(cp_double, instance)["state"] == "exited"
    # It still exists on the control plane, so the orphan sweep can find and delete it.
    assert backend.list_instances() == [instance.instance_id]


def test_console_has_the_boot_log_and_the_agents_output(backend):
    spec = make_spec()
    instance = backend.start(spec)
    text = wait_for(
        lambda: "console unreachable" in (out := backend.console(instance)) and out, timeout=20
    )
    assert f"VM {instance.instance_id} created for workspace {spec.workspace_id}" in text
    assert "booting image molecule-agent:test, tier 2, runtime langgraph, generation 1" in text
    assert f"workspace {spec.workspace_id} serving on" in text
    assert len(backend.console(instance, tail=1).splitlines()) == 1


def test_list_instances_lists_every_vm_or_one_orgs(backend):
    acme = backend.start(make_spec())
    globex_spec = make_spec()
    globex = backend.start(replace(globex_spec, org_slug="globex"))

    assert sorted(backend.list_instances()) == sorted([acme.instance_id, globex.instance_id])
    assert backend.list_instances(org="globex") == [globex.instance_id]
    backend.stop(acme)
    assert backend.list_instances() == [globex.instance_id]


def test_the_volume_survives_a_restart_and_remove_storage_deletes_it(backend, cp_double):
    spec = make_spec()
    first = backend.start(spec)
    volume = Path(environ(agent_pid(cp_double, first))["MOLECULE_WORKSPACE_DIR"])
    (volume / "notes.txt").write_text("kept")
    backend.stop(first)

    second = backend.start(replace(spec, generation=2))
    assert environ(agent_pid(cp_double, second))["MOLECULE_WORKSPACE_DIR"] == str(volume)
    assert (volume / "notes.txt").read_text() == "kept"
    with pytest.raises(BackendError, match="in use by") as refused:
        backend.remove_storage(second)  # a VM still uses it
    assert not refused.value.permanent  # a conflict can pass: dispatch may try again
    backend.stop(second)

    backend.remove_storage(second)
    backend.remove_storage(second)  # idempotent: 404 is already gone
    backend.remove_storage(Instance(""))  # nothing names a workspace: nothing to do

    assert not volume.exists()


# --- failures ---------------------------------------------------------------------------------


def test_500s_are_retried_with_backoff_until_one_succeeds(cp_double):
    backend = client(cp_double, retries=2, backoff=0.2)
    post_faults(cp_double, fail_next=2)

    began = time.monotonic()
    instance = backend.start(make_spec())

    assert time.monotonic() - began >= 0.2 + 0.4  # waited backoff, then twice that
    assert requests_to(cp_double, *PROVISION) == [500, 500, 201]
    assert [vm["instance_id"] for vm in cp_double.vms()] == [instance.instance_id]


def test_it_gives_up_after_the_bound_with_an_error_an_operator_can_act_on(cp_double):
    backend = client(cp_double, retries=2)
    post_faults(cp_double, fail_next=100)

    with pytest.raises(BackendError) as failed:
        backend.start(make_spec())

    error = failed.value
    assert not error.permanent  # dispatch may try again later
    assert error.message.startswith(f"The control plane at {cp_double.url} failed to provision")
    assert "answered 500 (injected fault: the control plane is failing) to 3 attempts" in str(error)
    assert requests_to(cp_double, *PROVISION) == [500, 500, 500]
    assert cp_double.vms() == []


def test_a_wrong_token_is_a_permanent_error_that_names_the_setting(cp_double):
    backend = client(cp_double, token="not-the-secret")

    with pytest.raises(BackendError) as refused:
        backend.start(make_spec())

    assert refused.value.permanent
    assert "refused the console's credentials (401)" in refused.value.message
    assert "MOLECULE_CONTROLPLANE_TOKEN is wrong" in refused.value.message
    assert requests_to(cp_double, *PROVISION) == [401]  # not retried
    assert cp_double.vms() == []


def test_a_missing_token_is_a_permanent_error_before_anything_is_sent(cp_double):
    with pytest.raises(BackendError, match="MOLECULE_CONTROLPLANE_TOKEN is not set") as refused:
        client(cp_double, token="").start(make_spec())
    assert refused.value.permanent
    assert list(cp_double.requests) == []


def test_an_unreachable_control_plane_is_an_error_naming_its_url():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    backend = client(url=url, retries=1, backoff=0.01)

    with pytest.raises(BackendError) as failed:
        backend.start(make_spec())

    assert not failed.value.permanent
    assert failed.value.message.startswith(f"Cannot reach the control plane at {url} to provision")
    assert "(2 attempts). Check MOLECULE_CONTROLPLANE_URL" in failed.value.message
    # An unreachable control plane is not "the VM is gone": the health sweep must not restart
    # a fleet because the console lost its network for a moment.
    with pytest.raises(BackendError, match="Cannot reach"):
        backend.is_running(Instance("vm-000000000000"))


def test_a_refused_provision_is_permanent_and_not_retried(backend, cp_double):
    spec = make_spec()
    bad = replace(spec, workspace_id="../../etc")

    with pytest.raises(BackendError) as refused:
        backend.start(bad)

    assert refused.value.permanent
    assert refused.value.message == (
        f"The control plane at {cp_double.url} refused to provision workspace acme/probe (422): "
        "workspace_id '../../etc' is not a valid id (letters, digits, _ . -)."
    )
    assert requests_to(cp_double, *PROVISION) == [422]


def test_a_control_plane_that_does_not_answer_in_time_is_a_clear_error(cp_double):
    backend = client(cp_double, read_timeout=0.3, retries=1, backoff=0.01)
    post_faults(cp_double, stall=2)

    with pytest.raises(BackendError) as failed:
        backend.list_instances()

    assert not failed.value.permanent
    assert "did not answer within 0.3s when asked to list instances (2 attempts)" in str(
        failed.value
    )
    assert "MOLECULE_CONTROLPLANE_READ_TIMEOUT" in failed.value.message


# --- the double's own promises ------------------------------------------------------------------


def test_the_delete_noop_fault_answers_200_and_leaves_the_vm_running(backend, cp_double):
    instance = backend.start(make_spec())
    assert post_faults(cp_double, delete_noop=True)["delete_noop"] is True

    backend.stop(instance)  # looks fine to the client…

    assert backend.is_running(instance)  # …but the VM is still there
    assert is_alive(agent_pid(cp_double, instance))
    post_faults(cp_double, clear=True)
    backend.stop(instance)
    assert cp_double.vms() == []


def test_the_lose_fault_makes_the_vm_disappear(backend, cp_double):
    instance = backend.start(make_spec())
    pid = agent_pid(cp_double, instance)

    post_faults(cp_double, lose=instance.instance_id)

    assert not is_alive(pid)
    assert not backend.is_running(instance)
    assert backend.list_instances() == []
    backend.stop(instance)  # gone is stopped


def test_the_double_checks_the_bearer_token_on_every_endpoint(cp_double):
    assert cp_double.url.startswith("http://127.0.0.1:")
    for method, path in [("GET", "/cp/workspaces"), ("POST", "/_faults"), ("GET", "/_faults")]:
        response = httpx.request(
            method,
            cp_double.url + path,
            headers={"Authorization": "Bearer wrong"},
            json={"fail_next": 5} if method == "POST" else None,
            trust_env=False,
        )
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "invalid bearer token"}
    assert cp_double.faults.fail_next == 0


def test_unknown_faults_are_refused(cp_double):
    response = httpx.post(
        f"{cp_double.url}/_faults",
        json={"explode": True},
        headers={"Authorization": f"Bearer {cp_double.token}"},
        trust_env=False,
    )
    assert response.status_code == 400
    assert "unknown fault 'explode'" in response.json()["error"]


def test_closing_the_double_stops_every_vm_it_booted(tmp_path):
    double = ControlPlaneDouble(token="closing-test", root=tmp_path / "cp").start()
    try:
        instance = client(double).start(make_spec(env={"MOLECULE_AGENT_SIDECAR": "sleep 300"}))
        pid = agent_pid(double, instance)
        wait_for(lambda: len(group_members(pid)) == 2, timeout=20)
    finally:
        double.close()
    assert group_members(pid) == []


def test_fake_controlplane_serves_until_sigterm_and_then_stops_its_vms(tmp_path):
    port = free_port()
    options = ["--port", str(port), "--token", "demo-secret", "--root", str(tmp_path / "cp")]
    command = subprocess.Popen(
        [sys.executable, "manage.py", "fake_controlplane", *options],
        cwd=ROOT,
        env={**os.environ, "MOLECULE_VAR_DIR": str(tmp_path / "var")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        backend = client(url=url, token="demo-secret", retries=0)
        wait_for(lambda: _answers(url), timeout=60)
        instance = backend.start(make_spec())
        pid = environ_pid(tmp_path / "cp", instance)
        assert is_alive(pid)
    finally:
        command.send_signal(signal.SIGTERM)
        output, _ = command.communicate(timeout=30)
    assert command.returncode == 0, output
    assert f"Control-plane double on {url}" in output
    assert '"POST /cp/workspaces/provision HTTP/1.1" 201' in output
    assert not is_alive(pid)


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/_faults", timeout=2, trust_env=False)
    except httpx.HTTPError:
        return False
    return True


def environ_pid(root: Path, instance: Instance) -> int:
    """The pid of the agent a separate double process booted for ``instance``."""
    home = f"{root}/vms/{instance.instance_id}"
    return wait_for(
        lambda: next((pid for pid in live_pids() if environ(pid).get("HOME") == home), None),
        timeout=20,
    )


def test_the_double_imports_nothing_from_the_console():
    # It stands in for an external system: sharing code with the console would let the two
    # agree by accident on what the contract only says.
    forbidden = ("workspaces", "orgs", "molecule", "django", "tests")
    found = []
    for path in (ROOT / "cpdouble").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert found == []


# --- the agent contract: configs in the provision request, written into the VM -------------------


def agent_configs(url: str) -> dict | None:
    try:
        return httpx.get(f"{url}/configs", timeout=2, trust_env=False).json()
    except httpx.HTTPError:
        return None


def test_the_vm_gets_the_configs_and_the_contracts_environment(backend, cp_double):
    seed = bytes(range(256))
    spec = make_spec(
        files={"skills/research/SKILL.md": b"# Research\n", "seed.bin": seed},
        config={"name": "probe", "role": "lead"},
    )
    instance = backend.start(spec)
    vm = vm_of(cp_double, instance)
    configs = Path(vm["configs_dir"])

    assert configs.is_relative_to(cp_double.root / "vms" / instance.instance_id)
    assert (configs / ".auth_token").read_bytes() == b"not-a-real-token"
    assert stat.S_IMODE((configs / ".auth_token").stat().st_mode) == 0o600
    assert stat.S_IMODE(configs.stat().st_mode) == 0o700
    config = json.loads((configs / "config.yaml").read_text())
    # The VM's port: the double's VMs share this host, so it rewrites the 8000 the console sent.
    assert config["a2a"]["port"] == int(instance.url.rsplit(":", 1)[1])
    assert config["role"] == "lead"
    assert (configs / "skills" / "research" / "SKILL.md").read_bytes() == b"# Research\n"
    assert (configs / "seed.bin").read_bytes() == seed
    env = environ(agent_pid(cp_double, instance))
    assert env["WORKSPACE_ID"] == spec.workspace_id
    assert env["PLATFORM_URL"] == CLOSED_REGISTRY
    assert env["CONFIGS_DIR"] == env["WORKSPACE_CONFIG_PATH"] == str(configs)
    report = wait_for(lambda: agent_configs(instance.url), timeout=20)
    assert report["files"]["seed.bin"] == hashlib.sha256(seed).hexdigest()
    assert report["token_mode"] == "0600"
    assert instance.ran == "molecule-agent:test"

    # The next generation is a new VM with the new token.
    backend.stop(instance)
    second = backend.start(replace(spec, token="the-next-token", generation=2))
    configs = Path(vm_of(cp_double, second)["configs_dir"])
    assert (configs / ".auth_token").read_bytes() == b"the-next-token"


def test_the_provision_request_carries_the_configs_as_base64(backend, cp_double, monkeypatch):
    sent: list[dict] = []
    original = cp_double.provision

    def spy(body: dict, key: str) -> Any:
        sent.append(body)
        return original(body, key)

    monkeypatch.setattr(cp_double, "provision", spy)
    spec = make_spec(files={"notes.md": b"hello"}, image="molecule-hermes:1.4")
    instance = backend.start(spec)

    [body] = sent
    assert base64.b64decode(body["configs"]["notes.md"]) == b"hello"
    assert base64.b64decode(body["configs"][".auth_token"]) == b"not-a-real-token"
    assert json.loads(base64.b64decode(body["configs"]["config.yaml"]))["a2a"]["port"] == 8000
    assert body["env"]["CONFIGS_DIR"] == body["env"]["WORKSPACE_CONFIG_PATH"] == "/configs"
    assert body["platform_url"] == CLOSED_REGISTRY
    assert body["image"] == "molecule-hermes:1.4"
    assert instance.ran == "molecule-hermes:1.4"


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape", "a/../../b", "a\0b", "a//b"])
def test_a_hostile_file_path_is_refused_before_anything_is_sent(backend, cp_double, path):
    with pytest.raises(BackendError, match="cannot be delivered") as refused:
        backend.start(make_spec(files={path: b"pwned"}))

    assert refused.value.permanent
    assert requests_to(cp_double, *PROVISION) == []
    assert cp_double.vms() == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape", "a/../../b", "a//b", ""])
def test_the_double_refuses_a_hostile_configs_path_itself(cp_double, path):
    body = {
        "workspace_id": "ws-hostile",
        "org": "acme",
        "tier": 2,
        "env": {"WORKSPACE_ID": "ws-hostile"},
        "configs": {path: base64.b64encode(b"pwned").decode()},
    }
    response = httpx.post(
        f"{cp_double.url}/cp/workspaces/provision",
        json=body,
        headers={"Authorization": f"Bearer {cp_double.token}"},
        timeout=10,
        trust_env=False,
    )

    assert response.status_code == 422
    assert "not a plain relative path" in response.json()["error"]
    assert cp_double.vms() == []
    assert not (cp_double.root.parent / "escape").exists()
