from __future__ import annotations

import pytest
from django.db import connection


@pytest.mark.django_db
def test_the_suite_runs_on_postgresql(pg_server):
    assert connection.vendor == "postgresql"
    assert connection.settings_dict["PORT"] == str(pg_server.port)
