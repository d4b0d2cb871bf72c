"""The chaos suite's stack and its judge: real processes, faults, and "has everything healed?".

The stack (started by tests/chaos/conftest.py) is what a distributed deployment runs, on one
machine: a PostgreSQL cluster of its own (restarting it must not touch the rest of the test
session's database), a Redis broker that can be stopped and started again on the same port,
and ``manage.py run`` (the supervisor, gunicorn, one Celery worker with embedded beat) on them,
with the local backend's agents under a temporary root and sweep intervals of a second.

Verbs go through the JSON API with the break-glass ``ADMIN_TOKEN``, like an operator's script;
every answered verb is written in a ledger. ``problems()`` compares the world with the ledger,
from outside (PostgreSQL rows and /proc):

- each workspace is in the state its last verb asked for (online for create and restart,
  offline for stop, removed for delete); a failed one is a problem shown with its event's reason;
- an online workspace has exactly one live agent, the one its row records, started for the
  row's current generation, which the backend was last made to match, and heartbeating;
- no agent lives that no row wants (an orphan), whatever its workspace;
- each verb answered is in the event log exactly once (once or not at all for a verb whose
  request got no answer, e.g. cut by a database restart).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from celery.exceptions import AlwaysEagerIgnored
from kombu import Connection

from molecule.celery import app as celery_app
from tests.support import services
from tests.support.console import Console, clean_environment
from tests.support.procs import environ, proc_stat, processes_under

ADMIN_ACTOR = "admin-token"
# What each verb asks for, and the event (type, cause) that records it.
VERBS = {
    "create": ("online", "WORKSPACE_PROVISIONING", "create"),
    "restart": ("online", "WORKSPACE_PROVISIONING", "restart"),
    "provision": ("online", "WORKSPACE_PROVISIONING", "provision"),
    "stop": ("offline", "WORKSPACE_OFFLINE", "stop"),
    "delete": ("removed", "WORKSPACE_REMOVED", "delete"),
}
LIVE = ("online", "degraded")

# What ``problems()`` says of a row a backend call's lease still holds (for at most
# MOLECULE_RECONCILE_LEASE after its worker died).
LEASE_HELD = "a backend call's lease holds it"

# Sweeps every second, an agent heartbeat every half second: a fault is noticed within seconds.
SWEEPS = {
    "MOLECULE_HEARTBEAT_INTERVAL": "0.5",
    "MOLECULE_LIVENESS_TIMEOUT": "4",
    "MOLECULE_LIVENESS_SWEEP_INTERVAL": "1",
    "MOLECULE_HEALTH_SWEEP_INTERVAL": "1",
    "MOLECULE_RECONCILE_SWEEP_INTERVAL": "1",
    "MOLECULE_RECONCILE_GRACE": "3",
    # A worker killed mid-call holds its workspace this long; then the reconcile sweep steps in.
    "MOLECULE_RECONCILE_LEASE": "3",
    "MOLECULE_ORPHAN_SWEEP_INTERVAL": "1",
    "MOLECULE_ORPHAN_GRACE": "3",
    # Longer than any bound below: a workspace failed by it would hide what really happened.
    "MOLECULE_PROVISION_TIMEOUT": "90",
    # Faults restart the same workspaces again and again on purpose.
    "MOLECULE_CRASH_LOOP_LIMIT": "1000",
}


# --- the servers -------------------------------------------------------------------------------


class Redis:
    """A redis-server on a fixed loopback port that can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server was not found; scripts/test installs it.")
        # No persistence, like the suite's other Redis: what was queued is lost with it.
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen([*command, "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start within 10 s")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
            return True
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def postgres_options(server: services.PostgresServer) -> str:
    """The options tests/support/services.py starts its clusters with."""
    return (
        f"-h 127.0.0.1 -p {server.port} -k {server.folder} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )


def pg_ctl(server: services.PostgresServer, *args: str) -> None:
    data = str(server.folder / "data")
    command = [services._pg_bin("pg_ctl"), "-D", data, *args]
    subprocess.run(services._as_postgres(command), check=True, stdout=subprocess.DEVNULL)


def stop_postgres(server: services.PostgresServer) -> None:
    """``pg_ctl stop -m fast``: sessions are cut, transactions in flight roll back."""
    pg_ctl(server, "-m", "fast", "-w", "stop")


def start_postgres(server: services.PostgresServer) -> None:
    log = str(server.folder / "log")
    pg_ctl(server, "-o", postgres_options(server), "-l", log, "-w", "start")


def create_database(server: services.PostgresServer, name: str) -> str:
    admin = f"postgresql://{server.user}@{server.host}:{server.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://{server.user}@{server.host}:{server.port}/{name}"


# --- the ledger and the judge ------------------------------------------------------------------


@dataclass
class Ledger:
    """Every verb the tests issued, per workspace: answered, or sent without an answer."""

    answered: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    unanswered: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    wants: dict[str, str] = field(default_factory=dict)

    def record(self, workspace_id: str, verb: str, *, answered: bool) -> None:
        (self.answered if answered else self.unanswered)[workspace_id][verb] += 1
        self.wants[workspace_id] = VERBS[verb][0]


@dataclass
class Result:
    """One fault's line in the session's convergence table."""

    fault: str
    bound: float
    seconds: float | None = None
    note: str = ""


# The session's results, kept on pytest's config for the terminal summary.
RESULTS = pytest.StashKey[list[Result]]()


def table(results: list[Result]) -> list[str]:
    lines = [f"{'fault':<48} {'bound':>7} {'converged in':>13}  note"]
    for result in results:
        took = "—" if result.seconds is None else f"{result.seconds:.1f} s"
        note = result.note if result.seconds is not None else result.note or "did not converge"
        lines.append(f"{result.fault:<48} {result.bound:>5g} s {took:>13}  {note}")
    return lines


class Stack:
    """The running stack and what the tests do to it."""

    def __init__(
        self,
        root: Path,
        agents_root: Path,
        database_url: str,
        pg: services.PostgresServer,
        redis: Redis,
    ) -> None:
        self.root, self.database_url, self.pg, self.redis = root, database_url, pg, redis
        self.agents_root = agents_root
        self.token = secrets.token_urlsafe(32)
        self.console = Console(
            root / "var",
            clean_environment(
                DATABASE_URL=database_url,
                CELERY_BROKER_URL=redis.url,
                ADMIN_TOKEN=self.token,
                MOLECULE_LOCAL_ROOT=str(self.agents_root),
                MOLECULE_BACKENDS="local",
                **SWEEPS,
            ),
            web_workers=2,
            concurrency=4,
        )
        self.ledger = Ledger()
        self.org = "chaos"
        self._db: psycopg.Connection | None = None

    # --- the console -------------------------------------------------------------------
    def start(self) -> Stack:
        self.console.start(timeout=120)
        answer = self.api("POST", "/orgs", json={"slug": self.org, "name": "Chaos"})
        assert answer.status_code == 201, answer.text
        return self

    def stop(self) -> None:
        self.console.stop()
        self.kill_agents()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()

    def kill_agents(self) -> None:
        for pid in processes_under(self.agents_root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)

    def api(self, method: str, path: str, *, timeout: float = 20, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.console.url}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
            trust_env=False,
            **kwargs,
        )

    def send_task(self, name: str, **options: Any) -> str:
        """Queue a Celery task on the stack's broker from this process; its id."""
        with Connection(self.redis.url) as connection, warnings.catch_warnings():
            # This process's app is eager (tests/conftest.py); send_task sends all the same.
            warnings.simplefilter("ignore", AlwaysEagerIgnored)
            return celery_app.send_task(name, connection=connection, **options).id

    # --- verbs -------------------------------------------------------------------------
    def create(self, name: str) -> str:
        answer = self.api("POST", f"/orgs/{self.org}/workspaces", json={"name": name, "tier": 2})
        assert answer.status_code == 201, answer.text
        workspace_id = answer.json()["id"]
        self.ledger.record(workspace_id, "create", answered=True)
        return workspace_id

    def verb(self, workspace_id: str, verb: str, *, timeout: float = 20) -> httpx.Response:
        """Issue a verb; an answer other than 2xx (or none) is recorded as unanswered."""
        base = f"/orgs/{self.org}/workspaces/{workspace_id}"
        try:
            if verb == "delete":
                answer = self.api("DELETE", base, timeout=timeout)
            else:
                answer = self.api("POST", f"{base}/{verb}", timeout=timeout)
        except httpx.HTTPError:
            self.ledger.record(workspace_id, verb, answered=False)
            raise
        self.ledger.record(workspace_id, verb, answered=answer.is_success)
        return answer

    # --- looking from outside ----------------------------------------------------------
    def query(self, sql: str, *params: Any) -> list[tuple]:
        for attempt in range(2):
            try:
                if self._db is None or self._db.closed:
                    self._db = psycopg.connect(
                        self.database_url, autocommit=True, connect_timeout=2
                    )
                return self._db.execute(sql, params).fetchall()
            except psycopg.OperationalError:
                # The server restarted (a fault): connect again once.
                with contextlib.suppress(Exception):
                    self._db.close()
                self._db = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def rows(self) -> dict[str, dict[str, Any]]:
        columns = (
            "id, name, status, generation, reconciled_generation, instance_generation, "
            "instance_id, backend_state, lease_owner, "
            "extract(epoch from lease_until - now())::int AS lease_left, "
            "extract(epoch from now() - last_heartbeat_at)::float AS silent_for"
        )
        found = self.query(f"SELECT {columns} FROM workspaces_workspace")
        names = [c.strip().rpartition(" AS ")[2] for c in columns.split(", ")]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in found}

    def verb_events(self) -> dict[str, Counter]:
        found = self.query(
            "SELECT workspace_id, event_type, payload->>'cause', count(*) "
            "FROM workspaces_structureevent WHERE actor = %s AND workspace_id IS NOT NULL "
            "GROUP BY 1, 2, 3",
            ADMIN_ACTOR,
        )
        counted: dict[str, Counter] = defaultdict(Counter)
        for workspace_id, event_type, cause, count in found:
            counted[str(workspace_id)][(event_type, cause)] += count
        return counted

    def last_failure(self, workspace_id: str) -> str:
        found = self.query(
            "SELECT payload->>'error' FROM workspaces_structureevent WHERE workspace_id = %s "
            "AND event_type = 'WORKSPACE_PROVISION_FAILED' ORDER BY id DESC LIMIT 1",
            workspace_id,
        )
        return found[0][0] if found else "(no event says why)"

    def agents(self) -> dict[str, list[int]]:
        """Live agent processes under the local root, by workspace id (group leaders only)."""
        found: dict[str, list[int]] = defaultdict(list)
        for pid in processes_under(self.agents_root):
            stat = proc_stat(pid)
            if stat is not None and stat[1] == pid:
                found[environ(pid).get("WORKSPACE_ID", "?")].append(pid)
        return found

    def agent_pid(self, workspace_id: str) -> int:
        return self.rows()[workspace_id]["backend_state"]["pid"]

    def problems(self) -> list[str]:
        """What is not yet as the ledger asks (empty: converged)."""
        rows, agents, events = self.rows(), self.agents(), self.verb_events()
        found = []
        for workspace_id, row in rows.items():
            name = f"{row['name']} ({workspace_id[:8]})"
            want, status = self.ledger.wants.get(workspace_id), row["status"]
            alive = agents.get(workspace_id, [])
            if status == "failed":
                found.append(f"{name} failed: {self.last_failure(workspace_id)}")
            elif want is not None and not (status == want or (want == "online" and status in LIVE)):
                leased = ""
                if row["lease_owner"]:
                    leased = f" ({LEASE_HELD} {row['lease_left']} s more)"
                found.append(f"{name} is {status}{leased}, its last verb asked for {want}")
            if status in LIVE:
                silent = row["silent_for"]
                if silent is None or silent > float(SWEEPS["MOLECULE_LIVENESS_TIMEOUT"]):
                    found.append(f"{name} is {status} but its agent has been silent {silent} s")
                pid = (row["backend_state"] or {}).get("pid")
                if alive != [pid]:
                    found.append(f"{name} is {status}: live agents {alive}, the row records {pid}")
                generations = row["generation"], row["instance_generation"]
                if generations[0] != generations[1]:
                    found.append(
                        f"{name}'s instance is of generation {generations[1]}, not {generations[0]}"
                    )
                if row["reconciled_generation"] != row["generation"]:
                    found.append(
                        f"{name} is not reconciled (generation {row['generation']}, "
                        f"reconciled {row['reconciled_generation']})"
                    )
            elif alive:
                found.append(f"{name} is {status} but agents {alive} still run")
        for workspace_id, pids in agents.items():
            if workspace_id not in rows:
                found.append(f"agents {pids} run for {workspace_id}, which has no row")
        for workspace_id in self.ledger.wants:
            answered = self.ledger.answered[workspace_id]
            unanswered = self.ledger.unanswered[workspace_id]
            for verb in {*answered, *unanswered}:
                _, event_type, cause = VERBS[verb]
                low, high = answered[verb], answered[verb] + unanswered[verb]
                seen = events[workspace_id][(event_type, cause)]
                if not low <= seen <= high:
                    expected = f"{low}" if low == high else f"{low} to {high}"
                    found.append(f"{workspace_id[:8]}: {seen} {verb} event(s), {expected} issued")
        return found

    def converge(
        self,
        bound: float,
        *,
        since: float | None = None,
        healed: Callable[[], bool] | None = None,
        result: Result | None = None,
        interval: float = 0.25,
    ) -> float:
        """Seconds from ``since`` (default now) until ``problems()`` is empty and ``healed()``
        (what the fault broke was replaced, e.g. a frozen agent that still looks fine) holds,
        written into ``result``. Past the bound the test fails with what is still wrong."""
        since = time.monotonic() if since is None else since
        while True:
            try:
                left = self.problems()
                if healed is not None and not healed():
                    left.append("what the fault broke is still there")
            except psycopg.OperationalError as error:
                left = [f"the database does not answer: {error}"]
            if not left:
                took = time.monotonic() - since
                if result is not None:
                    result.seconds = took
                return took
            elapsed = time.monotonic() - since
            if elapsed > bound:
                break
            time.sleep(interval)
        elapsed = time.monotonic() - since
        said = f"not converged after {elapsed:.0f} s (bound {bound:g} s):\n  " + "\n  ".join(left)
        pytest.fail(f"{said}\n--- console log (end) ---\n{self.console.log()[-6000:]}")

    def clean_up(self) -> None:
        """Delete every workspace the tests made that is not removed yet; wait for it."""
        rows = self.rows()
        for workspace_id, want in list(self.ledger.wants.items()):
            if want != "removed" and rows.get(workspace_id, {}).get("status") != "removed":
                answer = self.verb(workspace_id, "delete")
                assert answer.status_code == 202, answer.text
        self.converge(30)
