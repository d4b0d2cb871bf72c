"""The console's web server as ``manage.py run`` starts it, pointed at a bench database.

The gunicorn command line is read from the run command itself (its supervisor is swapped for one
that only records the children it was given), so the bench measures whatever web server shape
is on main: workers, threads, worker class, logs.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from workspaces.management.commands import run as run_command


class _Recorder:
    """Takes the place of molecule.supervisor.Supervisor: keeps the children, runs nothing."""

    children: list[Any] = []

    def __init__(self, children: list[Any], **_: Any) -> None:
        type(self).children = list(children)

    def handle_signals(self) -> None:
        pass

    def run(self, **_: Any) -> None:
        pass


def server_argv(host: str, port: int) -> list[str]:
    """The web server's argv exactly as ``manage.py run --host HOST --port PORT`` builds it."""
    command = run_command.Command(stdout=io.StringIO(), stderr=io.StringIO())
    parser = command.create_parser("manage.py", "run")
    options = vars(parser.parse_args(["--host", host, "--port", str(port), "--no-demo"]))
    with (
        mock.patch.object(run_command, "Supervisor", _Recorder),
        mock.patch.object(run_command, "call_command"),
        mock.patch.object(run_command.Command, "_admin_login", return_value=("bench", "")),
    ):
        command.handle(**options)
    for child in _Recorder.children:
        if "gunicorn" in child.argv:
            return list(child.argv)
    raise RuntimeError("manage.py run started no gunicorn: the bench cannot find the web server")


def _wait_ready(host: str, port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status < 500:
                return
        time.sleep(0.2)
    raise RuntimeError("the web server did not answer within 60 s")


@contextlib.contextmanager
def serving(
    argv: list[str], servers: list[tuple[dict[str, str], int]], *, host: str, log: Path
) -> Iterator[None]:
    """One web server per ``(env, port)`` (each on its env's database) until the block ends.

    ``argv`` is the run command's, bound to ``host`` and the first server's port; the others get
    their own. All start at once and are waited for together: an idle server costs nothing to
    the ones being measured, and their start-ups overlap.
    """
    bind = argv.index("--bind") + 1
    processes = []
    try:
        with log.open("ab") as out:
            for env, port in servers:
                command = [*argv[:bind], f"{host}:{port}", *argv[bind + 1 :]]
                processes.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        stdout=out,
                        stderr=out,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        for process, (_, port) in zip(processes, servers, strict=True):
            _wait_ready(host, port, process, log)
        yield
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
