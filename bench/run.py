"""``scripts/bench``: start PostgreSQL, seed, measure every row, print the table.

Databases (one cluster, loopback only, a free port, removed at the end): the fleet at the size
asked for, and the same fleet at the smaller sizes the growth rows compare it with (1,000 and
10,000 for a 100,000 fleet; a tenth of the size below 1,000 workspaces), each seeded by the same
rules with the same workspaces per org and events per workspace.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import django
import psycopg

from bench import load, pages, report
from bench.fleet import Fleet
from tests.support import services

ROOT = Path(__file__).resolve().parent.parent
ROWS = ["heartbeats", "dashboard", "admin", "sweeps", "import"]
HOST = "127.0.0.1"
# Heartbeat targets written for the load generators: spread over the whole fleet.
TARGETS = 20_000


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--size", type=int, default=100_000, help="workspaces (100,000)")
    parser.add_argument("--orgs", type=int, help="orgs (default: one per 100 workspaces)")
    parser.add_argument("--events", type=int, help="events (default: ten per workspace)")
    parser.add_argument(
        "--rows", default=",".join(ROWS), help=f"which rows, comma-separated ({','.join(ROWS)})"
    )
    parser.add_argument(
        "--duration", type=float, default=10, help="seconds of load for wrk and pgbench each"
    )
    args = parser.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if unknown := set(args.rows) - set(ROWS):
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}; use {', '.join(ROWS)}")
    if args.size < 10:
        parser.error("--size must be at least 10")
    args.orgs = args.orgs or max(1, args.size // 100)
    args.events = args.size * 10 if args.events is None else args.events
    if not 1 <= args.orgs <= args.size:
        parser.error("--orgs must be between 1 and --size")
    return args


def sizes_for(size: int) -> list[int]:
    """The sizes seeded: the smaller ones the growth rows compare with, then ``size``."""
    smaller = [s for s in (1_000, 10_000) if s < size] or [max(10, size // 10)]
    return [*smaller, size]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, folder: Path, pg: services.PostgresServer):
        self.args = args
        self.folder = folder
        self.pg = pg
        self.conninfo = f"host={pg.host} port={pg.port} user={pg.user}"
        self.salt = secrets.token_urlsafe(12)
        self.log = folder / "bench.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MOLECULE_"))},
            "MOLECULE_VAR_DIR": str(folder / "var"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECRETS_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "DEBUG": "false",
            "CELERY_BROKER_URL": "moleculefs://",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "MOLECULE_BACKENDS": "local",
            "PYTHONPATH": str(ROOT),
        }
        for key in ("CACHE_URL", "ADMIN_TOKEN", "DATABASE_URL"):
            self.env.pop(key, None)

    def url(self, database: str) -> str:
        return f"postgres://{self.pg.user}@{self.pg.host}:{self.pg.port}/{database}"

    def env_for(self, database: str, size: int, settings: str) -> dict[str, str]:
        return {
            **self.env,
            "DATABASE_URL": self.url(database),
            "DJANGO_SETTINGS_MODULE": settings,
            "BENCH_FLEET_SIZE": str(size),
            "BENCH_FLEET_ORGS": str(self.orgs_at(size)),
        }

    def orgs_at(self, size: int) -> int:
        return max(1, self.args.orgs * size // self.args.size)

    def events_at(self, size: int) -> int:
        return self.args.events * size // self.args.size

    # --- databases ------------------------------------------------------------------------

    def migrate_template(self) -> None:
        with psycopg.connect(self.conninfo, dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_template")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env=self.env_for("bench_template", self.args.size, "bench.settings"),
            check=True,
        )
        say(f"migrated in {time.perf_counter() - started:.1f} s")

    def seed(self, size: int) -> str:
        from bench.seed import seed

        database = f"fleet_{size}"
        with psycopg.connect(self.conninfo, dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database} TEMPLATE bench_template")
        seeded = seed(
            self.conninfo,
            database,
            size=size,
            orgs=self.orgs_at(size),
            events=self.events_at(size),
            salt=self.salt,
        )
        say(
            f"seeded {database}: {size:,} workspaces in {seeded.orgs:,} orgs, "
            f"{seeded.events:,} events, in {seeded.seconds:.1f} s"
        )
        self.sessions[size] = seeded.session_key
        return database

    # --- measuring ------------------------------------------------------------------------

    def inprocess(self, size: int, what: list[str]) -> dict[str, Any]:
        started = time.perf_counter()
        with self.log.open("a") as log:
            result = subprocess.run(
                [sys.executable, "-m", "bench.inprocess", ",".join(what)],
                cwd=ROOT,
                env=self.env_for(f"fleet_{size}", size, "bench.settings"),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=3600,
            )
        say(f"{','.join(what)} at {size:,} measured in {time.perf_counter() - started:.1f} s")
        for line in result.stdout.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[7:])
        tail = self.log.read_text()[-1500:]
        return {name: {"error": f"exit {result.returncode}: {tail}"} for name in what}

    def run(self) -> list[report.Row]:
        from bench import web  # reads the run command: Django must be set up first

        args, rows = self.args, self.args.rows
        self.sessions: dict[int, str] = {}
        sizes = sizes_for(args.size)
        if not {"dashboard", "admin", "sweeps"} & set(rows):
            sizes = [args.size]
        elif "dashboard" not in rows:
            sizes = [sizes[0], args.size]
        self.migrate_template()
        for size in sizes:
            self.seed(size)
        port = services.free_port()
        argv = web.server_argv(HOST, port)
        say(f"web server: {' '.join(argv[1:])}")
        found: list[report.Row] = []
        if {"heartbeats", "dashboard"} & set(rows):
            # The fleet's server, and one per smaller size for the dashboard's baselines.
            shown = sizes if "dashboard" in rows else [args.size]
            ports = {size: services.free_port() for size in shown}
            ports[args.size] = port
            servers = [
                (self.env_for(f"fleet_{size}", size, "molecule.settings"), ports[size])
                for size in shown
            ]
            with web.serving(argv, servers, host=HOST, log=self.folder / "web.log"):
                if "heartbeats" in rows:
                    found.append(self.heartbeats(port))
                if "dashboard" in rows:
                    found += report.dashboards(
                        [
                            pages.measure_dashboard(HOST, ports[size], self.sessions[size], size)
                            for size in shown
                        ]
                    )
        wanted = [r for r in ("admin", "sweeps") if r in rows]
        if wanted:
            base = self.inprocess(sizes[0], wanted)
            also = ["import"] if "import" in rows else []
            measured = self.inprocess(args.size, [*wanted, *also])
            if "admin" in rows:
                found += report.admin(measured["admin"], base["admin"], args.size, sizes[0])
            if "sweeps" in rows:
                found += report.sweeps(measured["sweeps"], base["sweeps"], args.size, sizes[0])
        elif "import" in rows:
            measured = self.inprocess(args.size, ["import"])
        if "import" in rows:
            found.append(report.org_import(measured["import"]))
        return found

    def heartbeats(self, port: int) -> report.Row:
        from bench.seed import write_heartbeat_targets

        args = self.args
        targets = self.folder / "heartbeats.txt"
        count = write_heartbeat_targets(targets, Fleet(args.size, args.orgs), self.salt, TARGETS)
        say(f"heartbeats: {count:,} workspaces, {args.duration:g} s each for HTTP and pgbench")
        if load.wrk_path():
            load.run_wrk(f"http://{HOST}:{port}", targets, 1, self.folder)  # warm-up
            http = load.run_wrk(f"http://{HOST}:{port}", targets, args.duration, self.folder)
        else:
            load.run_python(HOST, port, targets, 1)
            http = load.run_python(HOST, port, targets, args.duration)
        pgbench = load.run_pgbench(
            host=self.pg.host,
            port=self.pg.port,
            user=self.pg.user,
            database=f"fleet_{args.size}",
            size=args.size,
            seconds=args.duration,
            folder=self.folder,
        )
        return report.heartbeats(http, pgbench)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    load1 = os.getloadavg()[0]
    print(
        f"Molecule console benchmark: {args.size:,} workspaces in {args.orgs:,} orgs, "
        f"{args.events:,} events; {os.cpu_count()} cores (load average {load1:.2f} at the start: "
        "anything else running shares them)",
        flush=True,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="molecule-bench-") as tmp:
        folder = Path(tmp)
        (folder / "var").mkdir()
        with services.postgres(services.free_port()) as pg:
            bench = Bench(args, folder, pg)
            os.environ.update(bench.env_for("bench_template", args.size, "bench.settings"))
            django.setup()
            try:
                rows = bench.run()
            except Exception:
                log = bench.log.read_text()[-3000:] if bench.log.exists() else ""
                web_log = folder / "web.log"
                if web_log.exists():
                    log += web_log.read_text()[-3000:]
                say(log)
                raise
    for row in rows:
        print(row.line(), flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    return 1 if any(row.verdict == "FAILED" for row in rows) else 0
