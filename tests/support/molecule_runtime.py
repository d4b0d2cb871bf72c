"""Driving tests/support/molecule_agent.py (the stand-in for Molecule's runtime) from a test.

``Steer`` talks to a running stand-in's control endpoints (wedge, unwedge, a task's start and end,
what it sent); ``expect_molecule_wire`` checks what it sent against Molecule's request shapes, key
for key and type for type; ``configs_dir`` writes the agent contract's directory for a stand-in
started by hand (the backends write their own).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

AGENT = Path(__file__).resolve().with_name("molecule_agent.py")

# Molecule's request shapes: key → type, in the order its runtime builds them.
REGISTER_KEYS = {"id": str, "url": str, "agent_card": dict}
CARD_KEYS = {
    "name": str,
    "description": str,
    "version": str,
    "url": str,
    "skills": list,
    "capabilities": dict,
}
HEARTBEAT_KEYS = {
    "workspace_id": str,
    "error_rate": float,
    "sample_error": str,
    "active_tasks": int,
    "current_task": str,
    "uptime_seconds": int,
}
WEDGE_KEYS = {"runtime_state": str}
METADATA_KEYS = {"runtime_metadata": dict}
MINI_KEYS = {
    "workspace_id": str,
    "current_task": str,
    "active_tasks": int,
    "error_rate": int,
    "sample_error": str,
    "uptime_seconds": int,
}
CAPABILITY_KEYS = [
    "heartbeat",
    "scheduler",
    "session",
    "status_mgmt",
    "retry",
    "activity_decoration",
    "channel_dispatch",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def configs_dir(path: Path, *, token: str | None, workspace_id: str, name: str, port: int) -> Path:
    """The agent contract's directory: ``.auth_token`` (0600, no newline) and ``config.yaml``."""
    path.mkdir(parents=True, exist_ok=True)
    if token is not None:
        write_token(path, token)
    config = {
        "name": name,
        "description": "",
        "version": "1.0.0",
        "workspace_id": workspace_id,
        "a2a": {"port": port, "streaming": True, "push_notifications": True},
    }
    (path / "config.yaml").write_text(json.dumps(config))
    return path


def write_token(path: Path, token: str) -> None:
    fd = os.open(path / ".auth_token", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)


@contextmanager
def started(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The stand-in as a child process of the test; stopped (by its pid) when the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(AGENT)],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Steer:
    """A running stand-in's control endpoints, answered to its own token only."""

    base_url: str
    token: str

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(
            f"{self.base_url}{path}",
            json=body or {},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
            trust_env=False,
        )
        response.raise_for_status()
        return response.json()

    def wedge(self, reason: str) -> None:
        self._post("/control/wedge", {"reason": reason})

    def unwedge(self) -> None:
        self._post("/control/unwedge")

    def task(self, text: str) -> None:
        self._post("/control/task", {"task": text})

    def card(self, path: str = "/.well-known/agent-card.json") -> Any:
        return httpx.get(f"{self.base_url}{path}", timeout=10, trust_env=False).json()

    def sent(self) -> list[dict[str, Any]]:
        """Every request sent so far, its body parsed (``json``) beside the raw one."""
        response = httpx.get(
            f"{self.base_url}/control/sent",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
            trust_env=False,
        )
        response.raise_for_status()
        return [{**r, "json": json.loads(r["body"])} for r in response.json()]


def shape(body: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in body.items()}


def expect_molecule_wire(sent: list[dict[str, Any]], *, token: str, workspace_id: str) -> None:
    """What a stand-in sent is Molecule's runtime's, field for field: one register (``id``,
    never ``workspace_id``), then heartbeats of the loop's shape or the mini-heartbeats', every
    one with the bearer from the configs directory."""
    registers = [r for r in sent if r["path"] == "/registry/register"]
    assert len(registers) == 1, f"registers once, never again: {registers}"
    assert sent[0]["path"] == "/registry/register"
    for request in sent:
        assert request["headers"]["Authorization"] == f"Bearer {token}"
        assert request["path"] in ("/registry/register", "/registry/heartbeat"), request
    body = registers[0]["json"]
    assert shape(body) == REGISTER_KEYS
    assert list(body) == list(REGISTER_KEYS)
    assert body["id"] == workspace_id
    assert list(body["agent_card"]) == list(CARD_KEYS)
    assert shape(body["agent_card"]) == CARD_KEYS
    assert body["agent_card"]["capabilities"] == {"streaming": True, "pushNotifications": True}
    assert body["agent_card"]["url"] == body["url"]
    for request in sent[1:]:
        beat = request["json"]
        assert beat["workspace_id"] == workspace_id
        if beat["uptime_seconds"] == 0 and "runtime_metadata" not in beat:
            assert list(beat) == list(MINI_KEYS) and shape(beat) == MINI_KEYS, beat
            assert (beat["error_rate"], beat["sample_error"]) == (0, "")
            continue
        wanted = {**HEARTBEAT_KEYS, **(WEDGE_KEYS if "runtime_state" in beat else {})}
        wanted.update(METADATA_KEYS)
        assert list(beat) == list(wanted) and shape(beat) == wanted, beat
        if "runtime_state" in beat:
            assert beat["runtime_state"] == "wedged" and beat["sample_error"]
        metadata = beat["runtime_metadata"]
        assert list(metadata) == ["capabilities", "idle_timeout_seconds"]
        assert list(metadata["capabilities"]) == CAPABILITY_KEYS
        assert all(isinstance(v, bool) for v in metadata["capabilities"].values())


# --- the stand-in as an image, for the docker backend -------------------------------------------

IMAGE_REPOSITORY = "molecule-test-runtime"
IMAGE_DOCKERFILE = """\
FROM {base}
COPY molecule_agent.py /opt/molecule/molecule_agent.py
LABEL molecule.test-runtime={fingerprint}
CMD ["python3", "-I", "-u", "-B", "/opt/molecule/molecule_agent.py"]
"""


def build_image(client: docker.DockerClient, base: str) -> str:
    """The console's agent image (``base``, built by scripts/agent-image: a Debian with python3)
    with the stand-in as its program instead, tagged by the hash of both; built without any
    registry, and only when the engine does not have that tag yet."""
    source = AGENT.read_bytes()
    base_id = client.images.get(base).id
    fingerprint = hashlib.sha256(base_id.encode() + b"\0" + source).hexdigest()[:16]
    tag = f"{IMAGE_REPOSITORY}:{fingerprint}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    dockerfile = IMAGE_DOCKERFILE.format(base=base, fingerprint=fingerprint).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("molecule_agent.py", source)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)
    return tag
