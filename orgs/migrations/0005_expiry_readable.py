"""Every stored expiry within the calendar Python can read (orgs/models.py EXPIRY_CEILING).

A token minted with ``expires_at: 9999-12-31T23:59:59-01:00`` was stored as year 10000 in UTC;
from then on its org's token list answered 500 everywhere and the token could not be revoked.
Such rows are brought down to the ceiling (still "expires in year 9999", as meant) by an UPDATE,
which never has to read the value back, and a check constraint keeps any new one out.
"""

import datetime

from django.db import migrations, models

CEILING = datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC)


def clamp(apps, schema_editor):
    for model in ("OrgApiToken", "PartnerApiKey"):
        rows = apps.get_model("orgs", model).objects
        rows.filter(expires_at__gt=CEILING).update(expires_at=CEILING)


def readable(name):
    return models.CheckConstraint(
        condition=models.Q(expires_at__isnull=True) | models.Q(expires_at__lte=CEILING),
        name=name,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0004_org_required_env"),
    ]

    operations = [
        migrations.RunPython(clamp, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="orgapitoken", constraint=readable("org_token_expiry_readable")
        ),
        migrations.AddConstraint(
            model_name="partnerapikey", constraint=readable("partner_key_expiry_readable")
        ),
    ]
