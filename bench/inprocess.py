"""The measurements that run inside a Django process on one bench database: the admin
changelists, the sweeps (each in a forked process of its own, for its peak memory) and the org
import. ``python -m bench.inprocess admin,sweeps,import`` with DJANGO_SETTINGS_MODULE=bench.settings
and DATABASE_URL naming the database; prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import django

from bench.fleet import SILENT

SWEEPS = ["liveness", "provision_timeout", "health", "orphan"]


class Statements:
    """Counts every SQL statement the connection executes (kept nowhere: no memory grows)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def admin_changelists() -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(User.objects.get(username="bench-admin"))
    found = {}
    for name in ("workspace", "structureevent"):
        url = reverse(f"admin:workspaces_{name}_changelist")
        client.get(url)  # unmeasured: templates compile on the first request
        counter = Statements()
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            response = client.get(url)
            seconds = time.perf_counter() - started
        found[name] = {
            "status": response.status_code,
            "queries": counter.count,
            "seconds": seconds,
            "bytes": len(response.content),
        }
    return found


def _prepare_liveness() -> None:
    """Every online or degraded workspace heard from just now but the silent 1% (an hour ago:
    the heartbeat load and pgbench may have touched them), and a liveness sweep that has been
    watching long enough to judge (its state row says so)."""
    from django.db import connection

    size = int(os.environ["BENCH_FLEET_SIZE"])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE workspaces_workspace SET last_heartbeat_at = CASE WHEN id IN "
            "(SELECT md5('ws' || g)::uuid FROM generate_series(%s, %s, 100) AS g) "
            "THEN now() - interval '1 hour' ELSE now() END "
            "WHERE status IN ('online', 'degraded')",
            [SILENT, size],
        )
        cursor.execute(
            "INSERT INTO workspaces_sweepstate (name, last_run_at, watching_since) "
            "VALUES ('liveness', now(), now() - interval '1 day') ON CONFLICT (name) DO UPDATE "
            "SET last_run_at = now(), watching_since = now() - interval '1 day'"
        )
        cursor.execute("VACUUM ANALYZE workspaces_workspace")


def _one_sweep(name: str) -> dict[str, Any]:
    from django.db import connection

    from workspaces import tasks

    task = getattr(tasks, f"{name}_sweep")
    connection.ensure_connection()
    before = _rss_kib("VmRSS")
    counter = Statements()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = task.apply()
        seconds = time.perf_counter() - started
    peak = _rss_kib("VmHWM")
    if not result.successful():
        return {"error": str(result.result), "traceback": str(result.traceback)[-1500:]}
    return {
        "seconds": seconds,
        "statements": counter.count,
        "rows": result.result,
        "peak_mib": max(0, peak - before) / 1024,
    }


def sweeps() -> dict[str, Any]:
    """Each sweep in a forked process: its peak memory is its own, not the ones before it."""
    from django.db import connections

    if "liveness" in SWEEPS:
        _prepare_liveness()
    found = {}
    for name in SWEEPS:
        connections.close_all()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                data = _one_sweep(name)
            except Exception:
                data = {"error": traceback.format_exc()[-1500:]}
            with os.fdopen(write, "w") as out:
                json.dump(data, out)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as inp:
            text = inp.read()
        os.waitpid(pid, 0)
        found[name] = json.loads(text) if text else {"error": "the sweep's process died"}
    return found


def import_template(count: int, slug: str) -> str:
    """An org template of ``count`` workspaces: leads of 49 members each, one secret each."""
    lines = [
        f"name: Bench import {slug}",
        f"slug: {slug}",
        "defaults: {runtime: langgraph, tier: 2}",
        "required_env: [BENCH_API_KEY]",
        "workspaces:",
    ]
    made, lead = 0, 0
    while made < count:
        lines += [f"  - name: lead-{lead}", "    role: Lead"]
        made += 1
        members = min(49, count - made)
        if members:
            lines.append("    children:")
            lines += [
                f"      - {{name: member-{lead}-{m}, role: Engineer, tier: {1 + m % 2}}}"
                for m in range(members)
            ]
            made += members
        lead += 1
    return "\n".join(lines) + "\n"


def _queued_messages() -> int:
    from django.conf import settings

    folder = Path(getattr(settings, "BROKER_DIR", "")) / "queue"
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


def _import(count: int, slug: str) -> dict[str, Any]:
    from django.db import connection

    from orgs.importer import import_org

    text = import_template(count, slug)
    queued = _queued_messages()
    counter = Statements()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = import_org(text, actor="bench", env={"BENCH_API_KEY": "bench-secret"})
        seconds = time.perf_counter() - started
    return {
        "workspaces": len(result.workspaces),
        "seconds": seconds,
        "queries": counter.count,
        "enqueued": _queued_messages() - queued,
    }


def org_import() -> dict[str, Any]:
    from django.conf import settings

    from workspaces import fields

    wanted = 1000
    cap = getattr(fields, "MAX_TEAM", None)
    count = min(wanted, cap) if cap else wanted
    return {
        "cap": cap,
        "wanted": wanted,
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0]
        + ("://" if not settings.CELERY_TASK_ALWAYS_EAGER else " (eager)"),
        "baseline": _import(10, "bench-import-10"),
        "measured": _import(count, f"bench-import-{count}"),
    }


def main(what: list[str]) -> dict[str, Any]:
    django.setup()
    jobs = {"admin": admin_changelists, "sweeps": sweeps, "import": org_import}
    found: dict[str, Any] = {}
    for name in what:
        try:
            found[name] = jobs[name]()
        except Exception:
            found[name] = {"error": traceback.format_exc()[-2000:]}
    return found


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1].split(","))), flush=True)
