"""The database cache's table (settings CACHES), so `migrate` is all any deployment runs.

The cache counts failed logins (orgs/login_throttle.py) for every web process and machine at
once. ``createcachetable`` makes the table of each database cache configured, and nothing when
CACHE_URL names another kind of cache (or the table is already there).
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0005_expiry_readable"),
    ]

    operations = [
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
