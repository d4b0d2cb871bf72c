"""The printed table: one line per row of issue 11's table, its figure next to its baseline
from the same run, the goal, and OK or MISS (FAILED when the row could not be measured).

Every line reads ``<row> | <figure> | baseline: <baseline> | goal: <goal> | <verdict>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.load import CONNECTIONS, PGBENCH_CLIENTS, Load
from bench.pages import Dashboard

HEARTBEAT_RATIO = 0.5
HEARTBEAT_P99_MS = 50
PAGE_SECONDS = 0.1
ADMIN_QUERIES = 10
ADMIN_SECONDS = 0.15
LIVENESS_SECONDS = 1.0
SWEEP_SECONDS = 2.0
IMPORT_WANTED = 1000
IMPORT_SECONDS = 5.0


@dataclass(frozen=True)
class Row:
    label: str
    figure: str
    baseline: str
    goal: str
    verdict: str  # OK, MISS or FAILED

    def line(self) -> str:
        return (
            f"{self.label:<26} | {self.figure} | baseline: {self.baseline} | goal: {self.goal} "
            f"| {self.verdict}"
        )


def n(value: float) -> str:
    return f"{value:,.0f}"


def mb(count: int) -> str:
    return f"{count / 1e6:,.2f} MB" if count >= 10_000 else f"{count / 1e3:,.1f} kB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def failed(label: str, why: str) -> Row:
    return Row(label, f"not measured: {why}", "-", "-", "FAILED")


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISS"


def heartbeats(http: Load, pgbench: Load) -> Row:
    ratio = http.per_second / pgbench.per_second if pgbench.per_second else 0.0
    errors = f", {n(http.errors)} errors" if http.errors else ""
    return Row(
        "heartbeats/s",
        f"HTTP {n(http.per_second)}/s ({http.tool}, {CONNECTIONS} connections{errors}) "
        f"p99 {http.p99_ms:,.0f} ms ratio {ratio:.3f}x",
        f"pgbench {n(pgbench.per_second)}/s (single-row UPDATE, {PGBENCH_CLIENTS} clients)",
        f">= {HEARTBEAT_RATIO}x, p99 < {HEARTBEAT_P99_MS} ms",
        verdict(
            ratio >= HEARTBEAT_RATIO
            and http.p99_ms < HEARTBEAT_P99_MS
            and http.errors <= http.requests // 100
        ),
    )


def _page(d: Dashboard) -> str:
    return (
        f"{mb(d.page_plain.bytes)} {ms(d.page_plain.seconds)}, gzip {mb(d.page_gzip.bytes)} "
        f"{ms(d.page_gzip.seconds)}"
    )


def _poll(d: Dashboard) -> str:
    again = "; again " + mb(d.repoll_bytes) if d.polls else ""
    return f"{mb(d.poll_bytes)} {ms(d.poll_seconds)}{again} ({len(d.polls)} polled)"


def dashboards(found: list[Dashboard]) -> list[Row]:
    """One row per size above the smallest, for the page and for its polled partials, each
    against the smallest size's."""
    base = found[0]
    rows = []
    for d in found[1:]:
        if not (d.ok and base.ok):
            rows.append(failed(f"dashboard {n(d.size)}", "a fetch did not answer 200"))
            continue
        same = d.page_plain.bytes <= base.page_plain.bytes * 1.1 + 2048
        fast = (
            max(d.page_plain.seconds, d.page_gzip.seconds, base.page_plain.seconds) < PAGE_SECONDS
        )
        rows.append(
            Row(
                f"dashboard {n(d.size)}",
                _page(d),
                f"at {n(base.size)}: {_page(base)}",
                f"same bytes as at {n(base.size)}, < {ms(PAGE_SECONDS)}",
                verdict(same and fast),
            )
        )
        same = d.poll_bytes <= base.poll_bytes * 1.1 + 2048
        fast = max(d.poll_seconds, base.poll_seconds) < PAGE_SECONDS
        rows.append(
            Row(
                f"dashboard poll {n(d.size)}",
                _poll(d),
                f"at {n(base.size)}: {_poll(base)}",
                f"same bytes as at {n(base.size)}, < {ms(PAGE_SECONDS)}",
                verdict(same and fast),
            )
        )
    return rows


def admin(measured: dict[str, Any], base: dict[str, Any], size: int, base_size: int) -> list[Row]:
    rows = []
    for name, label in (("workspace", "admin workspaces"), ("structureevent", "admin events")):
        if "error" in measured or "error" in base:
            rows.append(failed(label, (measured.get("error") or base.get("error"))[-300:]))
            continue
        m, b = measured[name], base[name]
        if m["status"] != 200 or b["status"] != 200:
            rows.append(failed(label, f"status {m['status']} / {b['status']}"))
            continue
        rows.append(
            Row(
                f"{label} {n(size)}",
                f"{m['queries']} queries {ms(m['seconds'])}",
                f"at {n(base_size)}: {b['queries']} queries {ms(b['seconds'])}",
                f"<= {ADMIN_QUERIES} queries, < {ms(ADMIN_SECONDS)}",
                verdict(m["queries"] <= ADMIN_QUERIES and m["seconds"] < ADMIN_SECONDS),
            )
        )
    return rows


def _sweep(data: dict[str, Any]) -> str:
    return (
        f"{ms(data['seconds'])}, {n(data['statements'])} statements, "
        f"{data['peak_mib']:,.1f} MiB peak, {n(data['rows'])} rows acted on"
    )


def sweeps(measured: dict[str, Any], base: dict[str, Any], size: int, base_size: int) -> list[Row]:
    rows = []
    for name in ("liveness", "provision_timeout", "health", "orphan"):
        label = f"sweep {name.replace('_', '-')} {n(size)}"
        m, b = measured.get(name, measured), base.get(name, base)
        if "error" in m or "error" in b:
            rows.append(failed(label, str(m.get("error") or b.get("error"))[-300:]))
            continue
        limit = LIVENESS_SECONDS if name == "liveness" else SWEEP_SECONDS
        constant = m["statements"] <= 2 * b["statements"] + 5
        bounded = m["peak_mib"] <= 2 * b["peak_mib"] + 16
        if name == "liveness":
            goal = f"< {ms(limit)}, statements independent of fleet size"
            ok = m["seconds"] < limit and constant
        else:
            goal = f"< {ms(limit)}, memory independent of fleet size"
            ok = m["seconds"] < limit and bounded
        rows.append(Row(label, _sweep(m), f"at {n(base_size)}: {_sweep(b)}", goal, verdict(ok)))
    return rows


def org_import(data: dict[str, Any]) -> Row:
    if "error" in data:
        return failed("org import", data["error"][-300:])
    m, b = data["measured"], data["baseline"]
    capped = f" (the cap is {data['cap']})" if data["cap"] and data["cap"] < data["wanted"] else ""
    return Row(
        "org import",
        f"{n(m['workspaces'])} workspaces{capped} {ms(m['seconds'])}, {n(m['queries'])} queries, "
        f"{n(m['enqueued'])} messages enqueued (broker {data['broker']})",
        f"{n(b['workspaces'])} workspaces {ms(b['seconds'])}, {n(b['queries'])} queries",
        f"{n(IMPORT_WANTED)} in < {ms(IMPORT_SECONDS)}",
        verdict(m["workspaces"] >= IMPORT_WANTED and m["seconds"] < IMPORT_SECONDS),
    )
