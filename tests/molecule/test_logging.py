"""Where the console's logs go: stderr, in every profile, and the web server's access log too."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import path

ROOT = Path(settings.BASE_DIR)
MESSAGE = "the console broke on purpose"


def broken(request: Any) -> Any:
    raise RuntimeError(MESSAGE)


# This module is the URL configuration of the error tests: one route that always fails.
urlpatterns = [path("broken/", broken)]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_an_unhandled_error_is_logged_to_stderr_with_its_traceback(debug, caplog, capsys):
    with override_settings(DEBUG=debug, ROOT_URLCONF=__name__):
        response = Client(raise_request_exception=False).get("/broken/")

    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.ERROR
    assert record.exc_info[0] is RuntimeError
    stderr = capsys.readouterr().err
    # Once, with the traceback down to the line that raised.
    assert stderr.count("Traceback (most recent call last)") == 1
    assert f"raise RuntimeError(MESSAGE)\nRuntimeError: {MESSAGE}" in stderr
    assert "ERROR django.request" in stderr and "Internal Server Error: /broken/" in stderr


def test_a_missing_page_is_not_logged_as_an_error(capsys):
    # 404s are in the web server's access log; the error log is for what went wrong.
    assert Client().get("/no-such-page/").status_code == 404
    assert "no-such-page" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["workspaces.dispatch", "orgs", "api", "molecule.api"])
def test_the_projects_own_loggers_write_info_to_stderr(name, capsys):
    logging.getLogger(name).info("a line from %s", name)

    assert f"INFO {name} " in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, "manage.py run exited before it served"
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    pytest.fail(f"nothing listened on 127.0.0.1:{port} in time")


def test_the_console_started_like_scripts_run_writes_its_access_log_to_stderr(tmp_path):
    # What scripts/run execs, on a data directory of its own and a free loopback port: no demo
    # org (its agents would outlive the console on purpose), one web worker.
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MOLECULE_", "CELERY_", "DATABASE_URL", "DJANGO_"))
    }
    env |= {"MOLECULE_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    command = [sys.executable, "manage.py", "run", "--no-demo", "--port", str(port)]
    command += ["--web-workers", "1", "--concurrency", "1"]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        console = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True
        )
    try:
        _wait_for_port(port, console, time.monotonic() + 90)
        login = f"http://127.0.0.1:{port}/accounts/login/"
        with urllib.request.urlopen(login, timeout=10) as answer:
            assert answer.status == 200
        deadline = time.monotonic() + 10
        line = re.compile(r'"GET /accounts/login/ HTTP/1\.1" 200 ')
        while not line.search(stderr.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert line.search(stderr.read_text()), stderr.read_text()[-3000:]
        assert not line.search(stdout.read_text())
    finally:
        # Its whole session: manage.py run, gunicorn and the Celery worker (Ctrl-C's way).
        os.killpg(console.pid, signal.SIGINT)
        try:
            console.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(console.pid, signal.SIGKILL)
            console.wait()
