"""The parity matrix: declarations, the generated document, runs, the command and the page."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from orgs.models import Org
from workspaces import parity, scenarios
from workspaces.backends import Verdict
from workspaces.backends.base import parity as at_parity
from workspaces.backends.local import LocalBackend
from workspaces.dispatch import probes
from workspaces.models import (
    EventType,
    ParityResult,
    ParityRun,
    Status,
    StructureEvent,
    Workspace,
)

ROOT = Path(__file__).resolve().parents[2]
HOST = {"pid_namespace": "pid:[1]", "net_namespace": "net:[1]", "capabilities": "00000000ffffffff"}


def test_docs_backends_md_is_what_the_code_would_write():
    written = (ROOT / "docs" / "backends.md").read_text()
    assert written == parity.to_markdown(), (
        "docs/backends.md is stale: run `manage.py parity --markdown docs/backends.md`"
    )


def test_every_backend_declares_every_row_and_every_row_has_a_scenario():
    for backend, rows in parity.declared_matrix().items():
        missing = [row for row, declared in rows.items() if declared is None]
        assert missing == [], f"{backend} does not declare {missing}"
        for row, declared in rows.items():
            if declared.verdict != Verdict.PARITY:
                assert declared.note, f"{backend}/{row} is {declared.verdict} without a reason"
    for row in parity.ROWS:
        assert callable(row.scenario)


def sandbox_facts(**changes: object) -> dict[str, object]:
    facts = {
        "root_writable": False,
        "tmp_writable": True,
        "workspace_dir": "",
        "memory_limit": 512 * 1024 * 1024,
        "cpu_limit": 1.0,
        "capabilities": "00000000a80425fb",
        "pid_namespace": "pid:[2]",
        "net_namespace": "net:[2]",
        "engine_socket": False,
    }
    return {**facts, **changes}


def test_a_sandboxed_agents_facts_match_t1():
    assert scenarios.isolation_mismatches(1, sandbox_facts(), HOST) == []


def test_each_broken_promise_of_a_tier_is_named():
    facts = sandbox_facts(
        root_writable=True, memory_limit=None, cpu_limit=2.0, pid_namespace="pid:[1]"
    )
    problems = scenarios.isolation_mismatches(1, facts, HOST)
    assert problems == [
        "root filesystem writability does not match the tier",
        f"memory limit is None, not at most {512 * 1024 * 1024}",
        "CPU limit is 2.0, not at most 1",
        "host PID namespace is True, the tier says False",
    ]


def test_t4_wants_privileges_host_namespaces_and_the_engine_socket():
    facts = sandbox_facts(
        root_writable=True,
        workspace_dir="/workspace",
        memory_limit=None,
        cpu_limit=2.0,
        capabilities="000001ffffffffff",
        pid_namespace="pid:[1]",
        net_namespace="net:[1]",
        engine_socket=True,
    )
    assert scenarios.isolation_mismatches(4, facts, HOST) == []
    assert scenarios.isolation_mismatches(4, {**facts, "engine_socket": False}, HOST) == [
        "engine socket is False, the tier says True"
    ]


@pytest.fixture
def two_rows(monkeypatch):
    """A quick matrix: provision (declared parity) and T1 (declared divergent on local)."""
    rows = [row for row in parity.ROWS if row.id in ("provision", "tier_1")]
    monkeypatch.setattr(parity, "ROWS", rows)
    return rows


@pytest.mark.django_db(transaction=True)
def test_a_run_records_every_cell_and_skips_backends_this_console_lacks(local_fleet, two_rows):
    run = parity.start_run(backends=["local", "docker"], requested_by="test")
    parity.execute(run, timeout=30)
    cells = {(r.backend, r.row): r for r in run.results.all()}
    assert set(cells) == {(b, r.id) for b in ("local", "docker") for r in two_rows}
    assert cells["local", "provision"].outcome == ParityResult.PASSED
    assert cells["local", "tier_1"].outcome == ParityResult.FAILED
    assert cells["local", "tier_1"].declared == "divergent"
    assert not cells["local", "tier_1"].drift
    assert cells["docker", "provision"].outcome == ParityResult.SKIPPED
    assert "not configured" in cells["docker", "provision"].detail
    run.refresh_from_db()
    assert run.finished and run.drift().count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_run_leaves_no_scratch_org_active_and_no_workspace_live(local_fleet, monkeypatch):
    rows = [row for row in parity.ROWS if row.id in ("provision", "org_import")]
    monkeypatch.setattr(parity, "ROWS", rows)
    run = parity.start_run(backends=["local"], requested_by="test")
    parity.execute(run, timeout=30)
    assert {r.outcome for r in run.results.all()} == {ParityResult.PASSED}
    scratch = Org.objects.filter(workspaces__isnull=False).distinct()
    assert scratch.count() == 2  # the check's own org and the one its import made
    assert set(scratch.values_list("status", flat=True)) == {Org.OrgStatus.ARCHIVED}
    assert not Workspace.objects.exclude(status=Status.REMOVED).exists()
    archived = StructureEvent.objects.filter(event_type=EventType.ORG_ARCHIVED)
    assert archived.count() == 2  # archived through the org service, with its event


@pytest.mark.django_db(transaction=True)
def test_a_declared_parity_that_fails_is_drift_and_the_command_exits_non_zero(
    local_fleet, two_rows, monkeypatch
):
    # Local declares T1 at parity, which it cannot keep: a process shares the host's PID and
    # network namespaces. (/ is no longer writable for it: the agent runs as a uid of its own.)
    monkeypatch.setattr(
        LocalBackend, "capabilities", {**LocalBackend.capabilities, "tier_1": at_parity()}
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"Drift: .*local/tier_1"):
        call_command("parity", "--check", "--backend", "local", "--timeout", "30", stdout=out)
    assert "DRIFT" in out.getvalue()
    run = ParityRun.objects.get()
    [drift] = run.drift()
    assert (drift.backend, drift.row) == ("local", "tier_1")
    assert "host PID namespace is True, the tier says False" in drift.detail


@pytest.mark.django_db(transaction=True)
def test_the_command_passes_when_every_declaration_holds(local_fleet, two_rows):
    out = io.StringIO()
    call_command("parity", "--check", "--backend", "local", "--timeout", "30", stdout=out)
    assert "0 drift" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_no_op_delete_on_the_control_plane_shows_up_as_drift(local_fleet, monkeypatch):
    monkeypatch.setattr(parity, "ROWS", [r for r in parity.ROWS if r.id == "stop"])
    with pytest.raises(CommandError, match="controlplane/stop"):
        call_command(
            "parity",
            "--check",
            "--backend",
            "controlplane",
            "--double-fault",
            "delete_noop",
            "--timeout",
            "8",
            stdout=io.StringIO(),
        )
    [result] = ParityRun.objects.get().results.all()
    assert result.drift
    assert "releasing" in result.detail or "stopping" in result.detail


def test_the_markdown_command_writes_the_document(tmp_path):
    target = tmp_path / "backends.md"
    call_command("parity", "--markdown", str(target), stdout=io.StringIO())
    assert target.read_text() == parity.to_markdown()


def test_the_command_refuses_to_guess_what_to_do():
    with pytest.raises(CommandError, match="--check, --markdown"):
        call_command("parity")


@pytest.mark.django_db
def test_unknown_backends_are_refused():
    with pytest.raises(CommandError, match="Unknown backend"):
        call_command("parity", "--check", "--backend", "nope")


# --- the page -----------------------------------------------------------------------------------


@pytest.fixture
def finished_run(db):
    run = ParityRun.objects.create(backends=probes.known(), requested_by="test")
    ParityResult.objects.create(
        run=run, backend="local", row="provision", declared="parity", outcome="passed"
    )
    ParityResult.objects.create(
        run=run,
        backend="controlplane",
        row="stop",
        declared="parity",
        outcome="failed",
        detail="ScenarioFailed: the instance stopping did not happen within 15s",
    )
    run.finished_at = run.started_at
    run.save()
    return run


def test_the_page_shows_declared_and_verified_and_drift_loudly(finished_run, owner):
    client = Client()
    client.force_login(owner)
    page = client.get("/parity/").content.decode()
    assert 'data-cell="controlplane/stop" data-declared="parity" data-outcome="failed"' in page
    assert 'class="cell drift"' in page
    assert "the instance stopping did not happen within 15s" in page
    assert 'data-cell="local/provision" data-declared="parity" data-outcome="passed"' in page
    assert 'data-cell="docker/stop" data-declared="parity" data-outcome="none"' in page
    assert 'href="#scenario-stop"' in page
    assert "Run check" not in page  # only superusers may start one


def test_the_page_answers_htmx_with_the_matrix_alone(finished_run, owner):
    client = Client()
    client.force_login(owner)
    response = client.get(f"/parity/?run={finished_run.pk}", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="matrix"')
    assert "<html" not in body


def test_a_run_in_progress_keeps_polling_until_it_ends(owner, db):
    run = ParityRun.objects.create(backends=["local"], requested_by="test")
    client = Client()
    client.force_login(owner)
    body = client.get(f"/parity/?run={run.pk}").content.decode()
    assert 'hx-trigger="every 2s"' in body
    assert f"0 of {len(parity.ROWS)} cells done" in body


def test_only_superusers_start_a_check(owner, superuser, django_capture_on_commit_callbacks):
    client = Client()
    client.force_login(owner)
    assert client.post("/parity/run/").status_code == 403
    assert not ParityRun.objects.exists()
    client.force_login(superuser)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/parity/run/")
    run = ParityRun.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/parity/?run={run.pk}")
    assert len(callbacks) == 1  # the task is queued on commit
    # A second check while one runs is refused with a message, not started.
    client.post("/parity/run/")
    assert ParityRun.objects.count() == 1


def test_the_page_needs_a_login(db):
    assert Client().get("/parity/").status_code == 302
