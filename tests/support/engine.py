"""Helpers for tests against a real container engine; the fixtures are in engine_fixtures.py."""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker

from workspaces.backends.docker import LABEL_CONSOLE

ROOT = Path(__file__).resolve().parent.parent.parent
# One id per test session: containers carry it, and cleanup and the orphan sweep see only them.
CONSOLE_ID = f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Engine:
    host: str
    client: docker.DockerClient
    image: str


def remove_labelled(client: docker.DockerClient, console_id: str) -> None:
    """Remove the containers and volumes that carry a console id (cleanup by label)."""
    label = {"label": f"{LABEL_CONSOLE}={console_id}"}
    for container in client.containers.list(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    for volume in client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            volume.remove(force=True)
