"""The embedded broker never lets a worker see a half-written message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kombu import Connection
from kombu.transport import filesystem

from molecule import broker


def visible_while_writing(monkeypatch, module, url: str, folder: Path) -> list[str]:
    """Send one message; return the reader-visible files that existed while it was written."""
    seen: list[str] = []
    real_dumps = module.dumps

    def spying_dumps(payload):
        # Runs while the message is being written: what would a polling reader find now?
        seen.extend(p.name for p in folder.iterdir() if p.name.endswith(".jobs.msg"))
        return real_dumps(payload)

    monkeypatch.setattr(module, "dumps", spying_dumps)
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    with Connection(url, transport_options=options) as connection:
        connection.SimpleQueue("jobs").put({"n": 1})
    return seen


def test_kombus_own_filesystem_transport_shows_a_file_before_it_is_written(monkeypatch, tmp_path):
    # Why molecule/broker.py exists: the stock transport creates the file, then writes it.
    assert visible_while_writing(monkeypatch, filesystem, "filesystem://", tmp_path) != []


def test_a_message_becomes_visible_only_once_it_is_whole(monkeypatch, tmp_path):
    assert visible_while_writing(monkeypatch, broker, "moleculefs://", tmp_path) == []
    [message] = tmp_path.glob("*.jobs.msg")
    assert json.loads(message.read_bytes())["properties"]["delivery_info"]["routing_key"] == "jobs"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("count", [50])
def test_a_reader_gets_every_message(tmp_path, count):
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}
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
