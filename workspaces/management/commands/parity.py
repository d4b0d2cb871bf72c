"""``manage.py parity``: run the parity matrix's contract scenarios, print it, write its doc."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cpdouble import ControlPlaneDouble
from molecule.celery import app as celery_app
from workspaces import parity, registry_server
from workspaces.dispatch import probes
from workspaces.models import ParityResult, ParityRun

MARKS = {ParityResult.PASSED: "ok", ParityResult.FAILED: "FAIL", ParityResult.SKIPPED: "skip"}


class Command(BaseCommand):
    help = (
        "Run every parity scenario against every available backend (--check), or write the "
        "declared matrix as Markdown (--markdown PATH). Exits 1 when a declared parity fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Run the scenarios and record a run."
        )
        parser.add_argument(
            "--backend",
            action="append",
            dest="backends",
            metavar="NAME",
            help="Only this backend (repeatable). Default: every known backend.",
        )
        parser.add_argument("--timeout", type=float, default=90, help="Seconds per wait.")
        parser.add_argument("--markdown", metavar="PATH", help="Write the declared matrix here.")
        parser.add_argument(
            "--double",
            action="store_true",
            help="Check the controlplane backend against a control-plane double started for the "
            "check (cpdouble/), instead of the control plane in MOLECULE_CONTROLPLANE_URL.",
        )
        parser.add_argument(
            "--double-fault",
            action="append",
            default=[],
            choices=["delete_noop"],
            help="Break the double on purpose (delete_noop: DELETE answers 200 and does nothing), "
            "to see the check catch the drift.",
        )

    def handle(
        self,
        *args: Any,
        check: bool,
        backends: list[str] | None,
        timeout: float,
        markdown: str | None,
        double: bool,
        double_fault: list[str],
        **options: Any,
    ) -> None:
        if not check and not markdown:
            raise CommandError("Say what to do: --check, --markdown PATH, or both.")
        if markdown:
            Path(markdown).write_text(parity.to_markdown())
            self.stdout.write(f"Wrote {markdown}.")
        if check:
            with contextlib.ExitStack() as stack:
                if double or double_fault:
                    stack.enter_context(self._double(double_fault))
                self._check(backends, timeout)

    @contextlib.contextmanager
    def _double(self, faults: list[str]) -> Iterator[None]:
        root = Path(tempfile.mkdtemp(prefix="molecule-cpdouble-"))
        token = secrets.token_urlsafe(24)
        # The double's volumes go even when the check ends in drift (a CommandError).
        stack = contextlib.ExitStack()
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        with stack, ControlPlaneDouble(token=token, root=root) as double:
            if faults:
                double.set_faults(**dict.fromkeys(faults, True))
            settings.MOLECULE_CONTROLPLANE_URL, settings.MOLECULE_CONTROLPLANE_TOKEN = (
                double.url,
                token,
            )
            probes.enable_in_this_process("controlplane")
            self.stdout.write(f"Control-plane double on {double.url} (faults: {faults or 'none'}).")
            yield

    def _check(self, backends: list[str] | None, timeout: float) -> None:
        try:
            run = parity.start_run(backends=backends, requested_by="cli:parity")
        except ValueError as error:
            raise CommandError(str(error)) from None
        # The command is a process of its own: backend calls run inline (no worker needed),
        # and agents register with a server that lives as long as the check.
        celery_app.conf.task_always_eager = True
        host = probes.registry_listen_host(run.backends)
        with registry_server.serving(host=host) as port:
            previous = settings.MOLECULE_REGISTRY_URL
            settings.MOLECULE_REGISTRY_URL = f"http://127.0.0.1:{port}"
            try:
                parity.execute(run, timeout=timeout)
            finally:
                settings.MOLECULE_REGISTRY_URL = previous
        self._print(run)
        drift = list(run.drift())
        if drift:
            cells = ", ".join(f"{r.backend}/{r.row}" for r in drift)
            raise CommandError(f"Drift: declared parity but the scenario failed: {cells}.")

    def _print(self, run: ParityRun) -> None:
        results = {(r.backend, r.row): r for r in run.results.all()}
        width = max(len(row.title) for row in parity.ROWS) + 2
        self.stdout.write("".ljust(width) + "".join(b.ljust(24) for b in run.backends))
        for row in parity.ROWS:
            cells = []
            for backend in run.backends:
                result = results.get((backend, row.id))
                if result is None:
                    cells.append("-".ljust(24))
                    continue
                mark = "DRIFT" if result.drift else MARKS[result.outcome]
                cells.append(f"{result.declared[:10]}/{mark}".ljust(24))
            self.stdout.write(row.title.ljust(width) + "".join(cells))
        for result in run.results.exclude(outcome=ParityResult.PASSED).order_by("backend", "id"):
            self.stdout.write(f"  {result.backend}/{result.row} {result.outcome}: {result.detail}")
        self.stdout.write(
            f"Parity run {run.pk}: {run.results.count()} cells, {run.drift().count()} drift."
        )
