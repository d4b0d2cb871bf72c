"""``manage.py run`` as a real process: started like ``scripts/run``, looked at from outside.

``Console`` starts the command on a data directory of its own and a free loopback port, with
whatever environment the test adds (a PostgreSQL database, a Redis broker, short sweep
intervals), its stdout and stderr in files. It finds the supervisor's children through /proc
(the web server and the worker, each leading a process group of its own) and stops everything
the way a terminal's Ctrl-C does: SIGINT to the command's process group.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.procs import environ, live_pids, proc_stat
from tests.support.services import free_port
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"celery@\S+ ready\.")


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the console's own settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MOLECULE_", "CELERY_", "DATABASE_URL", "DJANGO_", "ADMIN_TOKEN"))
    }
    return env | {"PYTHONUNBUFFERED": "1"} | extra


def parent_of(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2 :].split()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children_of(pid: int) -> list[int]:
    return [child for child in live_pids() if parent_of(child) == pid]


def processes_of(var_dir: Path) -> list[int]:
    """Live processes of the console on ``var_dir``: the command, its children, theirs.

    They all carry ``MOLECULE_VAR_DIR`` in their environment; workspace agents do not (the
    local backend gives them an environment of their own).
    """
    return [pid for pid in live_pids() if environ(pid).get("MOLECULE_VAR_DIR") == str(var_dir)]


@dataclass
class Console:
    """One ``manage.py run`` and what it writes."""

    var_dir: Path
    env: dict[str, str]
    web_workers: int = 1
    concurrency: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> Path:
        return self.var_dir.parent / "console.stdout"

    @property
    def stderr(self) -> Path:
        return self.var_dir.parent / "console.stderr"

    def log(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""

    def start(self, *, timeout: float = 90) -> Console:
        env = self.env | {"MOLECULE_VAR_DIR": str(self.var_dir)}
        command = [sys.executable, "manage.py", "run", "--no-demo", "--port", str(self.port)]
        command += ["--web-workers", str(self.web_workers)]
        command += ["--concurrency", str(self.concurrency)]
        self.var_dir.mkdir(parents=True, exist_ok=True)
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            # A process group of its own, as a shell gives a foreground job.
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=err, process_group=0
            )
        wait_for(lambda: self._answers() and self.workers_ready() >= 1, timeout=timeout)
        return self

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, (
            f"manage.py run exited:\n{self.log()[-3000:]}"
        )
        with contextlib.suppress(httpx.HTTPError):
            return self.get("/accounts/login/").status_code == 200
        return False

    def get(self, path: str, *, timeout: float = 5) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=timeout, trust_env=False)

    def workers_ready(self) -> int:
        """How many times a Celery worker said it was ready (one per start)."""
        return len(READY.findall(self.log()))

    def child(self, word: str) -> int | None:
        """The supervisor's child whose command line has ``word`` ("celery", "gunicorn")."""
        assert self.process is not None
        found = [pid for pid in children_of(self.process.pid) if word in cmdline(pid)]
        return found[0] if found else None

    def worker_pid(self) -> int | None:
        return self.child("celery")

    def web_pid(self) -> int | None:
        return self.child("gunicorn")

    def group_of(self, pid: int) -> list[int]:
        """Live members of the process group ``pid`` leads (or led)."""
        return [p for p in live_pids() if (stat := proc_stat(p)) and stat[1] == pid]

    def interrupt(self, *, timeout: float = 40) -> int:
        """Ctrl-C: SIGINT to the command's process group; its exit status."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def kill_everything(self) -> None:
        """Last resort after a failed test: SIGKILL to every process of this console."""
        for pid in processes_of(self.var_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)

    def stop(self) -> None:
        """Ctrl-C, then SIGKILL to whatever is left."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.interrupt()
        self.kill_everything()
