"""Two workers running the same sweep at once: the second one does nothing.

Each sweep runs in a thread of its own, with its own database connection, against committed
rows; the first is held inside its transaction while the second runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from orgs.models import Org
from tests.support.sweep_fleet import rows, watching
from workspaces import dispatch
from workspaces.dispatch.sweeps import liveness, runs
from workspaces.models import Status, StructureEvent, Workspace

threaded = pytest.mark.django_db(transaction=True)


class Held:
    """Holds the first sweep that reaches the set-based step until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        real = liveness.offline_then_restart_all

        def slow(*args: Any, **kwargs: Any) -> None:
            if args[0]:
                self.entered.set()
                assert self.release.wait(20), "the test never released the first sweep"
            real(*args, **kwargs)

        monkeypatch.setattr(liveness, "offline_then_restart_all", slow)


def _in_thread(results: dict[str, list[str]], key: str, sweep: Callable[[], list[str]]) -> Any:
    def run() -> None:
        try:
            results[key] = sweep()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _race(org: Org, recording: dict[str, Any], held: Held) -> tuple[list[Workspace], dict]:
    watching()
    silent = rows(org, recording, "silent", 10, silent=True)
    results: dict[str, list[str]] = {}
    first = _in_thread(results, "first", dispatch.liveness_sweep)
    try:
        assert held.entered.wait(20)
        second = _in_thread(results, "second", dispatch.liveness_sweep)
        second.join(20)
        assert "second" in results, "the second sweep waited for the first one"
    finally:
        held.release.set()
        first.join(20)
    return silent, results


def _acted_once(silent: list[Workspace]) -> None:
    for workspace in silent:
        assert StructureEvent.objects.filter(workspace=workspace).count() == 2
    assert set(Workspace.objects.values_list("status", "generation")) == {(Status.PROVISIONING, 5)}


@threaded
def test_two_liveness_sweeps_at_once_act_once(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="workspaces.dispatch.sweeps"):
        silent, results = _race(org, recording, Held(monkeypatch))
    assert results["second"] == []
    assert "liveness sweep: another worker is running it; skipped" in caplog.text
    assert sorted(results["first"]) == sorted(str(w.pk) for w in silent)
    _acted_once(silent)


@threaded
def test_rows_another_sweep_holds_are_skipped_even_without_the_sweep_lock(
    org: Org,
    recording: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The lock is what keeps a second worker from doing the work twice; the rows' own locks
    # (FOR UPDATE SKIP LOCKED) are what keep it from acting twice when something goes around it.
    @contextlib.contextmanager
    def always(name: str) -> Iterator[bool]:
        yield True

    monkeypatch.setattr(runs, "exclusive", always)
    with caplog.at_level(logging.DEBUG, logger="workspaces.dispatch.sweeps"):
        silent, results = _race(org, recording, Held(monkeypatch))
    assert results["second"] == []
    assert "skipped" not in caplog.text
    assert sorted(results["first"]) == sorted(str(w.pk) for w in silent)
    _acted_once(silent)
