"""Fixtures for tests against a real container engine (the docker backend).

The engine is the one ``scripts/test`` started (``DOCKER_HOST``). When DOCKER_HOST is unset, a
developer's run starts one itself through ``scripts/engine up --lease <this pid>`` and drops the
lease at the end, so concurrent test runs share one engine and none stops it under another. The
tests skip only where no engine can start (no DOCKER_HOST and no podman); with CI set they fail
instead, so CI never passes by skipping them.

Network rule: the tests reach containers only through ports published on 127.0.0.1, and the
containers reach the test console through the gateway of ``molecule-net``, a network the engine
created for this machine (see workspaces/backends/docker.py for why).

Test modules load this as a plugin: ``pytest_plugins = ["tests.support.engine_fixtures"]``, and
nobody imports it: the helpers that go with it are in tests/support/engine.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from django.test.testcases import LiveServerThread

from tests.support.engine import CONSOLE_ID, ROOT, Engine, remove_labelled
from workspaces import backends


def _no_engine(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the docker tests, not skip them)")
    pytest.skip(reason)


def _start_engine(request: pytest.FixtureRequest) -> str:
    lease = str(os.getpid())
    result = subprocess.run(
        [ROOT / "scripts" / "engine", "up", "--lease", lease],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/engine up failed:\n{result.stderr}")
    request.addfinalizer(
        lambda: subprocess.run(
            [ROOT / "scripts" / "engine", "down", "--lease", lease],
            capture_output=True,
            timeout=120,
        )
    )
    return result.stdout.strip().removeprefix("export DOCKER_HOST=")


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A reachable engine with the agent image in it."""
    from django.conf import settings

    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        if shutil.which("podman") is None:
            _no_engine(
                "no container engine: DOCKER_HOST is unset and podman is not installed "
                "(scripts/test installs podman and starts one)"
            )
        host = _start_engine(request)
    try:
        client = docker.DockerClient(base_url=host, timeout=120)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.fail(f"DOCKER_HOST={host} does not answer: {error}. Start it: scripts/engine up")
    image = settings.MOLECULE_WORKSPACE_IMAGE
    # scripts/agent-image does nothing when the image is current, and rebuilds it when the
    # agent changed, so running it here costs a second and keeps the tests honest.
    result = subprocess.run(
        [ROOT / "scripts" / "agent-image"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DOCKER_HOST": host},
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/agent-image failed:\n{result.stderr[-3000:]}")
    yield Engine(host, client, image)
    remove_labelled(client, CONSOLE_ID)
    client.close()


@pytest.fixture
def docker_settings(settings: Any, docker_engine: Engine) -> Engine:
    """Settings for the docker backend on the test engine, with this session's console id."""
    settings.MOLECULE_BACKENDS = ["local", "docker"]
    settings.MOLECULE_DOCKER_HOST = docker_engine.host
    settings.MOLECULE_DOCKER_CONSOLE_ID = CONSOLE_ID
    settings.MOLECULE_DOCKER_REGISTRY_URL = ""
    settings.MOLECULE_DOCKER_SOCKET = ""
    settings.MOLECULE_DOCKER_STOP_TIMEOUT = 5
    backends.reset()
    return docker_engine


@pytest.fixture
def docker_console(transactional_db: None, settings: Any) -> Iterator[str]:
    """The console served where agents in containers and on the host can both call it.

    It listens on all IPv4 addresses of this host, so on molecule-net's gateway as well as on
    127.0.0.1, and MOLECULE_REGISTRY_URL names 127.0.0.1: the docker backend hands containers on
    molecule-net that URL with the host ``molecule-console`` (the gateway), exactly as it does
    for ``manage.py run --host 0.0.0.0``, while T4 and local agents call 127.0.0.1.
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    thread = LiveServerThread("0.0.0.0", StaticFilesHandler, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    url = f"http://127.0.0.1:{thread.port}"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "molecule-console", "127.0.0.1"]
    settings.MOLECULE_REGISTRY_URL = url
    settings.MOLECULE_HEARTBEAT_INTERVAL = 0.5
    yield url
    thread.terminate()


@pytest.fixture
def docker_fleet(docker_settings: Engine, docker_console: str) -> Iterator[Engine]:
    """The docker backend, agents calling back to a live console, cleaned up by label after."""
    yield docker_settings
    remove_labelled(docker_settings.client, CONSOLE_ID)
