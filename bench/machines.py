"""An in-process stand-in for the machines behind every backend, for the health and orphan
sweeps: there are no agents in a benchmark, so ``is_running`` and ``list_instances`` answer from
the rule the seed wrote the rows by (bench.fleet). Registered for all three backend names by
bench.settings, so the sweeps go through dispatch exactly as in production; only the answers
come from here. Nothing is ever started or stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import ClassVar

from bench.fleet import Fleet
from workspaces.backends.base import Backend, Instance, InstanceSpec


def _fleet() -> Fleet:
    return Fleet(size=int(os.environ["BENCH_FLEET_SIZE"]), orgs=int(os.environ["BENCH_FLEET_ORGS"]))


class SeededMachines(Backend):
    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.fleet = _fleet()
        self.stopped: list[str] = []

    def start(self, spec: InstanceSpec) -> Instance:
        raise NotImplementedError("the bench starts nothing: it measures sweeps, not starts")

    def stop(self, instance: Instance) -> None:
        self.stopped.append(instance.instance_id)

    def is_running(self, instance: Instance) -> bool:
        return self.fleet.is_running(instance.instance_id)

    def console(self, instance: Instance, *, tail: int = 200) -> str:
        return "bench: the instance's last lines\n"

    def remove_storage(self, instance: Instance) -> None:
        pass

    def list_instances(self) -> Iterator[str]:  # type: ignore[override]
        # A generator, as a paged listing from the machines would be: the bench holds none of it.
        return self.fleet.running(self.name)


class LocalMachines(SeededMachines):
    name = "local"


class DockerMachines(SeededMachines):
    name = "docker"


class ControlplaneMachines(SeededMachines):
    name = "controlplane"
