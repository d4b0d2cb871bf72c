"""The embedded broker never lets a worker see a half-written message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from kombu.transport import filesystem

from molecule import broker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _nothing_in_the_current_directory(tmp_path: Path, monkeypatch) -> Iterator[None]:
    """Each test runs in an empty directory (under pytest, otherwise the checkout) and must leave
    it empty: kombu puts whatever has no folder of its own there."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    # kombu remembers the exchanges it declared once per process, not per control folder: a
    # test's fresh folder would get no exchange table, and its messages no route.
    filesystem.Transport.global_state.clear()
    yield
    filesystem.Transport.global_state.clear()
    assert sorted(p.name for p in cwd.iterdir()) == []


def folders(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A queue folder under ``tmp_path`` and transport options that keep everything there:
    kombu's exchange table (``control_folder``) defaults to "control" in the current directory,
    the checkout under pytest."""
    queue, control = tmp_path / "queue", tmp_path / "control"
    queue.mkdir()
    control.mkdir()
    return queue, {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "control_folder": str(control),
    }


def visible_while_writing(monkeypatch, module, url: str, tmp_path: Path) -> list[str]:
    """Send one message; return the reader-visible files that existed while it was written."""
    folder, options = folders(tmp_path)
    seen: list[str] = []
    real_dumps = module.dumps

    def spying_dumps(payload):
        # Runs while the message is being written: what would a polling reader find now?
        seen.extend(p.name for p in folder.iterdir() if p.name.endswith(".jobs.msg"))
        return real_dumps(payload)

    monkeypatch.setattr(module, "dumps", spying_dumps)
    with Connection(url, transport_options=options) as connection:
        connection.SimpleQueue("jobs").put({"n": 1})
    return seen


def test_kombus_own_filesystem_transport_shows_a_file_before_it_is_written(monkeypatch, tmp_path):
    # Why molecule/broker.py exists: the stock transport creates the file, then writes it.
    assert visible_while_writing(monkeypatch, filesystem, "filesystem://", tmp_path) != []


def test_a_message_becomes_visible_only_once_it_is_whole(monkeypatch, tmp_path):
    assert visible_while_writing(monkeypatch, broker, "moleculefs://", tmp_path) == []
    [message] = (tmp_path / "queue").glob("*.jobs.msg")
    assert json.loads(message.read_bytes())["properties"]["delivery_info"]["routing_key"] == "jobs"
    assert not list((tmp_path / "queue").glob(".*.tmp"))


@pytest.mark.parametrize("count", [50])
def test_a_reader_gets_every_message(tmp_path, count):
    _, options = folders(tmp_path)
    with Connection("moleculefs://", transport_options=options) as connection:
        queue = connection.SimpleQueue("jobs")
        for n in range(count):
            queue.put({"n": n})
        received = []
        for _ in range(count):
            message = queue.get(timeout=5)
            received.append(message.payload["n"])
            message.ack()
    # Like kombu's own transport: ordered by millisecond, not strictly FIFO within one.
    assert sorted(received) == list(range(count))


def test_the_embedded_brokers_files_all_live_under_the_data_directory(tmp_path):
    # The settings as scripts/run gets them, in a fresh process on a data directory of its own.
    var = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MOLECULE_", "CELERY_", "DJANGO_"))
    }
    env |= {"MOLECULE_VAR_DIR": str(var), "PYTHONPATH": str(ROOT)}
    script = (
        "from molecule.celery import app\n"
        "with app.connection_for_write() as connection:\n"
        "    connection.SimpleQueue('jobs').put({'n': 1})\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)

    # The current directory (the fixture's) stays empty; the exchange table is under var/.
    assert (var / "broker" / "control" / "jobs.exchange").is_file()
    assert len(list((var / "broker" / "queue").glob("*.jobs.msg"))) == 1
