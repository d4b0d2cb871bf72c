"""The console's transports: no half-written message, and a poison message is set aside.

The embedded broker never lets a worker see a half-written message; on it and on Redis, a
message that is not JSON or not a kombu message is kept aside with its reason, logged, and the
next one is read (molecule/broker.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from queue import Empty

import pytest
import redis
from kombu import Connection
from kombu.transport import filesystem

from molecule import broker
from tests.support import services

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


# --- poison messages --------------------------------------------------------------------------

ROUTED = {"delivery_tag": "t", "delivery_info": {"exchange": "jobs", "routing_key": "jobs"}}
GARBAGE = {
    "text": ("this is not json", "it is not JSON"),
    "number": ("42", "the JSON is a number, not a message"),
    "no-envelope": ('{"body": "x"}', "it has no 'properties' object"),
    "no-route": (
        json.dumps({"body": "", "properties": {"delivery_tag": "t"}}),
        "its properties carry no delivery_info with an exchange and a routing key",
    ),
    "bad-headers": (
        json.dumps({"properties": ROUTED, "headers": [1]}),
        "its 'headers' is not an object",
    ),
    "bad-body": (
        json.dumps({"body": "x", "properties": {**ROUTED, "body_encoding": "rot13"}}),
        "it cannot be read as a kombu message",
    ),
}


@pytest.mark.parametrize("case", GARBAGE, ids=list(GARBAGE))
def test_a_poison_file_is_set_aside_with_its_reason_and_the_next_message_is_read(
    tmp_path, caplog, case
):
    queue, options = folders(tmp_path)
    content, reason = GARBAGE[case][0].encode(), GARBAGE[case][1]
    (queue / "0_poison.jobs.msg").write_bytes(content)  # sorts before every real message
    with Connection("moleculefs://", transport_options=options) as connection:
        jobs = connection.SimpleQueue("jobs")
        jobs.put({"n": 1})
        message = jobs.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()

    kept = tmp_path / "poison" / "0_poison.jobs.msg"
    assert kept.read_bytes() == content
    assert kept.with_name("0_poison.jobs.msg.reason").read_text().startswith(reason)
    assert list(queue.iterdir()) == []
    [record] = [r for r in caplog.records if r.name == "molecule.broker"]
    assert record.getMessage().startswith(f"Set aside a poison message from queue 'jobs': {reason}")


def test_the_poison_folder_can_be_named(tmp_path):
    queue, options = folders(tmp_path)
    (queue / "0_poison.jobs.msg").write_bytes(b"{")
    options["poison_folder"] = str(tmp_path / "elsewhere")
    with (
        Connection("moleculefs://", transport_options=options) as connection,
        pytest.raises(Empty),
    ):
        connection.SimpleQueue("jobs").get(timeout=0.5)
    assert (tmp_path / "elsewhere" / "0_poison.jobs.msg").read_bytes() == b"{"


@pytest.fixture
def redis_url() -> Iterator[str]:
    with services.redis(services.free_port()) as url:
        yield url


def test_redis_urls_get_the_transport_that_sets_poison_aside():
    assert Connection("redis://127.0.0.1:1/0").transport_cls == "redis"
    assert type(Connection("redis://127.0.0.1:1/0").transport) is broker.RedisTransport
    assert type(Connection("rediss://127.0.0.1:1/0").transport) is broker.RedisTransport


def test_a_poison_item_in_a_redis_queue_is_set_aside_with_its_reason(redis_url, caplog):
    client = redis.Redis.from_url(redis_url)
    with Connection(redis_url) as connection:
        jobs = connection.SimpleQueue("jobs")
        client.lpush("jobs", b"this is not json", b'{"a": 1}')  # popped from the right
        jobs.put({"n": 1})
        message = jobs.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        jobs.close()

    kept = [json.loads(item) for item in client.lrange(broker.REDIS_POISON_LIST, 0, -1)]
    assert [(k["queue"], k["raw"]) for k in kept] == [
        ("jobs", '{"a": 1}'),
        ("jobs", "this is not json"),
    ]
    assert kept[1]["reason"].startswith("it is not JSON")
    assert kept[0]["reason"] == "it has no 'properties' object, so it is not a kombu message"
    logged = [r.getMessage() for r in caplog.records if r.name == "molecule.broker"]
    assert len(logged) == 2
    assert all("Kept in the Redis list molecule.poison" in line for line in logged)


def test_a_channel_closing_after_its_connection_was_released_gets_a_connection_error(redis_url):
    # What a worker does when Redis goes away: kombu's Connection.collect() lets go of the
    # transport's client, then closing the channel tries to put back its unacknowledged
    # messages. Stock kombu raised AttributeError there, and Celery stopped the whole worker
    # ("Unrecoverable error"); a connection error is caught, and the worker reconnects.
    with Connection(redis_url) as connection:
        channel = connection.default_channel
        connection.transport.client = None
        with pytest.raises(redis.exceptions.ConnectionError):
            channel._connparams()
