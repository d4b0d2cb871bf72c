"""Every crash heals by itself: faults injected into a real stack, and the time it takes to heal.

The stack (tests/support/chaos.py): ``manage.py run`` (its supervisor, gunicorn, one Celery worker
with embedded beat) on a PostgreSQL cluster of its own and a Redis broker, the local backend's
agents as real processes, sweeps every second (``SWEEPS``). Verbs go through the JSON API.

Each test injects one fault, then waits until the world matches what the verbs asked for
(``Stack.problems``: every workspace in the state its last verb asked for, exactly one agent per
online workspace and none elsewhere, every verb in the event log exactly once). The bound is the
test's own timeout; the time it took is printed in the session's convergence table.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from molecule.broker import REDIS_POISON_LIST
from tests.support.chaos import Stack, start_postgres, stop_postgres
from tests.support.procs import is_alive
from tests.support.waiting import wait_for

pytestmark = pytest.mark.chaos


def online(stack: Stack, *names: str, bound: float = 30) -> list[str]:
    ids = [stack.create(name) for name in names]
    stack.converge(bound)
    return ids


def replaced(stack: Stack, workspace: str, pid: int) -> Callable[[], bool]:
    """Healed: the workspace's agent is another one than ``pid``."""
    return lambda: stack.agent_pid(workspace) != pid


def test_a_killed_agent_is_restarted_by_the_health_sweep(stack, convergence):
    result = convergence("kill -9 an agent", 20)
    [workspace] = online(stack, "killed")
    pid = stack.agent_pid(workspace)

    os.killpg(pid, signal.SIGKILL)
    result.note = "health sweep → offline → auto-restart → online"
    stack.converge(result.bound, healed=replaced(stack, workspace, pid), result=result)


def test_a_frozen_agent_is_restarted_by_the_liveness_sweep(stack, convergence):
    result = convergence("SIGSTOP an agent", 30)
    [workspace] = online(stack, "frozen")
    pid = stack.agent_pid(workspace)
    ticks = stack.rows()[workspace]["backend_state"]["start_ticks"]

    os.killpg(pid, signal.SIGSTOP)
    result.note = "liveness sweep (timeout 4 s) → offline → auto-restart → online"
    try:
        stack.converge(result.bound, healed=replaced(stack, workspace, pid), result=result)
    finally:
        if is_alive(pid, ticks):
            os.killpg(pid, signal.SIGCONT)
            os.killpg(pid, signal.SIGKILL)
    assert not is_alive(pid, ticks)  # the restart stopped the frozen one (SIGCONT, SIGTERM)


def test_the_worker_killed_with_tasks_in_flight_loses_none_of_them(stack, convergence):
    """SIGKILL of a frozen worker after creates were queued: the BRPOP it had pending hands the
    first task to its socket, and it dies with it (never acknowledged, never redelivered); the
    supervisor starts a new worker, which runs the others and whose reconcile sweep queues the
    lost one again."""
    result = convergence("kill -9 the worker, tasks in flight", 30)
    worker = stack.console.worker_pid()
    ready = stack.console.workers_ready()
    os.kill(worker, signal.SIGSTOP)
    try:
        for n in range(3):
            stack.create(f"in-flight-{n}")
        time.sleep(0.5)
    finally:
        os.kill(worker, signal.SIGKILL)
    since = time.monotonic()
    result.note = "supervisor restarts the worker; reconcile sweep re-queues the lost task"

    wait_for(lambda: stack.console.workers_ready() > ready, timeout=30)
    assert stack.console.group_of(worker) == []  # its beat went with it
    stack.converge(result.bound, since=since, result=result)


def test_the_worker_killed_in_a_backend_call_leaves_no_workspace_behind(stack, convergence):
    """SIGKILL of the worker while a create's reconcile is between its claim and its record
    (the lease is taken, the backend called): caught by freezing the worker the moment a row
    is leased, then killing it. A new worker (the supervisor's) must finish what it left."""
    result = convergence("kill -9 the worker mid-provision", 30)
    worker = stack.console.worker_pid()
    ready = stack.console.workers_ready()
    ids: list[str] = []
    caught: list[str] = []
    for n in range(5):
        ids.append(stack.create(f"mid-call-{n}"))
        caught = catch_in_a_backend_call(stack, worker, ids)
        if caught:
            break
    os.kill(worker, signal.SIGKILL)
    since = time.monotonic()
    assert caught, "no reconcile was caught in its backend call"
    result.note = f"{len(caught)} reconcile(s) killed between claim and record"

    wait_for(lambda: stack.console.workers_ready() > ready, timeout=30)
    assert stack.console.group_of(worker) == []
    stack.converge(result.bound, since=since, result=result)


def catch_in_a_backend_call(stack: Stack, worker: int, ids: list[str]) -> list[str]:
    """Freeze the worker the moment one of ``ids`` is leased; the ids leased while it is frozen
    (the worker is left running if none is, e.g. it recorded before it stopped)."""
    mine = "FROM workspaces_workspace WHERE id::text = ANY(%s)"
    leased = f"SELECT id::text {mine} AND lease_owner <> ''"
    pending = f"SELECT count(*) {mine} AND reconciled_generation < generation"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if stack.query(leased, ids):
            os.kill(worker, signal.SIGSTOP)
            caught = [row[0] for row in stack.query(leased, ids)]
            if caught:
                return caught
            os.kill(worker, signal.SIGCONT)
        elif not stack.query(pending, ids)[0][0]:
            return []
    return []


def test_garbage_in_the_redis_queue_is_set_aside_and_the_next_verb_goes_through(stack, convergence):
    result = convergence("poison the queue (Redis list 'celery')", 20)
    [workspace] = online(stack, "after-poison")
    worker = stack.console.worker_pid()
    client = redis.Redis.from_url(stack.redis.url)
    garbage = [b"this is not json", b'{"not": "a message"}', b"[]"]

    client.lpush("celery", *garbage)
    since = time.monotonic()
    assert stack.verb(workspace, "restart").status_code == 202
    result.note = "the same worker; 3 items set aside in molecule.poison, logged"
    stack.converge(result.bound, since=since, result=result)

    assert stack.console.worker_pid() == worker  # the same worker: it never stopped
    kept = [json.loads(item) for item in client.lrange(REDIS_POISON_LIST, 0, -1)]
    assert sorted(k["raw"] for k in kept if k["queue"] == "celery") == sorted(
        g.decode() for g in garbage
    )
    log = stack.console.log()
    assert log.count("Set aside a poison message from queue 'celery'") >= len(garbage)
    assert "Unrecoverable error" not in log


def test_a_postgresql_restart_heals_with_heartbeats_and_verbs_in_flight(stack, convergence):
    down_for = 3
    result = convergence(f"restart PostgreSQL (down {down_for} s), verbs meanwhile", 30)
    *ids, resting = online(stack, "pg-a", "pg-b", "pg-stopped")
    # A stopped workspace rests offline through it all: no sweep may start it again.
    assert stack.verb(resting, "stop").status_code == 202
    stack.converge(10)
    answers: list[tuple[float, int | str]] = []
    stopped, back = threading.Event(), threading.Event()
    came_back = [float("inf")]

    def keep_restarting() -> None:
        # An operator's script restarting the workspaces while the database is down and once it
        # is back (verbs whose backend call the restart cuts: the next test).
        stopped.wait()
        while not back.is_set() or sum(1 for at, _ in answers if at > came_back[0]) < 4:
            for workspace_id in ids:
                try:
                    answer = stack.verb(workspace_id, "restart", timeout=10).status_code
                except httpx.HTTPError as error:
                    answer = type(error).__name__
                answers.append((time.monotonic(), answer))
                time.sleep(0.3)

    verbs = threading.Thread(target=keep_restarting)
    verbs.start()
    try:
        stop_postgres(stack.pg)  # heartbeats in flight (two agents, every half second)
        since = time.monotonic()
        stopped.set()
        time.sleep(down_for)
        start_postgres(stack.pg)
        came_back[0] = time.monotonic()
        back.set()
    finally:
        stopped.set()
        back.set()
        verbs.join()

    # Refused with 503 and Retry-After while the database is down (one may get through as it
    # comes back up).
    refused = [answer for at, answer in answers if at < came_back[0] and answer != 202]
    after = [answer for at, answer in answers if at >= came_back[0]]
    result.note = f"{len(refused)} verbs refused while down, {after.count(202)} answered after"
    stack.converge(result.bound, since=since, result=result)
    # The web server answers again by itself (a new connection per request): no 500 loop.
    statuses = [stack.api("GET", f"/orgs/{stack.org}/workspaces").status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert refused and set(refused) == {503}
    assert after and set(after) == {202}


def test_a_postgresql_restart_during_a_backend_call_heals(stack, convergence):
    """The database goes away while a reconcile is between its claim and its record: the
    worker is frozen the moment a row is leased, the database stopped, the worker let go (its
    record fails), the database started again."""
    result = convergence("restart PostgreSQL during a backend call", 30)
    worker = stack.console.worker_pid()
    ids: list[str] = []
    caught: list[str] = []
    for n in range(5):
        ids.append(stack.create(f"pg-call-{n}"))
        caught = catch_in_a_backend_call(stack, worker, ids)
        if caught:
            break
    try:
        assert caught, "no reconcile was caught in its backend call"
        stop_postgres(stack.pg)
        since = time.monotonic()
    finally:
        os.kill(worker, signal.SIGCONT)
    time.sleep(1)  # its record fails: the database is gone
    start_postgres(stack.pg)
    result.note = f"{len(caught)} reconcile(s) cut between claim and record"
    stack.converge(result.bound, since=since, result=result)


def test_a_verb_answers_while_the_broker_is_down_and_heals_when_it_is_back(stack, convergence):
    down_for = 10
    result = convergence(f"stop Redis for {down_for} s, a verb meanwhile", 40)
    [workspace] = online(stack, "no-broker")
    pid = stack.agent_pid(workspace)
    worker = stack.console.worker_pid()
    # A task with a countdown: the worker holds it unacknowledged when the broker goes away
    # (kombu 5.7 used to stop the whole worker then; molecule/broker.py).
    held = stack.send_task("workspaces.tasks.reconcile_sweep", countdown=300)
    wait_for(lambda: f"reconcile_sweep[{held}] received" in stack.console.log())

    stack.redis.stop()
    since = time.monotonic()
    try:
        asked = time.monotonic()
        answer = stack.verb(workspace, "restart", timeout=20)
        took = time.monotonic() - asked
        assert answer.status_code == 202, answer.text
        assert took < 10, f"the verb took {took:.1f} s to answer"
        time.sleep(max(0.0, down_for - (time.monotonic() - since)))
    finally:
        stack.redis.start()
    back = time.monotonic()
    result.note = f"the verb answered in {took:.1f} s"
    stack.converge(result.bound, since=since, healed=replaced(stack, workspace, pid), result=result)
    result.note += f"; online {time.monotonic() - back:.1f} s after Redis was back"

    assert stack.console.worker_pid() == worker  # the same worker rode out the outage
    log = stack.console.log()
    assert re.search(r"Restoring \d+ unacknowledged message", log)  # it held one
    assert "Unrecoverable error" not in log
    assert "could not queue the backend call of workspace" in log
    assert "reconcile sweep: queued" in log
