"""What every sweep run shares: one worker at a time, its duration, one log line."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError, connection

log = logging.getLogger("workspaces.dispatch.sweeps")


@dataclass
class SweepRun:
    """One run of a sweep: what it did, for its log line and for metrics."""

    name: str
    acted: list[str] = field(default_factory=list)
    # Other figures worth a look (rows examined, tails read, …), in the log line.
    counts: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0
    skipped: bool = False  # another worker held the sweep

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


# The last run of each sweep in this process (a metrics endpoint in the worker reads it).
LAST_RUNS: dict[str, SweepRun] = {}


def lock_key(name: str) -> int:
    """The advisory lock of a sweep: a fixed number per name, the same in every process."""
    return zlib.crc32(f"molecule.sweep.{name}".encode())


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """True when this worker may run the sweep ``name`` now; False when another one runs it.

    A PostgreSQL session advisory lock, not a row lock: a sweep spans several short transactions
    and backend calls made outside any transaction. It goes with the connection if the worker
    dies. On SQLite (the embedded default) one worker runs everything, so there is nothing to
    take. A pooler in transaction mode (pgbouncer) would break session locks: use session mode.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = lock_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (taken,) = cursor.fetchone()
    try:
        yield bool(taken)
    finally:
        if taken:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                # An aborted transaction cannot run the unlock; closing the connection frees it.
                log.warning("could not release the %s sweep's lock; closing", name, exc_info=True)
                connection.close()


def run(name: str, body: Callable[[SweepRun], None]) -> SweepRun:
    """Run ``body`` unless another worker is running the same sweep; time it, log one line."""
    result = SweepRun(name)
    started = time.perf_counter()
    with exclusive(name) as mine:
        if not mine:
            result.skipped = True
            log.debug("%s sweep: another worker is running it; skipped", name)
            return result
        body(result)
    result.duration_ms = (time.perf_counter() - started) * 1000
    LAST_RUNS[name] = result
    extra = "".join(f", {key} {value}" for key, value in sorted(result.counts.items()))
    log.info("%s sweep: %d acted in %.0f ms%s", name, len(result.acted), result.duration_ms, extra)
    return result
