"""``manage.py run``: the embedded default in one command.

Migrates, makes sure there is an admin login, seeds the demo org on first start, then supervises
a web server (gunicorn) and one Celery worker with embedded beat on the broker from settings
(kombu's filesystem transport unless ``CELERY_BROKER_URL`` says otherwise), through
``molecule.supervisor``: each runs in a process group of its own; one that dies is restarted
with a back-off (1 s doubling to 30 s) and the other keeps running, so a crashed worker never
takes the web server down (nor the reverse); a worker whose embedded beat died is restarted
too. Ctrl-C or SIGTERM stops both, each whole process group (the worker's beat included).
Workspace agents are left running on purpose: a console restart must not take the fleet down;
the sweeps find them again when the console is back.

Logs go to stderr: Django's (unhandled errors with their traceback, the project's loggers; see
``LOGGING`` in settings), the supervisor's (every exit with its status, every restart),
gunicorn's access and error logs, and the worker's.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from molecule.supervisor import Child, Supervisor
from orgs.models import Org

# This process's standard error, as a file descriptor: what the children's logs are written to.
STDERR = 2


class Command(BaseCommand):
    help = "Run the console on the embedded default: web server, Celery worker and beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not seed the demo org.")
        # The shape measured on 2 cores (heartbeats against PostgreSQL, 16 connections; the
        # figures are in docs/registry-protocol.md, "Performance"): gthread beats sync workers
        # (a sync worker sits idle through every commit's fsync: 130-240 heartbeats/s with 3 or
        # 5 of them, 2.9-3.8 ms of CPU each, against 190-700/s and 1.9-3.2 ms for gthread), and
        # one process per core with 8 threads beat 4 threads in both rounds (353 and 703/s
        # against 251 and 591/s) and 3 or 4 processes of 4 (191-601/s). Each thread keeps one
        # database connection (CONN_MAX_AGE): 2 x 8 is 16 of PostgreSQL's 100.
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--web-threads", type=int, default=8)
        parser.add_argument("--concurrency", type=int, default=4, help="Celery worker threads.")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        call_command("migrate", interactive=False, verbosity=0)
        username, password = self._admin_login()
        if not options["no_demo"] and not Org.objects.exists():
            call_command("demo", stdout=self.stdout)
        # Every child writes its counters here and a scrape adds them up (molecule/metrics.py);
        # emptied at each start so a restarted console counts from zero, as Prometheus expects.
        metrics_dir = Path(settings.VAR_DIR) / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(mode=0o700)
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "MOLECULE_REGISTRY_URL": os.environ.get(
                "MOLECULE_REGISTRY_URL", f"http://{host}:{port}"
            ),
        }
        python = sys.executable
        worker = Child(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "molecule",
                "worker",
                "--beat",
                "--loglevel",
                "INFO",
                "--pool",
                "threads",
                "--concurrency",
                str(options["concurrency"]),
                # Beat keeps its schedule in memory. Celery's default keeps it in a shelve, on
                # Python 3.13 an SQLite file in WAL mode, which a beat starting under load could
                # find unopenable ("locking protocol") and die with, leaving the worker without
                # sweeps until the supervisor noticed. What it would remember (each sweep's last
                # run) is worth nothing: every sweep is an interval, and after a start it simply
                # runs once at once.
                "--scheduler",
                "celery.beat:Scheduler",
            ],
            env=env,
            # The worker and its embedded beat: a worker left without its beat is restarted.
            group_size=2,
        )
        web = Child(
            "web server",
            [
                python,
                "-m",
                "gunicorn",
                "molecule.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(options["web_workers"]),
                "--threads",
                str(options["web_threads"]),
                "--graceful-timeout",
                "5",
                # Both logs on this console's stderr, beside Django's (settings.LOGGING):
                # gunicorn writes an access log named "-" to its stdout, hence stdout=STDERR.
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
                # Its control socket is one path per user (~/.gunicorn/gunicorn.ctl): a second
                # console on the machine, or the test suite's, would take it over.
                "--no-control-socket",
            ],
            env=env,
            stdout=STDERR,
        )
        supervisor = Supervisor([worker, web])
        supervisor.handle_signals()

        def started() -> None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nMolecule console: http://{host}:{port}/\n"
                    f"Log in as {username} / {password}\n"
                    f"Admin: http://{host}:{port}/admin/   Ctrl-C stops the console.\n"
                )
            )
            self.stdout.flush()

        supervisor.run(on_started=started)
        self.stdout.write("Console stopped. Workspace agents keep running until stopped.")

    def _admin_login(self) -> tuple[str, str]:
        """The first superuser's login; created (and its password kept under var/) if none."""
        users = get_user_model()
        secret = Path(settings.VAR_DIR) / "admin-password"
        if not users.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            users.objects.create_superuser("admin", "admin@localhost", password)
            # Created 0600 from the first byte: never readable by others, not even briefly.
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(password)
        admin = users.objects.filter(is_superuser=True).order_by("pk").first()
        shown = secret.read_text().strip() if secret.exists() else "(the password you set)"
        return admin.get_username(), shown
