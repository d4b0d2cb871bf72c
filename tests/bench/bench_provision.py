"""Benchmark: provision → online latency on the local and docker backends, against the engine.

Not part of the test suite: pytest collects only test_*.py, so neither ``pytest`` nor
``pytest -m bench tests/bench`` runs it. Run it by naming the file (with DOCKER_HOST set, or
podman installed so the engine fixtures can start one):

    uv run pytest tests/bench/bench_provision.py -s

For each backend, 20 workspaces are provisioned one after another through dispatch, with a live
console, and timed from ``create_workspace`` until the row is online (the agent registered). In
the same run, the engine's own create+start of 20 containers from the same image with the same
T2 options is timed through the SDK, so the docker figure is read as a ratio to what the engine
itself costs on this machine at this moment. Each workspace is deleted before the next one, so
every sample starts from the same state.

The figures are printed; the checks after them fail the run when the benchmark did not do what
it timed: every workspace came online on the backend asked for, through an instance of its own
and its agent's registration, and was then removed with nothing of it left running; every
baseline container was really running.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any, NamedTuple

import pytest

from tests.support.engine import CONSOLE_ID, Engine
from tests.support.procs import processes_under
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.backends.docker import LABEL_CONSOLE, container_options
from workspaces.models import EventType, Status, StructureEvent, Workspace
from workspaces.tiers import tier_settings

pytestmark = [pytest.mark.bench, pytest.mark.django_db(transaction=True)]
# The engine fixtures (docker_engine, docker_settings, docker_console, docker_fleet).
pytest_plugins = ["tests.support.engine_fixtures"]

SAMPLES = 20


class Sample(NamedTuple):
    """One timed workspace as it was once online."""

    pk: Any
    backend: str
    instance_id: str


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[94]


def provision_to_online(org: Any, backend: str) -> tuple[list[float], list[Sample]]:
    """Latencies of ``SAMPLES`` workspaces on ``backend``, and what each one was once online."""
    org.backend = backend
    org.save(update_fields=["backend"])
    latencies, samples = [], []
    for number in range(SAMPLES):
        started = time.perf_counter()
        workspace = dispatch.create_workspace(org=org, name=f"{backend}-{number}", actor="bench")
        deadline = started + 120
        while Workspace.objects.values_list("status", flat=True).get(pk=workspace.pk) != (
            Status.ONLINE
        ):
            assert time.perf_counter() < deadline, f"{workspace.name} not online within 120s"
            time.sleep(0.005)
        latencies.append(time.perf_counter() - started)
        online = Workspace.objects.get(pk=workspace.pk)
        samples.append(Sample(online.pk, online.backend, online.instance_id))
        dispatch.delete(workspace_id=workspace.pk, actor="bench")
    return latencies, samples


def problems_of(backend: str, samples: list[Sample]) -> list[str]:
    """What went wrong with the workspaces of one backend's run, as sentences (none: all well)."""
    found = []
    instances = [sample.instance_id for sample in samples]
    if len(set(instances)) != len(instances) or not all(instances):
        found.append(f"{backend}: the workspaces did not each get an instance: {instances}")
    for sample in samples:
        if sample.backend != backend:
            found.append(f"workspace {sample.pk} ran on {sample.backend!r}, not {backend!r}")
        events = set(
            StructureEvent.objects.filter(workspace_id=sample.pk).values_list(
                "event_type", flat=True
            )
        )
        # Online by its agent's registration, then removed by the delete: not a row set by hand.
        for wanted in (EventType.WORKSPACE_ONLINE, EventType.WORKSPACE_REMOVED):
            if wanted not in events:
                found.append(f"workspace {sample.pk} on {backend} has no {wanted} event")
    removed = Workspace.objects.filter(pk__in=[s.pk for s in samples], status=Status.REMOVED)
    if removed.count() != len(samples):
        found.append(f"{backend}: {len(samples) - removed.count()} workspaces were not removed")
    return found


def engine_create_start(engine: Engine) -> list[float]:
    options = container_options(
        tier_settings(2), storage="", network="molecule-net", engine_socket=""
    )
    options.pop("volumes", None)  # no volume: the engine's bare cost
    durations = []
    for _ in range(SAMPLES):
        name = f"bench-{uuid.uuid4().hex[:12]}"
        started = time.perf_counter()
        container = engine.client.containers.create(
            engine.image,
            name=name,
            labels={LABEL_CONSOLE: CONSOLE_ID},
            environment={
                "MOLECULE_WORKSPACE_ID": name,
                "MOLECULE_WORKSPACE_TOKEN": "bench",
                "MOLECULE_REGISTRY_URL": "http://127.0.0.1:9",
            },
            init=True,
            detach=True,
            **options,
        )
        container.start()
        durations.append(time.perf_counter() - started)
        container.reload()
        # The baseline must have done its work too: a container that did not start costs less.
        assert container.status == "running", f"{name} is {container.status}, not running"
        container.remove(force=True)
    return durations


def test_provision_latency(local_fleet, docker_fleet, org, settings, capsys):
    # Heartbeats do not matter here (registration happens at once); keep the console quiet.
    settings.MOLECULE_HEARTBEAT_INTERVAL = 10
    local, local_samples = provision_to_online(org, "local")
    docker, docker_samples = provision_to_online(org, "docker")
    engine = engine_create_start(docker_fleet)

    rows = {
        "local": percentiles(local),
        "docker": percentiles(docker),
        "engine create+start": percentiles(engine),
    }
    ratio = (
        rows["docker"][0] / rows["engine create+start"][0],
        rows["docker"][1] / rows["engine create+start"][1],
    )
    with capsys.disabled():
        print(f"\n\nprovision → online, {SAMPLES} workspaces each, T2, seconds")
        print(f"{'':22}{'p50':>8}{'p95':>8}")
        for name, (p50, p95) in rows.items():
            print(f"{name:22}{p50:8.3f}{p95:8.3f}")
        print(f"{'docker / engine':22}{ratio[0]:7.1f}x{ratio[1]:7.1f}x\n")

    assert problems_of("local", local_samples) + problems_of("docker", docker_samples) == []
    # Deleted means gone: no agent process of the local runs, no container of the docker runs.
    wait_for(lambda: processes_under(local_fleet) == [], timeout=10)
    running = {"label": f"{LABEL_CONSOLE}={CONSOLE_ID}", "status": "running"}
    wait_for(lambda: docker_fleet.client.containers.list(filters=running) == [], timeout=30)
