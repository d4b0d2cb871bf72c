"""The backend parity matrix: feature rows, what each backend declares, what really happens.

The reference project kept this matrix as a hand-written document; it drifted, and one backend
silently skipped provisioning and stopping for six months. Here every row names a contract
scenario (workspaces/scenarios.py) that really runs against each backend through dispatch, and a
run records, per cell, what the backend declares and what the scenario found. A declared
"parity" whose scenario fails is drift: ``manage.py parity --check`` exits non-zero on it and the
parity page shows it in red. ``docs/backends.md`` is written from the same data
(``manage.py parity --markdown docs/backends.md``) and a test fails when it is stale.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from workspaces import scenarios, scenarios_files, scenarios_redaction
from workspaces.dispatch import probes
from workspaces.models import ParityResult, ParityRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    checks: str

    @property
    def scenario(self) -> Callable[[scenarios.Context], None]:
        name = f"scenario_{self.id}"
        # The rows that reach into a workspace's storage keep their scenarios in a module of
        # their own.
        for module in (scenarios, scenarios_files):
            if (found := getattr(module, name, None)) is not None:
                return found
        return getattr(scenarios_redaction, name)


ROWS = [
    Row("provision", "Provision", "a new workspace starts, registers and comes online"),
    Row("stop", "Stop", "stop ends the instance and the workspace rests offline"),
    Row("restart", "Restart", "a new instance replaces the old one, which is gone"),
    Row("pause_resume", "Pause / resume", "pause ends the instance; resume brings it back online"),
    Row("delete_storage", "Delete with storage clean-up", "the instance and its storage are gone"),
    Row("org_import", "Org import", "an imported org's tree comes online on this backend"),
    Row("team", "Team expand / collapse", "children come online, then are stopped and removed"),
    Row("secrets", "Secrets injection", "a secret set on the workspace reaches the agent's env"),
    Row("tier_1", "T1 sandboxed", "read-only root, writable /tmp, no /workspace, 512 MiB, 1 CPU"),
    Row("tier_2", "T2 standard", "512 MiB, 1 CPU, /workspace, own PID and network namespaces"),
    Row("tier_3", "T3 privileged", "privileged, host PID namespace, own network, /workspace"),
    Row("tier_4", "T4 full access", "privileged, host PID and network, the engine socket"),
    Row("console", "Console output", "the instance's boot log is readable from the console"),
    Row("liveness", "Liveness probe", "a lost instance is noticed, and the workspace restarted"),
    Row("orphans", "Orphan detection", "an instance no workspace owns is found and stopped"),
    Row("url", "URL resolution", "the recorded URL reaches the agent's /health"),
    Row("runtime_from_db", "Runtime from the database", "restart uses the runtime on the row"),
    Row(
        "template_files",
        "Template files at provision",
        "the template's files and system prompt reach the agent's configs, byte for byte",
    ),
    Row(
        "memories",
        "Initial memories seeded",
        "the template's initial memories and plugins reach the agent's config.yaml",
    ),
    Row(
        "config_restart",
        "Config change applies at restart",
        "a new model and role reach the restarted agent's config.yaml",
    ),
    Row(
        "a2a",
        "A2A forward",
        "a message/send reaches the agent at the recorded URL and its answer comes back",
    ),
    Row(
        "files",
        "Files",
        "a file written into the configs reaches the agent, reads back, is renamed and deleted; "
        "/workspace too",
    ),
    Row(
        "plugins",
        "Plugins",
        "a template's plugin arrives at provision; one installed live reaches the agent, is "
        "listed, survives a restart and goes on uninstall",
    ),
    Row(
        "redaction",
        "Redaction",
        "a planted secret shows masked in the A2A answer, the console, a file and its download; "
        "no event or report keeps it",
    ),
]
ROW_IDS = [row.id for row in ROWS]


def declared_matrix() -> dict[str, dict[str, object]]:
    """backend → row → Declared (or None when the backend forgot to declare the row)."""
    return {
        name: {row.id: probes.declared(name).get(row.id) for row in ROWS} for name in probes.known()
    }


def _record(
    run: ParityRun, backend: str, row: Row, outcome: str, detail: str, seconds: float
) -> ParityResult:
    declared = probes.declared(backend).get(row.id)
    return ParityResult.objects.create(
        run=run,
        backend=backend,
        row=row.id,
        declared=str(declared.verdict) if declared else "undeclared",
        declared_note=declared.note if declared else "",
        outcome=outcome,
        detail=detail[:4000],
        duration_seconds=round(seconds, 3),
    )


def _run_cell(run: ParityRun, backend: str, row: Row, context: scenarios.Context) -> ParityResult:
    declared = probes.declared(backend).get(row.id)
    if declared is not None and declared.verdict == "unsupported":
        return _record(
            run, backend, row, ParityResult.SKIPPED, f"declared unsupported: {declared.note}", 0
        )
    started = time.monotonic()
    try:
        row.scenario(context)
    except scenarios.ScenarioSkipped as skipped:
        outcome, detail = ParityResult.SKIPPED, str(skipped)
    except Exception as error:  # a scenario's failure is data, whatever raised it
        log.debug("parity %s/%s failed: %s", backend, row.id, error, exc_info=True)
        outcome, detail = ParityResult.FAILED, f"{type(error).__name__}: {error}"
    else:
        outcome, detail = ParityResult.PASSED, ""
    finally:
        context.cleanup()
    return _record(run, backend, row, outcome, detail, time.monotonic() - started)


def start_run(*, backends: list[str] | None, requested_by: str) -> ParityRun:
    chosen = backends or probes.known()
    unknown = sorted(set(chosen) - set(probes.known()))
    if unknown:
        raise ValueError(
            f"Unknown backend(s): {', '.join(unknown)}; known: {', '.join(probes.known())}."
        )
    return ParityRun.objects.create(backends=chosen, requested_by=requested_by)


def execute(run: ParityRun, *, timeout: float = 90) -> ParityRun:
    """Run every row's scenario on every backend of the run, recording each cell as it ends.

    A backend this console is not configured for gets every cell skipped with that reason. The
    run is marked finished even when something unexpected stops it, with the error kept.
    """
    try:
        for backend in run.backends:
            if backend not in probes.available():
                for row in ROWS:
                    _record(
                        run,
                        backend,
                        row,
                        ParityResult.SKIPPED,
                        "backend not configured on this console (MOLECULE_BACKENDS)",
                        0,
                    )
                continue
            with scenarios.Context.open(
                backend=backend, label=str(run.pk), timeout=timeout
            ) as context:
                for row in ROWS:
                    _run_cell(run, backend, row, context)
    except Exception as error:
        run.error = f"{type(error).__name__}: {error}"
        raise
    finally:
        run.finished_at = timezone.now()
        with transaction.atomic():
            run.save(update_fields=["finished_at", "error"])
    return run


def to_markdown() -> str:
    """docs/backends.md: the declared matrix, generated from the code (never edited by hand)."""
    matrix = declared_matrix()
    names = list(matrix)
    lines = [
        "# Backend parity matrix",
        "",
        "Generated by `manage.py parity --markdown docs/backends.md` from the declarations in",
        "`workspaces/backends/*.py` and the rows in `workspaces/parity.py`; a test fails when this",
        "file is stale. Each row has a contract scenario (`workspaces/scenarios.py`) that",
        "`manage.py parity --check` runs against every backend; the parity page",
        "(`/parity/`) shows the verified results next to these declarations, and a declared",
        "**parity** whose scenario fails as **drift**.",
        "",
        "Every lifecycle verb reaches a backend only through `workspaces/dispatch/`",
        "(import-linter contracts and `tests/test_architecture.py` pin it).",
        "",
        "| Feature | Checks | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    notes: dict[str, int] = {}  # a note shared by several cells is written once
    for row in ROWS:
        cells = []
        for name in names:
            declared = matrix[name][row.id]
            if declared is None:
                cells.append("**undeclared**")
                continue
            cell = str(declared.verdict)
            if declared.note:
                number = notes.setdefault(f"{name}: {declared.note}", len(notes) + 1)
                cell += f" [{number}]"
            cells.append(cell)
        lines.append(f"| {row.title} (`{row.id}`) | {row.checks} | " + " | ".join(cells) + " |")
    lines += ["", "## Notes", ""] + [f"{n}. {note}" for note, n in notes.items()]
    return "\n".join(lines) + "\n"
