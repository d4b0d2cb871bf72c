"""The agent contract (docs/agent-contract.md) on its own: what every backend delivers
(workspaces/backends/configs.py) and how the built-in agent reads it.

The backends' own tests (test_local_backend.py, test_docker_backend.py,
test_controlplane_backend.py) check that each one delivers it where its agents run; the parity
rows template_files, memories and config_restart check it end to end through dispatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.agents import make_spec
from tests.support.waiting import wait_for
from workspaces import agent_config
from workspaces.backends import BackendError
from workspaces.backends import configs as contract

AGENT = Path(__file__).resolve().parents[2] / "workspaces" / "agent" / "main.py"


# --- what every backend delivers ----------------------------------------------------------------


def test_config_yaml_is_rendered_exactly_as_agent_config_renders_it():
    sample = {
        "name": "PM — Ünïcode",
        "a2a": {"port": 8000, "streaming": True},
        "initial_memories": [{"content": "x", "scope": "LOCAL"}],
        "tier": 2,
    }
    assert contract.render(sample) == agent_config.render(sample)


@pytest.mark.parametrize(
    "path",
    ["skills/research/SKILL.md", "README.md", ".claude/hooks/pre.sh", "a" * 255, "x/" * 200 + "y"],
)
def test_plain_relative_paths_are_accepted(path):
    assert contract.path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "is empty"),
        ("/etc/passwd", "absolute path"),
        ("../escape", "'..' segment"),
        ("skills/../../escape", "'..' segment"),
        ("./a", "'..' segment"),
        ("a//b", "'..' segment"),
        ("a/", "'..' segment"),
        ("a\0b", "control character"),
        ("a\nb", "control character"),
        ("a\\..\\b", "backslash"),
        ("a" * 256, "longer than 255 bytes"),
        ("x/" * 300, "longer than 500 characters"),
        (None, "is empty"),
    ],
)
def test_hostile_paths_are_refused_with_the_reason(path, why):
    assert why in (contract.path_problem(path) or "")


def test_the_contents_put_the_token_and_config_yaml_over_what_a_template_ships():
    spec = make_spec(
        files={"config.yaml": b"shipped", ".auth_token": b"shipped", "notes.md": b"n"},
        config={"name": "PM", "a2a": {"streaming": False}},
        token="the-instance-token",
    )

    found = contract.contents(spec, port=8123)

    assert found[".auth_token"] == b"the-instance-token"
    assert json.loads(found["config.yaml"]) == {
        "name": "PM",
        "a2a": {"streaming": False, "port": 8123},
    }
    assert found["notes.md"] == b"n"
    assert spec.config == {"name": "PM", "a2a": {"streaming": False}}  # not changed in place


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ({"../x": b""}, "'..' segment"),
        ({"big": b"x" * (contract.MAX_FILE_BYTES + 1)}, "larger than"),
        ({f"f{n}": b"x" * contract.MAX_FILE_BYTES for n in range(5)}, "more than 4194304"),
        ({f"f{n}": b"" for n in range(contract.MAX_FILES + 1)}, "more than 500"),
        ({"a": b"", "a/b": b""}, "'a' is both a file and a folder"),
        ({"config.yaml/x": b""}, "'config.yaml' is both"),
        ({"text": "not bytes"}, "is not bytes"),
    ],
)
def test_files_the_contract_cannot_deliver_refuse_the_start(files, why):
    with pytest.raises(BackendError, match="cannot be delivered") as refused:
        contract.contents(make_spec(files=files), port=8000)
    assert refused.value.permanent
    assert why in refused.value.message


@pytest.mark.parametrize(
    ("url", "allowed", "accepted"),
    [
        ("http://127.0.0.1:8000", ["127.0.0.1"], True),
        ("http://molecule-console:8000", ["127.0.0.1", "molecule-console"], True),
        ("https://console.example/", [".example"], True),
        ("http://[::1]:8000", ["[::1]"], True),
        ("http://molecule-console:8000", ["127.0.0.1"], False),
        ("http://10.0.0.5:8000", ["console.example"], False),
        ("ftp://127.0.0.1", ["*"], False),
        ("", [], True),  # no console at all: nothing to turn the agent away
    ],
)
def test_a_platform_url_must_be_one_the_console_accepts(settings, url, allowed, accepted):
    settings.ALLOWED_HOSTS = allowed
    assert (contract.platform_url_problem(url) is None) is accepted


# --- the built-in agent reads the contract and nothing else ------------------------------------


class Console:
    """A stand-in for the registry: records what the agent sends, answers 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls.append((self.path, dict(self.headers), body))
                data = json.dumps({"status": "online", "heartbeat_interval": 0.2}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def console() -> Iterator[Console]:
    stand_in = Console()
    yield stand_in
    stand_in.server.shutdown()


def run_agent(configs: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-u", "-B", str(AGENT)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=configs,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def write_configs(folder: Path, *, token: str, port: int, **config: Any) -> None:
    folder.mkdir(exist_ok=True)
    (folder / ".auth_token").write_text(token)
    (folder / ".auth_token").chmod(0o600)
    (folder / "config.yaml").write_bytes(contract.render({**config, "a2a": {"port": port}}))


def free_port() -> int:
    from workspaces.backends.base import free_loopback_port

    return free_loopback_port()


def test_the_agent_registers_with_molecules_body_and_heartbeats_with_workspace_id(
    console, tmp_path
):
    configs = tmp_path / "configs"
    port = free_port()
    write_configs(
        configs,
        token="tok-123",
        port=port,
        name="PM",
        runtime="hermes",
        tier=3,
        model="m",
        initial_memories=[{"content": "a"}, {"content": "b"}],
        plugins=["p1"],
    )
    (configs / "skills").mkdir()
    (configs / "skills" / "SKILL.md").write_bytes(b"skill")
    agent = run_agent(
        configs,
        {
            "WORKSPACE_ID": "9b1e0000-0000-4000-8000-000000000001",
            "PLATFORM_URL": console.url + "/",
            "CONFIGS_DIR": str(configs),
            "WORKSPACE_CONFIG_PATH": str(configs),
            "MOLECULE_AGENT_HOST": "127.0.0.1",
            "MOLECULE_HEARTBEAT_INTERVAL": "0.2",
        },
    )
    try:
        wait_for(lambda: len(console.calls) >= 2, timeout=20)
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    (path, headers, register), (beat_path, beat_headers, beat) = console.calls[:2]
    assert path == "/registry/register"
    assert headers["Authorization"] == "Bearer tok-123"
    assert set(register) == {"id", "workspace_id", "url", "agent_card"}
    assert register["id"] == register["workspace_id"] == "9b1e0000-0000-4000-8000-000000000001"
    assert register["url"] == f"http://127.0.0.1:{port}"
    card = register["agent_card"]
    assert (card["name"], card["runtime"], card["tier"], card["url"]) == (
        "PM",
        "hermes",
        "3",
        register["url"],
    )
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True}
    assert card["configs"]["initial_memories"] == 2
    assert card["configs"]["plugins"] == ["p1"]
    assert card["configs"]["files"] == {"skills/SKILL.md": hashlib.sha256(b"skill").hexdigest()}
    assert card["configs"]["token_mode"] == "0600"
    assert beat_path == "/registry/heartbeat"
    assert beat_headers["Authorization"] == "Bearer tok-123"
    assert beat["workspace_id"] == "9b1e0000-0000-4000-8000-000000000001"
    assert "id" not in beat


def test_without_a_token_file_the_agent_sends_no_bearer(console, tmp_path):
    configs = tmp_path / "configs"
    write_configs(configs, token="", port=free_port(), name="PM")
    (configs / ".auth_token").unlink()
    agent = run_agent(
        configs,
        {
            "WORKSPACE_ID": "9b1e0000-0000-4000-8000-000000000002",
            "PLATFORM_URL": console.url,
            "CONFIGS_DIR": str(configs),
            "WORKSPACE_CONFIG_PATH": str(configs),
            "MOLECULE_AGENT_HOST": "127.0.0.1",
        },
    )
    try:
        wait_for(lambda: console.calls, timeout=20)
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert "Authorization" not in console.calls[0][1]


@pytest.mark.parametrize(
    ("env", "config", "said"),
    [
        ({}, "{}", "WORKSPACE_ID is not set"),
        ({"WORKSPACE_ID": "w"}, None, "cannot read"),
        ({"WORKSPACE_ID": "w"}, "name: not json", "cannot read"),
        ({"WORKSPACE_ID": "w"}, '{"a2a": {"port": 70000}}', "a2a.port"),
    ],
)
def test_a_broken_contract_exits_2_with_the_reason(tmp_path, env, config, said):
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
    agent = run_agent(tmp_path, {"WORKSPACE_CONFIG_PATH": str(tmp_path), **env})
    output, _ = agent.communicate(timeout=20)
    assert agent.returncode == 2
    assert said in output.decode()
