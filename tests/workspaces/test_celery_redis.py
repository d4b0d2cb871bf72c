"""The distributed path: a verb's backend call travels through a real Redis broker to a worker.

Everywhere else in the suite Celery is eager (the task runs inline when the verb's transaction
commits). Here a real ``redis-server`` is the broker and a real Celery worker, running in this
process on its own thread, consumes the task; the real local backend starts the agent, which
registers with the live server. The test then checks the task really came from Redis: the worker
ran it on another thread, not eagerly, and Redis saw the message being pushed.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from typing import Any

import kombu.pools
import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun, task_prerun
from django.db import connections

from molecule.celery import app as celery_app
from tests.support import services
from tests.support.procs import agent_pids
from tests.support.waiting import wait_for
from workspaces import dispatch
from workspaces.models import Status, Workspace

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server is not installed (CI installs it: apt-get install redis-server)",
    ),
]

RECONCILE = "workspaces.tasks.reconcile_workspace"


def fresh(workspace: Workspace) -> Workspace:
    return Workspace.objects.get(pk=workspace.pk)


def _drop_broker_pools() -> None:
    # Celery caches its connection and producer pools (kombu keeps them in a registry keyed by
    # broker address), and even eager mode acquires a producer. Start afresh on each switch so
    # no pool made for the other broker, or closed with it, is handed out again.
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_url() -> Iterator[str]:
    with services.redis(services.free_port()) as url:
        yield url


@pytest.fixture
def ran_tasks() -> Iterator[list[dict[str, Any]]]:
    """What the worker saw of every task it ran: its thread, eagerness and delivery."""
    seen: list[dict[str, Any]] = []

    def record(sender: Any = None, task: Any = None, **kwargs: Any) -> None:
        seen.append(
            {
                "name": task.name,
                "thread": threading.get_ident(),
                "is_eager": task.request.is_eager,
                "delivery_info": dict(task.request.delivery_info or {}),
            }
        )

    def close_db(**kwargs: Any) -> None:
        # The worker thread's own connections, so none outlives the test database.
        connections.close_all()

    task_prerun.connect(record, weak=False)
    task_postrun.connect(close_db, weak=False)
    yield seen
    task_prerun.disconnect(record)
    task_postrun.disconnect(close_db)


@pytest.fixture
def redis_worker(redis_url: str, ran_tasks: list) -> Iterator[Any]:
    """The app pointed at Redis, not eager, with a worker consuming; restored afterwards."""
    conf = celery_app.conf
    keys = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {key: conf[key] for key in keys}
    # The filesystem transport's folder options mean nothing to Redis.
    conf.update(broker_url=redis_url, task_always_eager=False, broker_transport_options={})
    _drop_broker_pools()
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30
        ) as worker:
            yield worker
    finally:
        conf.update(saved)
        _drop_broker_pools()


def test_provision_goes_through_redis_and_a_worker(
    local_fleet, org, redis_worker, redis_url, ran_tasks
):
    workspace = dispatch.create_workspace(org=org, name="PM", actor="test")

    wait_for(lambda: fresh(workspace).status == Status.ONLINE, timeout=30)

    (task,) = [seen for seen in ran_tasks if seen["name"] == RECONCILE]
    assert task["is_eager"] is False
    assert task["thread"] != threading.get_ident()
    assert task["delivery_info"]["routing_key"] == "celery"
    stats = redis.Redis.from_url(redis_url).info("commandstats")
    # kombu's Redis transport publishes with LPUSH and the worker fetches with BRPOP.
    assert stats["cmdstat_lpush"]["calls"] >= 1
    assert stats["cmdstat_brpop"]["calls"] >= 1
    assert agent_pids(local_fleet, workspace.pk) == [fresh(workspace).backend_state["pid"]]
