"""``/metrics``: Prometheus text for a scraper holding the metrics token, nothing for others."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.rows import MakeWorkspace
from workspaces import bearer_secrets
from workspaces.models import Status, Workspace

pytestmark = pytest.mark.django_db

TOKEN = "scrape-me-" + "x" * 30


@pytest.fixture
def token(settings: Any) -> str:
    settings.MOLECULE_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_until_a_token_is_configured(settings: Any) -> None:
    settings.MOLECULE_METRICS_TOKEN = ""
    response = Client().get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert "MOLECULE_METRICS_TOKEN" in response.json()["error"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_scrape_without_the_token_is_refused_and_shows_nothing(
    token: str, header: str | None, org: Any
) -> None:
    headers = {"Authorization": header} if header else {}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"molecule_" not in response.content


def test_a_console_session_is_not_a_metrics_token(token: str, superuser: Any) -> None:
    client = Client()
    client.force_login(superuser)
    response = client.get("/metrics")
    assert response.status_code == 401
    assert b"molecule_" not in response.content


def test_a_post_is_refused(token: str) -> None:
    response = Client().post("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405


def test_workspaces_are_counted_by_state_and_backend(
    token: str, recording: Any, make_workspace: MakeWorkspace, org: Any
) -> None:
    make_workspace(org, Status.ONLINE, name="a")
    make_workspace(org, Status.ONLINE, name="b")
    make_workspace(org, Status.PAUSED, name="c")
    moved = make_workspace(org, Status.ONLINE, name="d")
    Workspace.objects.filter(pk=moved.pk).update(backend="docker")
    samples = scrape()
    assert value(samples, "molecule_workspaces", state="online", backend="local") == 2
    assert value(samples, "molecule_workspaces", state="paused", backend="local") == 1
    assert value(samples, "molecule_workspaces", state="online", backend="docker") == 1
    assert value(samples, "molecule_queue_depth", queue="celery") >= 0
    assert ("molecule_queue_depth", (("queue", "celery"),)) in samples


def test_heartbeats_are_counted_by_answer(token: str, org: Any) -> None:
    secret = bearer_secrets.mint()
    workspace = Workspace.objects.create(
        org=org, name="PM", backend="local", token_hash=bearer_secrets.hash_token(secret)
    )
    before = scrape()
    client = Client()
    body = {"workspace_id": str(workspace.pk), "error_rate": 0.0}
    for bearer in (secret, secret, "forged"):
        client.post(
            "/registry/heartbeat",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {bearer}"},
        )
    after = scrape()
    name = "molecule_heartbeats_total"
    ok = dict(endpoint="heartbeat", outcome="ok")
    refused = dict(endpoint="heartbeat", outcome="unauthorized")
    assert value(after, name, **ok) - value(before, name, **ok) == 2
    assert value(after, name, **refused) - value(before, name, **refused) == 1


def test_backend_calls_and_tasks_are_timed(
    token: str, recording: Any, make_workspace: MakeWorkspace, org: Any
) -> None:
    before = scrape()
    make_workspace(org, Status.ONLINE, name="timed")
    after = scrape()
    calls = "molecule_backend_call_seconds_count"
    started = dict(backend="local", outcome="started")
    assert value(after, calls, **started) - value(before, calls, **started) == 1
    tasks = "molecule_task_seconds_count"
    reconcile = dict(task="workspaces.tasks.reconcile_workspace", state="SUCCESS")
    assert value(after, tasks, **reconcile) - value(before, tasks, **reconcile) == 1


def test_a_scrape_adds_up_every_process_of_the_console(
    token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `manage.py run` sets up: gunicorn's workers and the Celery worker are processes of
    # their own, each writing its counters into the shared directory.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "from molecule import metrics\n"
        "for _ in range({n}): metrics.observe_heartbeat('heartbeat', 200)"
    )
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scrape()
    assert value(samples, "molecule_heartbeats_total", endpoint="heartbeat", outcome="ok") == 7
