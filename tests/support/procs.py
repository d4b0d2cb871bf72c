"""Processes seen from outside, through /proc: agents, their sidecars, their process groups.

These read /proc themselves rather than reuse the backends' own code, so a mistake there cannot
hide itself in the tests that check it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from pathlib import Path


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks), or None when there is no such pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def is_alive(pid: int, start_ticks: int | None = None) -> bool:
    """A live process (zombies are dead: only their exit status is left to collect)."""
    stat = proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return start_ticks is None or stat[2] == start_ticks


def live_pids() -> list[int]:
    return [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and is_alive(int(p.name))
    ]


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    return [pid for pid in live_pids() if (stat := proc_stat(pid)) and stat[1] == pgid]


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def processes_under(root: Path) -> list[int]:
    """Live processes started by a local backend rooted at ``root`` (their HOME is inside it).

    Agents and their sidecars inherit that environment, so this finds a sidecar too.
    """
    prefix = f"{root}/"
    return [pid for pid in live_pids() if environ(pid).get("HOME", "").startswith(prefix)]


def agent_pids(root: Path, workspace_id: str) -> list[int]:
    """Live processes under ``root`` that run as the agent of ``workspace_id``."""
    return [
        pid
        for pid in processes_under(root)
        if environ(pid).get("WORKSPACE_ID") == str(workspace_id)
    ]


def agent_token(pid: int) -> str:
    """The token a running agent was given: its configs directory's .auth_token."""
    return (Path(environ(pid)["CONFIGS_DIR"]) / ".auth_token").read_text()


def address_space_limit(pid: int) -> str:
    """The soft RLIMIT_AS of a process as /proc shows it ("unlimited" or bytes)."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    match = re.search(r"^Max address space\s+(\S+)\s+(\S+)", limits, re.MULTILINE)
    assert match, limits
    return match.group(1)


def kill_all_under(root: Path) -> None:
    """Kill every live process under a local backend root (see ``processes_under``)."""
    for pid in processes_under(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_local_agents(root: Path) -> None:
    """Kill every agent process group recorded under a local backend root."""
    for record in root.glob("*/instance.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = json.loads(record.read_text())["pid"]
            os.killpg(pid, signal.SIGKILL)
