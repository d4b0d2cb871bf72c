"""A small process supervisor: what ``manage.py run`` uses to keep the console's processes up.

Each child (the web server, the Celery worker) runs in a process group of its own, led by the
child, so everything it started (gunicorn's workers, the worker's embedded beat) can be signalled
as one. When a child exits, whatever is left of its group is stopped (an embedded beat whose
worker was killed would otherwise go on scheduling sweeps beside the next worker's beat) and the
child is started again after a back-off: ``backoff`` seconds, doubling at each quick exit up to
``max_backoff``, back to ``backoff`` once a child stayed up ``stable_after`` seconds. The other
children are left alone: the web server keeps answering while the worker restarts. Each exit and
each start is logged with the exit status. A child can also name the size of its group once it is
up (``Child.group_size``): a group that loses a member its leader will not replace (the worker's
embedded beat, crashed) is restarted as a whole.

``stop()`` (Ctrl-C or SIGTERM under ``manage.py run``) sends SIGTERM to every child's whole
group, waits up to ``stop_timeout`` seconds, then sends SIGKILL to what is left; a second Ctrl-C
kills at once. Children also get SIGTERM if the supervisor itself is killed (the kernel's
parent-death signal), so none outlives it unnoticed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervisor dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies excluded) of the process group ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@dataclass
class Child:
    """One supervised program, and what the supervisor knows of its current run.

    ``group_size``: how many live processes its group holds once it is up (the Celery worker and
    its embedded beat: 2). Once reached, a group that shrinks below it has lost a part that its
    leader does not replace (a beat that crashed leaves a worker that never sweeps again): the
    whole group is stopped and started again, like a child that exited. ``before_start`` runs
    before each start, once nothing of the previous run is left.
    """

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    stdout: int | None = None
    group_size: int = 1
    before_start: Callable[[], None] | None = None
    process: subprocess.Popen | None = None
    whole: bool = False
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        *,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
        stop_timeout: float = 15.0,
        leftovers_grace: float = 3.0,
        poll: float = 0.2,
    ) -> None:
        self.children = {child.name: child for child in children}
        self.backoff, self.max_backoff, self.stable_after = backoff, max_backoff, stable_after
        self.stop_timeout, self.leftovers_grace, self.poll = stop_timeout, leftovers_grace, poll
        self._stopping = threading.Event()
        self._hurry = threading.Event()

    # --- the loop -------------------------------------------------------------------------
    def run(self, on_started: Callable[[], None] | None = None) -> None:
        """Start every child and keep them up until ``stop()``; then stop them all."""
        try:
            for child in self.children.values():
                self._start(child)
            if on_started is not None:
                on_started()
            while not self._stopping.wait(self.poll):
                for child in self.children.values():
                    self._tend(child)
        finally:
            self._stop_all()

    def stop(self) -> None:
        """Ask the loop to stop everything; a second call skips the grace period."""
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()

    def handle_signals(self) -> None:
        """SIGINT and SIGTERM stop the supervisor (main thread only)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: self.stop())

    # --- one child ------------------------------------------------------------------------
    def _start(self, child: Child) -> None:
        child.restart_at, child.whole = None, False
        try:
            if child.before_start is not None:
                child.before_start()
            child.process = subprocess.Popen(
                child.argv,
                env=child.env,
                stdin=subprocess.DEVNULL,
                stdout=child.stdout,
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        except OSError as error:
            child.process = None
            self._schedule_restart(child, f"could not be started ({error})", 0.0)
            return
        child.started_at = time.monotonic()
        child.starts += 1
        verb = "started" if child.starts == 1 else "restarted"
        log.info("supervisor: %s the %s (pid %d)", verb, child.name, child.process.pid)

    def _tend(self, child: Child) -> None:
        if child.process is None:
            if child.restart_at is not None and time.monotonic() >= child.restart_at:
                self._start(child)
            return
        returncode = child.process.poll()
        lost = ""
        if returncode is None:
            if child.group_size <= 1:
                return
            size = len(group_members(child.process.pid))
            if size >= child.group_size:
                child.whole = True
            if not child.whole or size >= child.group_size:
                return
            lost = f"lost a process of its group ({size} of {child.group_size} left)"
            log.warning("supervisor: the %s %s; stopping it", child.name, lost)
            self._clear_group(child.process.pid)
            returncode = child.process.wait()
        pgid, child.process = child.process.pid, None
        child.exits.append(returncode)
        uptime = time.monotonic() - child.started_at
        if lost:
            what = f"{lost} and was stopped ({describe_exit(returncode)})"
        else:
            what = f"exited after {uptime:.1f} s ({describe_exit(returncode)})"
        if left := self._clear_group(pgid):
            what += f"; stopped the {left} process(es) it left in its group"
        self._schedule_restart(child, what, uptime)

    def _schedule_restart(self, child: Child, what: str, uptime: float) -> None:
        if uptime >= self.stable_after:
            child.quick_exits = 0
        delay = min(self.backoff * 2**child.quick_exits, self.max_backoff)
        child.quick_exits += 1
        child.restart_at = time.monotonic() + delay
        log.warning("supervisor: the %s %s; restarting it in %g s", child.name, what, delay)

    def _clear_group(self, pgid: int) -> int:
        """Stop what is left of a dead child's process group; how many processes were left."""
        left = group_members(pgid)
        if left:
            self._signal_group(pgid, signal.SIGTERM)
            if not self._wait_empty([pgid], self.leftovers_grace):
                self._signal_group(pgid, signal.SIGKILL)
                self._wait_empty([pgid], self.leftovers_grace)
        return len(left)

    # --- stopping -------------------------------------------------------------------------
    def _stop_all(self) -> None:
        # Every child's group, also of a child that exited since the loop last looked: its
        # leftovers must go too.
        started = [child for child in self.children.values() if child.process is not None]
        groups = [child.process.pid for child in started]
        for child in started:
            log.info("supervisor: stopping the %s (pid %d)", child.name, child.process.pid)
            self._signal_group(child.process.pid, signal.SIGTERM)
        if not self._wait_empty(groups, self.stop_timeout, stop_early=self._hurry):
            for pgid in groups:
                self._signal_group(pgid, signal.SIGKILL)
            self._wait_empty(groups, 5.0)
        for child in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=1)
            status = child.process.poll()
            log.info(
                "supervisor: the %s stopped (%s)",
                child.name,
                "still running" if status is None else describe_exit(status),
            )

    @staticmethod
    def _signal_group(pgid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)
            if signum == signal.SIGTERM:
                # A stopped process only acts on SIGTERM once continued.
                os.killpg(pgid, signal.SIGCONT)

    def _wait_empty(
        self, groups: list[int], seconds: float, *, stop_early: threading.Event | None = None
    ) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            for child in self.children.values():
                if child.process is not None:
                    child.process.poll()  # reap a child that exited, so it is not a zombie
            if not any(group_members(pgid) for pgid in groups):
                return True
            if time.monotonic() > deadline or (stop_early is not None and stop_early.is_set()):
                return False
            time.sleep(0.05)
