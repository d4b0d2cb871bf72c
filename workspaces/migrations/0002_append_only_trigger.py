"""On PostgreSQL, refuse UPDATE and DELETE on the structure event log at the database level.

The ORM already refuses; this keeps raw SQL, other clients and future code honest too. TRUNCATE
(used by test database flushes) is a separate statement and is not affected.
"""

from __future__ import annotations

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION molecule_refuse_event_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'structure events are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER workspaces_structureevent_append_only
    BEFORE UPDATE OR DELETE ON workspaces_structureevent
    FOR EACH ROW EXECUTE FUNCTION molecule_refuse_event_change();
"""

DROP = """
DROP TRIGGER IF EXISTS workspaces_structureevent_append_only ON workspaces_structureevent;
DROP FUNCTION IF EXISTS molecule_refuse_event_change();
"""


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
