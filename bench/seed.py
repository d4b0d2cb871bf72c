"""Seeding a fleet fast: one ``INSERT … SELECT generate_series`` per table, no ORM per row.

The columns come from the models (``_meta``): a column the bench gives no expression for is
filled with the field's own default, so a field added tomorrow seeds without a change here (a
required one without a default stops the seed, naming it). Rules: bench.fleet.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED

from bench import fleet as rules
from orgs.models import Org, Team
from workspaces.bearer_secrets import hash_token
from workspaces.models import EventType, OrphanSuspect, StructureEvent, Workspace

# Event types of a fleet's everyday log, in the mix the seed writes them.
EVENT_MIX = [
    EventType.WORKSPACE_PROVISIONING,
    EventType.WORKSPACE_ONLINE,
    EventType.WORKSPACE_DEGRADED,
    EventType.WORKSPACE_ONLINE,
    EventType.WORKSPACE_OFFLINE,
    EventType.WORKSPACE_PROVISIONING,
    EventType.WORKSPACE_ONLINE,
    EventType.WORKSPACE_UPDATED,
    EventType.SECRET_SET,
    EventType.WORKSPACE_PAUSED,
]


class SeedError(Exception):
    pass


@dataclass(frozen=True)
class Seeded:
    database: str
    size: int
    orgs: int
    events: int
    seconds: float
    session_key: str


def _sql_list(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _case(expression: str, bands: list[tuple[int, str]]) -> str:
    whens = " ".join(f"WHEN {expression} < {bound} THEN '{value}'" for bound, value in bands)
    return f"CASE {whens} END"


def _insert(
    cursor: psycopg.Cursor, model: type[models.Model], exprs: dict[str, str], source: str
) -> int:
    """``INSERT INTO <model's table> (every column) SELECT <exprs> <source>``; the columns not in
    ``exprs`` get the field's default (or NULL, or now() for auto_now)."""
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        column = field.column
        if column in exprs:
            values.append(exprs.pop(column))
        elif field.db_default is not NOT_PROVIDED or (
            field.primary_key and isinstance(field, models.AutoField | models.BigAutoField)
        ):
            continue  # the database fills it
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("now()")
        elif field.has_default() or field.null or field.get_default() is not None:
            # Django's own default: the field's, else NULL, else "" for a text column.
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
        else:
            raise SeedError(
                f"{model.__name__}.{field.name} has no default and bench/seed.py gives it no "
                "value: add one to the seed."
            )
        columns.append(column)
    if exprs:
        raise SeedError(f"{model.__name__} has no column(s) {', '.join(exprs)}: update the seed.")
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} {source}"
    )
    cursor.execute(sql, params)
    return cursor.rowcount


def _seed_orgs(cursor: psycopg.Cursor, orgs: int) -> None:
    plans = [str(p) for p in Org.Plan.values]
    _insert(
        cursor,
        Org,
        {
            "slug": "'bench-' || lpad(i::text, 6, '0')",
            "name": "'Bench org ' || i",
            "plan": f"({_sql_list(plans)})[1 + mod(i, {len(plans)})]",
            "backend": _case("mod(i, 20)", rules.BACKEND_BANDS),
            "status": f"'{Org.OrgStatus.ACTIVE}'",
        },
        f"FROM generate_series(0, {orgs - 1}) AS g(i)",
    )
    cursor.execute(
        "CREATE TEMP TABLE bench_org AS SELECT substr(slug, 7)::int AS i, id, backend "
        "FROM orgs_org WHERE slug LIKE 'bench-%'"
    )
    cursor.execute("CREATE UNIQUE INDEX ON bench_org (i)")


def _seed_tokens(cursor: psycopg.Cursor, size: int, salt: str) -> None:
    # Hashed by the console's own function, so the heartbeats authenticate as agents do.
    cursor.execute("CREATE TEMP TABLE bench_token (n int PRIMARY KEY, token_hash text)")
    with cursor.copy("COPY bench_token (n, token_hash) FROM STDIN") as copy:
        for n in range(1, size + 1):
            if rules.status_of(n) in rules.LIVE:
                copy.write_row((n, hash_token(rules.token(salt, n))))


def _seed_workspaces(cursor: psycopg.Cursor, size: int, orgs: int) -> None:
    status = _case("s.r", rules.STATUS_BANDS)
    live = "s.r < 90 OR s.r IN (96, 97)"  # online, degraded, provisioning (fleet.LIVE)
    assert [rules.status_of(r) in rules.LIVE for r in range(100)] == [
        r < 90 or r in (96, 97) for r in range(100)
    ]
    lead = f"s.n - mod(s.n - 1, {rules.TEAM_SPAN})"
    same_org = f"({lead} - 1)::bigint * {orgs} / {size} = s.oi"
    _insert(
        cursor,
        Workspace,
        {
            "id": "md5('ws' || s.n)::uuid",
            "org_id": "o.id",
            "name": "'agent-' || s.n",
            "role": "(ARRAY['Lead', 'Engineer', 'Researcher', 'Reviewer'])[1 + mod(s.n, 4)]",
            "tier": "1 + mod(s.n, 3)",
            "runtime": "'langgraph'",
            "status": status,
            "parent_id": (
                f"CASE WHEN mod(s.n - 1, {rules.TEAM_SPAN}) BETWEEN 1 AND {rules.CHILDREN} "
                f"AND {same_org} THEN md5('ws' || ({lead}))::uuid END"
            ),
            "url": f"CASE WHEN {live} THEN 'http://10.0.' || mod(s.n / 250, 250) || '.' || "
            "mod(s.n, 250) || ':8000' ELSE '' END",
            "backend": "o.backend",
            "instance_id": f"CASE WHEN {live} THEN 'i-' || s.n ELSE '' END",
            "generation": "1",
            "instance_generation": "1",
            "reconciled_generation": "1",
            "token_hash": "coalesce(t.token_hash, '')",
            "status_changed_at": (
                "CASE WHEN s.r = 97 THEN now() - interval '10 seconds' "
                "ELSE now() - interval '1 hour' END"
            ),
            "last_heartbeat_at": (
                f"CASE WHEN s.r = {rules.SILENT} THEN now() - interval '1 hour' "
                f"WHEN s.r < 90 THEN now() - mod(s.n, 20) * interval '1 second' "
                "WHEN s.r IN (96, 97) THEN NULL ELSE now() - interval '1 day' END"
            ),
            "last_error_rate": "CASE WHEN s.r BETWEEN 85 AND 89 THEN 0.6 ELSE 0.01 END",
            "active_tasks": "mod(s.n, 3)",
            "uptime_seconds": "mod(s.n, 86400)",
            "current_task": (
                "CASE WHEN mod(s.n, 3) > 0 THEN 'answering ticket #' || s.n ELSE '' END"
            ),
            "agent_card": (
                "jsonb_build_object('name', 'agent-' || s.n, 'description', 'a bench agent', "
                "'skills', jsonb_build_array(jsonb_build_object('id', 'research', "
                "'name', 'Research'), jsonb_build_object('id', 'code', 'name', 'Code')))"
            ),
            "ran": "'python -m workspaces.agent'",
            "created_at": f"now() - ({size} - s.n) * interval '1 second'",
        },
        f"FROM (SELECT g AS n, mod(g, 100) AS r, (g - 1)::bigint * {orgs} / {size} AS oi "
        f"FROM generate_series(1, {size}) AS g) s JOIN bench_org o ON o.i = s.oi "
        "LEFT JOIN bench_token t ON t.n = s.n",
    )
    _insert(
        cursor,
        Team,
        {
            "org_id": "o.id",
            "lead_id": "md5('ws' || s.n)::uuid",
            "name": "'team-' || s.n",
        },
        f"FROM (SELECT g AS n, (g - 1)::bigint * {orgs} / {size} AS oi "
        f"FROM generate_series(1, {size}, {rules.TEAM_SPAN}) AS g) s "
        "JOIN bench_org o ON o.i = s.oi "
        f"WHERE s.n < {size} AND (s.n::bigint * {orgs} / {size}) = s.oi",
    )


def _seed_orphans(cursor: psycopg.Cursor, fleet: rules.Fleet) -> None:
    """The orphans the machines run (bench.fleet), each suspected since an hour ago by earlier
    runs of the orphan sweep: past its grace, so the measured run stops them."""
    _insert(
        cursor,
        OrphanSuspect,
        {
            "backend": f"'{rules.BACKEND_BANDS[0][1]}'",
            "instance_id": "'i-orphan-' || k",
            "first_seen_at": "now() - interval '1 hour'",
        },
        f"FROM generate_series(0, {fleet.orphans() - 1}) AS g(k)",
    )


def _seed_events(cursor: psycopg.Cursor, size: int, orgs: int, events: int) -> None:
    kinds = [str(k) for k in EVENT_MIX]
    _insert(
        cursor,
        StructureEvent,
        {
            "event_type": f"({_sql_list(kinds)})[1 + mod(e.g, {len(kinds)})]",
            "workspace_id": "md5('ws' || e.w)::uuid",
            "org_id": "o.id",
            "actor": "CASE WHEN mod(e.g, 3) = 0 THEN 'user:bench-admin' ELSE 'system:bench' END",
            "payload": "jsonb_build_object('reason', 'seeded by the bench', 'n', e.g)",
            "created_at": f"now() - ({events} - e.g) * interval '50 milliseconds'",
        },
        f"FROM (SELECT g, 1 + mod(g::bigint * 7919, {size}) AS w "
        f"FROM generate_series(1, {events}) AS g) e "
        f"JOIN bench_org o ON o.i = (e.w - 1)::bigint * {orgs} / {size}",
    )


def _seed_admin(cursor: psycopg.Cursor) -> str:
    """A superuser (who sees the whole fleet) and a session for it; returns the session key."""
    password = make_password(None)
    _insert(
        cursor,
        User,
        {
            "username": "'bench-admin'",
            "password": f"'{password}'",
            "is_superuser": "true",
            "is_staff": "true",
            "is_active": "true",
        },
        "",
    )
    cursor.execute("SELECT id FROM auth_user WHERE username = 'bench-admin'")
    (user_id,) = cursor.fetchone()
    user = User(pk=user_id, password=password)
    data = SessionStore().encode(
        {
            SESSION_KEY: str(user_id),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    alphabet = string.ascii_lowercase + string.digits
    key = "".join(secrets.choice(alphabet) for _ in range(32))
    cursor.execute(
        "INSERT INTO django_session (session_key, session_data, expire_date) "
        "VALUES (%s, %s, now() + %s)",
        [key, data, timedelta(days=1)],
    )
    return key


def seed(conninfo: str, database: str, *, size: int, orgs: int, events: int, salt: str) -> Seeded:
    started = time.perf_counter()
    with psycopg.connect(conninfo, dbname=database) as conn, conn.cursor() as cursor:
        # Rows are consistent by construction; skipping the foreign-key triggers per row is what
        # makes a million events take seconds. Only for this session.
        cursor.execute("SET session_replication_role = replica")
        _seed_orgs(cursor, orgs)
        _seed_tokens(cursor, size, salt)
        _seed_workspaces(cursor, size, orgs)
        _seed_events(cursor, size, orgs, events)
        _seed_orphans(cursor, rules.Fleet(size, orgs))
        session_key = _seed_admin(cursor)
        conn.commit()
    with psycopg.connect(conninfo, dbname=database, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return Seeded(database, size, orgs, events, time.perf_counter() - started, session_key)


def write_heartbeat_targets(path: Path, fleet: rules.Fleet, salt: str, limit: int) -> int:
    """``<workspace id> <token>`` per line for up to ``limit`` workspaces whose heartbeat changes
    nothing, spread over the whole fleet; the load generators read it."""
    numbers = list(fleet.heartbeat_numbers())
    step = max(1, len(numbers) // limit)
    chosen = numbers[::step][:limit]
    path.write_text("".join(f"{rules.workspace_id(n)} {rules.token(salt, n)}\n" for n in chosen))
    return len(chosen)


def seed_summary(seeded: Seeded) -> dict[str, Any]:
    return {
        "database": seeded.database,
        "workspaces": seeded.size,
        "orgs": seeded.orgs,
        "events": seeded.events,
        "seconds": round(seeded.seconds, 1),
    }
