"""The supervisor behind ``manage.py run``: what dies is restarted, nothing outlives the console.

The first tests drive ``molecule.supervisor`` itself, on a thread, with small programs standing in
for the web server and the worker (fast back-offs, so the growth of the delay can be watched).
The last ones run ``manage.py run`` for real on the embedded default (SQLite, the filesystem
broker): the worker is killed with SIGKILL while the web server is asked for a page every tenth
of a second; a poison file is dropped into the broker's queue; Ctrl-C stops it all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from molecule.supervisor import Child, Supervisor, group_members
from tests.support.console import ROOT, Console, clean_environment, processes_of
from tests.support.procs import is_alive
from tests.support.waiting import wait_for

PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(120)"]
# A child that starts a grandchild in its own process group (as the worker starts its beat).
PARENT = [
    PY,
    "-c",
    "import subprocess, time; subprocess.Popen(['sleep', '120']); time.sleep(120)",
]
STUBBORN = [
    PY,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True);"
    " time.sleep(120)",
]


@contextlib.contextmanager
def supervising(children: list[Child], **options: float) -> Iterator[Supervisor]:
    supervisor = Supervisor(children, **{"poll": 0.05, "leftovers_grace": 1.0, **options})
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: all(child.process for child in children), timeout=10)
        yield supervisor
    finally:
        supervisor.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()


def restart_delays(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage().rpartition("restarting it in ")[2]
        for r in caplog.records
        if r.name == "molecule.supervisor" and r.getMessage().startswith(f"supervisor: the {name} ")
    ]


def test_a_child_that_keeps_dying_is_restarted_with_a_growing_back_off_the_others_left_alone(
    caplog,
):
    caplog.set_level(logging.INFO, logger="molecule.supervisor")
    flaky = Child("flaky", [PY, "-c", "raise SystemExit(3)"])
    steady = Child("steady", SLEEPER)
    with supervising([flaky, steady], backoff=0.1, max_backoff=0.4, stable_after=30):
        steady_pid = steady.pid
        wait_for(lambda: flaky.starts >= 5, timeout=20)
        assert steady.pid == steady_pid and steady.starts == 1
        assert is_alive(steady_pid)
    # 0.1 s doubling, capped at 0.4 s; each exit logged with its status.
    assert restart_delays(caplog, "flaky")[:4] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s"]
    assert set(flaky.exits) == {3}
    assert "supervisor: the flaky exited after" in caplog.text
    assert "(exit status 3)" in caplog.text
    assert not is_alive(steady_pid)


def test_the_back_off_starts_again_once_a_child_stayed_up(caplog):
    caplog.set_level(logging.INFO, logger="molecule.supervisor")
    # Up for 0.3 s each time, longer than stable_after: every restart is a first one.
    child = Child("worker", [PY, "-c", "import time; time.sleep(0.3)"])
    with supervising([child], backoff=0.05, max_backoff=1, stable_after=0.2):
        wait_for(lambda: child.starts >= 4, timeout=20)
    assert set(restart_delays(caplog, "worker")[:3]) == {"0.05 s"}


def test_a_killed_child_takes_what_it_left_in_its_group_with_it_and_comes_back(caplog):
    caplog.set_level(logging.INFO, logger="molecule.supervisor")
    worker = Child("worker", PARENT)
    web = Child("web server", SLEEPER)
    with supervising([worker, web], backoff=0.2) as supervisor:
        first, web_pid = worker.pid, web.pid
        # Its own group, away from this process's (a terminal's Ctrl-C reaches only ours).
        assert os.getpgid(first) == first != os.getpgid(0)
        wait_for(lambda: len(group_members(first)) == 2)
        [grandchild] = set(group_members(first)) - {first}

        os.kill(first, signal.SIGKILL)
        wait_for(lambda: worker.pid not in (None, first) and len(group_members(worker.pid)) == 2)

        assert group_members(first) == []
        assert not is_alive(grandchild)
        assert web.pid == web_pid and is_alive(web_pid)
        groups = [worker.pid, web.pid]
    assert "the worker exited after" in caplog.text
    assert "(killed by SIGKILL); stopped the 1 process(es) it left in its group" in caplog.text
    assert "restarting it in 0.2 s" in caplog.text
    assert "supervisor: restarted the worker" in caplog.text
    assert supervisor.children["worker"].starts == 2
    assert [group_members(pgid) for pgid in groups] == [[], []]


def test_a_child_whose_group_lost_a_member_is_restarted_as_a_whole(caplog):
    # The worker whose embedded beat crashed: alive, but it would never sweep again.
    caplog.set_level(logging.INFO, logger="molecule.supervisor")
    starts: list[float] = []
    worker = Child("worker", PARENT, group_size=2, before_start=lambda: starts.append(1))
    with supervising([worker], backoff=0.1):
        first = worker.pid
        wait_for(lambda: len(group_members(first)) == 2)
        [beat] = set(group_members(first)) - {first}

        os.kill(beat, signal.SIGKILL)
        wait_for(lambda: worker.pid not in (None, first) and len(group_members(worker.pid)) == 2)

        assert not is_alive(first)
        assert group_members(first) == []
    assert "supervisor: the worker lost a process of its group (1 of 2 left); stopping it" in (
        caplog.text
    )
    assert len(starts) == worker.starts == 2  # before_start ran before each start


def test_stopping_kills_a_child_that_ignores_sigterm_after_the_timeout(caplog):
    caplog.set_level(logging.INFO, logger="molecule.supervisor")
    stubborn = Child("stubborn", STUBBORN, stdout=subprocess.PIPE)
    with supervising([stubborn], stop_timeout=0.5):
        pid = stubborn.pid
        assert stubborn.process.stdout.readline() == b"up\n"  # its SIGTERM handler is set
    assert not is_alive(pid)
    assert "supervisor: the stubborn stopped (killed by SIGKILL)" in caplog.text
    stubborn.process.stdout.close()


def test_the_children_get_sigterm_when_the_supervisor_itself_is_killed(tmp_path):
    script = (
        "import sys\n"
        "from molecule.supervisor import Child, Supervisor\n"
        "supervisor = Supervisor([Child('sleeper', sys.argv[1:])])\n"
        "supervisor.run(on_started=lambda: print(supervisor.children['sleeper'].pid, flush=True))\n"
    )
    env = clean_environment(PYTHONPATH=str(ROOT))
    with subprocess.Popen(
        [PY, "-c", script, *SLEEPER], env=env, cwd=tmp_path, stdout=subprocess.PIPE
    ) as supervisor:
        child = int(supervisor.stdout.readline())
        assert is_alive(child)
        supervisor.kill()
    wait_for(lambda: not is_alive(child), timeout=10)


# --- manage.py run, for real ------------------------------------------------------------------


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    var = tmp_path_factory.mktemp("console") / "var"
    console = Console(var, clean_environment())
    try:
        yield console.start()
    finally:
        console.stop()


def test_a_killed_worker_is_restarted_its_beat_does_not_survive_and_the_web_keeps_answering(
    console,
):
    worker = console.worker_pid()
    wait_for(lambda: len(console.group_of(worker)) == 2)  # the worker and its embedded beat
    [beat] = set(console.group_of(worker)) - {worker}
    ready = console.workers_ready()
    answers: list[int | str] = []
    done = threading.Event()

    def ask() -> None:
        while not done.is_set():
            try:
                answers.append(console.get("/accounts/login/", timeout=5).status_code)
            except httpx.HTTPError as error:
                answers.append(repr(error))
            time.sleep(0.1)

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: console.workers_ready() > ready, timeout=60)
    finally:
        done.set()
        asking.join()

    new_worker = console.worker_pid()
    assert new_worker not in (None, worker)
    assert console.group_of(worker) == []
    assert not is_alive(beat)
    # The new worker has its own beat, and only one beat runs.
    wait_for(lambda: len(console.group_of(new_worker)) == 2)
    assert len(answers) > 10
    assert set(answers) == {200}
    log = console.log()
    assert "supervisor: the worker exited after" in log
    assert "(killed by SIGKILL); stopped the 1 process(es) it left in its group" in log
    assert f"supervisor: restarted the worker (pid {new_worker})" in log


def queue_file(console: Console, content: bytes) -> Path:
    """A file in the embedded broker's queue folder, named as kombu names a message."""
    name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.celery.msg"
    path = console.var_dir / "broker" / "queue" / name
    draft = path.with_name(f".{name}.tmp")
    draft.write_bytes(content)
    draft.rename(path)
    return path


def send_task(console: Console, name: str) -> str:
    """Queue a task on the console's broker from another process; its id."""
    script = f"from molecule.celery import app\nprint(app.send_task({name!r}).id)\n"
    env = console.env | {"MOLECULE_VAR_DIR": str(console.var_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [PY, "-c", script], env=env, cwd=console.var_dir, capture_output=True, check=True
    )
    return done.stdout.decode().strip()


POISON = {
    b"this is not json": "it is not JSON (Expecting value",
    b"": "it is not JSON (Expecting value",
    b'["a", "list"]': "the JSON is an array, not a message",
    b'{"body": "x"}': "it has no 'properties' object, so it is not a kombu message",
}


def test_poison_files_in_the_queue_are_set_aside_and_the_worker_keeps_consuming(console):
    worker = console.worker_pid()
    # Garbage first, then a real task after it (the reader takes files in name order).
    poisoned = [(queue_file(console, content), content, why) for content, why in POISON.items()]
    task_id = send_task(console, "workspaces.tasks.reconcile_sweep")

    wait_for(lambda: f"reconcile_sweep[{task_id}] succeeded" in console.log(), timeout=30)

    assert console.worker_pid() == worker  # the same worker: it never stopped
    log = console.log()
    for poison, content, reason in poisoned:
        kept = console.var_dir / "broker" / "poison" / poison.name
        assert kept.read_bytes() == content
        assert Path(f"{kept}.reason").read_text().startswith(reason)
        assert not poison.exists()
        assert f"Set aside a poison message from queue 'celery': {reason}" in log
        assert str(kept) in log


def test_a_task_the_worker_does_not_know_is_set_aside_too(console):
    task_id = send_task(console, "workspaces.tasks.no_such_task")
    poison = console.var_dir / "broker" / "poison"

    def kept() -> list[Path]:
        return [path for path in poison.glob("*.msg") if task_id.encode() in path.read_bytes()]

    [path] = wait_for(kept, timeout=30)
    assert json.loads(path.read_bytes())["headers"]["task"] == "workspaces.tasks.no_such_task"
    assert Path(f"{path}.reason").read_text().startswith("the worker rejected it")
    assert "Received unregistered task of type 'workspaces.tasks.no_such_task'" in console.log()


def test_ctrl_c_stops_every_console_process(console):
    groups = [console.worker_pid(), console.web_pid()]
    assert None not in groups and processes_of(console.var_dir)

    assert console.interrupt() == 0

    assert processes_of(console.var_dir) == []
    assert [console.group_of(pgid) for pgid in groups] == [[], []]
    log = console.log()
    assert "supervisor: the worker stopped (exit status 0)" in log
    assert "supervisor: the web server stopped (exit status 0)" in log
    assert "Console stopped." in console.stdout.read_text()
