"""The ``local`` backend: each workspace's agent is a child process (the embedded default).

Like JupyterHub's LocalProcessSpawner. Every workspace gets a directory under
``MOLECULE_LOCAL_ROOT/<workspace id>/`` holding ``console.log`` (the unified boot log),
``instance.json`` (what is running, for the orphan sweep) and ``workspace/`` (its /workspace,
unless the workspace names its own ``workspace_dir``).

The agent runs in its own process group so stop takes everything it started with it. Tier limits
are applied from outside, by the kernel, right after the process starts: the address-space
rlimit for memory, CPU affinity for the CPU share, a file-descriptor cap. What a process cannot be
given (a read-only root filesystem, a separate PID or network namespace) is declared divergent in
the parity matrix, not pretended.

The instance state keeps the pid and the process's start time from /proc, so a console restarted
in between still recognises its processes and never signals a recycled pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import ClassVar

from django.conf import settings

from workspaces.backends.base import (
    LIFECYCLE_ROWS,
    Backend,
    BackendError,
    Declared,
    Instance,
    InstanceSpec,
    at_parity,
    divergent,
    free_loopback_port,
)
from workspaces.paths import workspace_dir_problem

AGENT = Path(__file__).resolve().parent.parent / "agent" / "main.py"
STOP_GRACE_SECONDS = 5.0
NOFILE = 1024


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of a pid, or None if there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int, start_ticks: int) -> bool:
    stat = _proc_stat(pid)
    if stat is None or stat[2] != start_ticks:
        return False
    if stat[0] in ("Z", "X"):
        _reap(pid)
        return False
    return True


def _group_members(pgid: int, not_before: int) -> list[int]:
    """Live processes of a process group that started no earlier than its leader did."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat and stat[1] == pgid and stat[2] >= not_before and stat[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _wait_gone(pgid: int, not_before: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        _reap(pgid)
        if not _group_members(pgid, not_before):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


class LocalBackend(Backend):
    name = "local"
    capabilities: ClassVar[dict[str, Declared]] = {
        **at_parity(*LIFECYCLE_ROWS),
        "tier_1": divergent(
            "A process cannot get a read-only root or namespaces of its own: memory (RLIMIT_AS) "
            "and one CPU (affinity) are applied, /workspace is withheld, but / stays writable."
        ),
        "tier_2": divergent(
            "Memory by RLIMIT_AS and one CPU by affinity, as the tier asks; but the agent shares "
            "the host's PID and network namespaces and runs with the console's privileges."
        ),
        "tier_3": divergent(
            "Host PIDs and privileges, as the tier asks, but on the host's network: a process "
            "has no network of its own to be put on."
        ),
        "tier_4": divergent(
            "Host PIDs, network and privileges, but no engine socket is handed to a process."
        ),
    }

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or settings.MOLECULE_LOCAL_ROOT)

    # --- helpers --------------------------------------------------------------------------
    def _dir(self, workspace_id: str) -> Path:
        return self.root / workspace_id

    @staticmethod
    def _instance_id(pid: int, start_ticks: int) -> str:
        return f"local:{pid}:{start_ticks}"

    def _apply_limits(self, pid: int, spec: InstanceSpec) -> None:
        tier = spec.tier
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        if tier.memory_bytes:
            resource.prlimit(pid, resource.RLIMIT_AS, (tier.memory_bytes, tier.memory_bytes))
        if tier.cpus:
            cpus = sorted(os.sched_getaffinity(0))
            count = max(1, int(tier.cpus))
            # Spread workspaces over the machine's CPUs rather than piling them onto CPU 0.
            first = zlib.crc32(spec.workspace_id.encode()) % len(cpus)
            os.sched_setaffinity(pid, {cpus[(first + i) % len(cpus)] for i in range(count)})

    # --- contract -------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> Instance:
        home = self._dir(spec.workspace_id)
        tmp = home / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "HOME": str(home),
                "TMPDIR": str(tmp),
                "PYTHONDONTWRITEBYTECODE": "1",
                **spec.env,
            }
            if spec.tier.workspace_volume:
                if spec.workspace_dir and (problem := workspace_dir_problem(spec.workspace_dir)):
                    raise BackendError(
                        f"The workspace directory cannot be used: {problem}.", permanent=True
                    )
                workspace = Path(spec.workspace_dir) if spec.workspace_dir else home / "workspace"
                workspace.mkdir(parents=True, exist_ok=True)
                env["MOLECULE_WORKSPACE_DIR"] = str(workspace)
                cwd = workspace
            else:
                cwd = tmp  # T1 has no /workspace at all
            port = free_loopback_port()
            url = f"http://127.0.0.1:{port}"
            env |= {
                "MOLECULE_AGENT_HOST": "127.0.0.1",
                "MOLECULE_AGENT_PORT": str(port),
                "MOLECULE_AGENT_URL": url,
            }
            log = (home / "console.log").open("ab")
        except OSError as error:
            raise BackendError(
                f"Cannot prepare the workspace directory {home}: {error.strerror}. "
                "Check that MOLECULE_LOCAL_ROOT is writable.",
                permanent=True,
            ) from error
        with log:
            log.write(
                f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} molecule: starting agent "
                f"(generation {spec.generation}, {spec.tier.label}, runtime {spec.runtime}) "
                f"on {url}\n".encode()
            )
            log.flush()
            try:
                process = subprocess.Popen(
                    [sys.executable, "-u", str(AGENT)],
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    process_group=0,
                    close_fds=True,
                )
            except OSError as error:
                raise BackendError(f"Cannot start the agent process: {error}") from error
        try:
            self._apply_limits(process.pid, spec)
            stat = _proc_stat(process.pid)
            if stat is None:
                raise BackendError("The agent process exited as soon as it started.")
        except (OSError, BackendError) as error:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise BackendError(f"Cannot apply the tier limits to the agent: {error}") from error
        state = {
            "pid": process.pid,
            "start_ticks": stat[2],
            "port": port,
            "dir": str(home),
        }
        instance = Instance(self._instance_id(process.pid, stat[2]), url, state)
        (home / "instance.json").write_text(
            json.dumps({"instance_id": instance.instance_id, **state})
        )
        return instance

    def _identify(self, instance: Instance) -> tuple[int, int] | None:
        """(pid, start ticks) from the state, or from the id alone (orphans have no state)."""
        if "pid" in instance.state:
            return instance.state["pid"], instance.state["start_ticks"]
        parts = instance.instance_id.split(":")
        if len(parts) == 3 and parts[0] == "local" and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
        return None

    def stop(self, instance: Instance) -> None:
        identity = self._identify(instance)
        if identity is None:
            return
        pid, ticks = identity
        current = _proc_stat(pid)
        # Linux does not reuse a pid while any member of its group lives, so a pid now held by
        # a process that started at another time means our whole group is gone.
        if current is None or current[2] == ticks:
            self._signal_group(pid, ticks)
        for record in self.root.glob("*/instance.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(record.read_text())["instance_id"] == instance.instance_id:
                    record.unlink()

    @staticmethod
    def _signal_group(pid: int, ticks: int) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for member in _group_members(pid, ticks):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, sig)
                    if sig == signal.SIGTERM:
                        # A stopped (SIGSTOP) process only acts on SIGTERM once continued.
                        os.kill(member, signal.SIGCONT)
            if _wait_gone(pid, ticks, STOP_GRACE_SECONDS):
                return
        raise BackendError(
            f"The agent's process group {pid} survived SIGKILL; look for it with ps -g {pid}."
        )

    def is_running(self, instance: Instance) -> bool:
        identity = self._identify(instance)
        return identity is not None and _alive(*identity)

    def console(self, instance: Instance, *, tail: int = 200) -> str:
        path = Path(instance.state.get("dir", "")) / "console.log"
        try:
            with path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 256 * 1024))
                lines = log.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])

    def remove_storage(self, instance: Instance) -> None:
        home = instance.state.get("dir")
        if home:
            # An operator-provided workspace_dir is theirs: only our own directory is removed.
            shutil.rmtree(home, ignore_errors=True)

    def has_storage(self, instance: Instance) -> bool | None:
        home = instance.state.get("dir")
        return Path(home).exists() if home else None

    def list_instances(self) -> list[str]:
        found = []
        for record in self.root.glob("*/instance.json"):
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if _alive(data["pid"], data["start_ticks"]):
                found.append(data["instance_id"])
        return found
