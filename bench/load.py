"""Heartbeat load: wrk (or, without wrk, a Python load generator) against the web server, and
pgbench's single-row UPDATE against the same database as the baseline.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import PG_BIN_CANDIDATES

CONNECTIONS = 16
PGBENCH_CLIENTS = 4

# Each wrk thread walks the targets from its own starting point; one request is one heartbeat of
# the Molecule runtime's full shape (uptime > 0, nothing that moves the state machine).
WRK_SCRIPT = r"""
local ids, tokens, count, at = {}, {}, 0, 0
function init(args)
  for line in io.lines(args[1]) do
    local id, token = line:match("(%S+) (%S+)")
    count = count + 1
    ids[count], tokens[count] = id, token
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  at = math.random(count)
end
function request()
  at = at % count + 1
  local body = '{"workspace_id":"' .. ids[at] .. '","error_rate":0.01,"sample_error":"",'
    .. '"active_tasks":1,"uptime_seconds":' .. (3600 + at) .. ',"current_task":"bench"}'
  return wrk.format("POST", "/registry/heartbeat",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[at]}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "status_errors": %d, '
    .. '"socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    tool: str
    per_second: float
    p99_ms: float
    requests: int
    errors: int


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, targets: Path, seconds: float, folder: Path) -> Load:
    script = folder / "heartbeat.lua"
    script.write_text(WRK_SCRIPT)
    result = subprocess.run(
        [
            "wrk",
            "--threads",
            "2",
            "--connections",
            str(CONNECTIONS),
            "--duration",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--script",
            str(script),
            url,
            "--",
            str(targets),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {result.stdout}{result.stderr}")
    data = json.loads(line[4:])
    return Load(
        "wrk",
        data["requests"] / data["seconds"],
        data["p99_us"] / 1000,
        data["requests"],
        data["status_errors"] + data["socket_errors"],
    )


def run_python(host: str, port: int, targets: Path, seconds: float) -> Load:
    """The fallback when wrk is missing: 16 threads, one keep-alive connection each."""
    lines = [line.split() for line in targets.read_text().splitlines()]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine: list[float] = []
        at = offset
        while time.monotonic() < stop_at:
            workspace, token = lines[at % len(lines)]
            at += CONNECTIONS
            body = json.dumps(
                {
                    "workspace_id": workspace,
                    "error_rate": 0.01,
                    "active_tasks": 1,
                    "uptime_seconds": 3600 + at,
                    "current_task": "bench",
                }
            )
            started = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    "/registry/heartbeat",
                    body,
                    {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                )
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            mine.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - started
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else 0.0
    tool = "python (wrk not installed)"
    return Load(tool, len(latencies) / elapsed, p99 * 1000, len(latencies), errors[0])


def pgbench_binary() -> str:
    for folder in PG_BIN_CANDIDATES:
        if (folder / "pgbench").exists():
            return str(folder / "pgbench")
    found = shutil.which("pgbench")
    if found is None:
        raise RuntimeError("pgbench was not found (it comes with PostgreSQL's server package)")
    return found


def run_pgbench(
    *, host: str, port: int, user: str, database: str, size: int, seconds: float, folder: Path
) -> Load:
    """4 clients, each a single-row UPDATE of a random workspace's heartbeat columns by id."""
    script = folder / "heartbeat.sql"
    script.write_text(
        f"\\set n random(1, {size})\n"
        "UPDATE workspaces_workspace SET last_heartbeat_at = now(), last_error_rate = 0.01, "
        "active_tasks = 1, uptime_seconds = :n WHERE id = md5('ws' || :n)::uuid;\n"
    )
    result = subprocess.run(
        [
            pgbench_binary(),
            "--no-vacuum",
            "--host",
            host,
            "--port",
            str(port),
            "--username",
            user,
            "--client",
            str(PGBENCH_CLIENTS),
            "--jobs",
            "2",
            "--time",
            str(max(1, round(seconds))),
            "--file",
            str(script),
            "--report-per-command",
            database,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
    if match is None or done is None:
        raise RuntimeError(f"pgbench failed: {result.stdout}{result.stderr}")
    return Load(
        "pgbench",
        float(match.group(1)),
        float(latency.group(1)) if latency else 0.0,
        int(done.group(1)),
        int(failed.group(1)) if failed else 0,
    )
