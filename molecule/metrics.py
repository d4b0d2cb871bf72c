"""Prometheus metrics, served at ``/metrics`` to a scraper holding ``MOLECULE_METRICS_TOKEN``.

What is counted where it happens: heartbeats by the web process that takes them, backend calls
(verb latency by backend) and every Celery task's duration (the sweeps are tasks) by the worker.
Under ``manage.py run`` those are several processes, so each child gets
``PROMETHEUS_MULTIPROC_DIR`` (``var/metrics``, emptied at every start) and a scrape adds up every
process's file. Outside it (tests, one-off commands) the counters live in the process.

What the fleet looks like (workspaces by state and backend, the broker's queue depth) is read at
scrape time: one GROUP BY and one broker call, whatever the fleet's size.

A scraper computes heartbeats per second as ``rate(molecule_heartbeats_total[1m])``.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Heartbeats take milliseconds, backend calls seconds, sweeps anything up to their interval.
FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

HEARTBEATS = Counter(
    "molecule_heartbeats",
    "Agent reports taken by the registry, by endpoint and answer.",
    ["endpoint", "outcome"],
)
BACKEND_CALLS = Histogram(
    "molecule_backend_call_seconds",
    "One reconcile's backend calls (stop, start, remove storage), by backend and outcome.",
    ["backend", "outcome"],
    buckets=SLOW,
)
TASKS = Histogram(
    "molecule_task_seconds",
    "Celery tasks (the sweeps, reconciles), by task name and final state.",
    ["task", "state"],
    buckets=SLOW,
)


def observe_heartbeat(endpoint: str, status: int) -> None:
    outcome = {200: "ok", 400: "bad_request", 401: "unauthorized", 409: "conflict"}
    HEARTBEATS.labels(endpoint, outcome.get(status, str(status))).inc()


def counted(endpoint: str, view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., Any]:
    """``view`` with every answer counted under ``endpoint``."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        response = view(request)
        observe_heartbeat(endpoint, response.status_code)
        return response

    return wrapper


def observe_backend_call(backend: str, outcome: str, seconds: float) -> None:
    BACKEND_CALLS.labels(backend, outcome or "error").observe(seconds)


# --- Celery tasks -------------------------------------------------------------------------------

_started: dict[str, float] = {}


def task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    began = _started.pop(task_id or "", None)
    if began is None or task is None:
        return
    seconds = time.monotonic() - began
    TASKS.labels(task.name, state or "UNKNOWN").observe(seconds)
    if ".sweeps." in task.name or task.name.endswith("_sweep"):
        log.info("task %s took %.3f s (%s)", task.name, seconds, state)


# --- read at scrape time ------------------------------------------------------------------------


class FleetCollector(Collector):
    """The fleet as the database and the broker say it is now."""

    def collect(self) -> Iterator[Metric]:
        from workspaces.models import Workspace

        workspaces = GaugeMetricFamily(
            "molecule_workspaces", "Workspaces by state and backend.", labels=["state", "backend"]
        )
        for row in Workspace.objects.order_by().values("status", "backend").annotate(n=Count("pk")):
            workspaces.add_metric([row["status"], row["backend"]], row["n"])
        yield workspaces
        depth = GaugeMetricFamily(
            "molecule_queue_depth", "Messages waiting in the broker's queue.", labels=["queue"]
        )
        queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
        if (waiting := queue_depth(queue)) is not None:
            depth.add_metric([queue], waiting)
        yield depth


def queue_depth(queue: str) -> int | None:
    """How many messages wait in ``queue``; None when the broker does not answer (the scrape
    still shows everything else)."""
    from molecule.celery import app

    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
    except Exception as error:
        log.warning("metrics: cannot read the depth of queue %s: %s", queue, error)
        return None


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in (HEARTBEATS, BACKEND_CALLS, TASKS):
            registry.register(collector)
    registry.register(FleetCollector())
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": "use GET"}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    token = settings.MOLECULE_METRICS_TOKEN
    if not token:
        return JsonResponse(
            {"error": "metrics are off: set MOLECULE_METRICS_TOKEN to serve them"}, status=404
        )
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        response = JsonResponse({"error": "a valid metrics token is required"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
