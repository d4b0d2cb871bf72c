"""The seeded fleet's rules, in one place: the seed writes rows by them (as SQL) and the
stand-in machines (bench.machines) answer by them.

Workspace ``n`` (1..size) has the id md5("ws<n>"), belongs to org ``(n - 1) * orgs // size``
and is in the state its remainder ``n % 100`` gives: mostly online, a few of every other state.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

# (remainders below this bound, status), in order: 85% online, 5% degraded, 4% offline,
# 2% failed, 2% provisioning, 2% paused.
STATUS_BANDS = [
    (85, "online"),
    (90, "degraded"),
    (94, "offline"),
    (96, "failed"),
    (98, "provisioning"),
    (100, "paused"),
]
LIVE = ("online", "degraded", "provisioning")  # these have an instance and a token
# Online workspaces whose agent went silent (1% of the fleet): the liveness sweep's work.
SILENT = 3
# Online workspaces whose instance the machines no longer run (1%): the health sweep's work.
DEAD = 5
# Provisioning workspaces started an hour ago (1%): past the timeout, the provision sweep's work.
STALE_PROVISIONING = 96
# Within an org, workspace n is a lead when (n - 1) % 10 == 0; the next four are its children.
TEAM_SPAN = 10
CHILDREN = 4
# Backends by org: 80% local, 15% docker, 5% controlplane.
BACKEND_BANDS = [(16, "local"), (19, "docker"), (20, "controlplane")]


def status_of(n: int) -> str:
    return next(status for bound, status in STATUS_BANDS if n % 100 < bound)


def backend_of_org(index: int) -> str:
    return next(name for bound, name in BACKEND_BANDS if index % 20 < bound)


def workspace_id(n: int) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(f"ws{n}".encode()).hexdigest())


def instance_id(n: int) -> str:
    return f"i-{n}"


def token(salt: str, n: int) -> str:
    return f"{salt}.{n}"


@dataclass(frozen=True)
class Fleet:
    size: int
    orgs: int

    def org_of(self, n: int) -> int:
        return (n - 1) * self.orgs // self.size

    def orphans(self) -> int:
        """Instances running that no workspace owns (0.1% of the fleet, at least one)."""
        return max(1, self.size // 1000)

    def running(self, backend: str) -> Iterator[str]:
        """The instances the machines of ``backend`` run: every live workspace's but the dead
        ones, and the orphans (counted on the local backend)."""
        for n in range(1, self.size + 1):
            if (
                n % 100 != DEAD
                and status_of(n) in LIVE
                and backend_of_org(self.org_of(n)) == backend
            ):
                yield instance_id(n)
        if backend == BACKEND_BANDS[0][1]:
            for k in range(self.orphans()):
                yield f"i-orphan-{k}"

    def is_running(self, instance: str) -> bool:
        if instance.startswith("i-orphan-"):
            return True
        number = instance.removeprefix("i-")
        return number.isdigit() and int(number) % 100 != DEAD

    def heartbeat_numbers(self) -> Iterator[int]:
        """Workspaces whose heartbeat changes nothing: online, not silent."""
        for n in range(1, self.size + 1):
            if status_of(n) == "online" and n % 100 != SILENT:
                yield n
