"""The structure event log is append-only: the ORM refuses, and PostgreSQL refuses too."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from workspaces.models import AppendOnlyError, EventType, StructureEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(org):
    return StructureEvent.objects.create(
        event_type=EventType.ORG_CREATED, org=org, actor="test", payload={"n": 1}
    )


def test_the_orm_refuses_to_update_an_event(event):
    event.actor = "someone else"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        StructureEvent.objects.filter(pk=event.pk).update(actor="x")
    assert StructureEvent.objects.get(pk=event.pk).actor == "test"


def test_the_orm_refuses_to_delete_an_event(event):
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        StructureEvent.objects.all().delete()
    assert StructureEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE workspaces_structureevent SET actor = 'x' WHERE id = %s",
        "DELETE FROM workspaces_structureevent WHERE id = %s",
    ],
)
def test_postgresql_refuses_raw_updates_and_deletes(event, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    assert StructureEvent.objects.get(pk=event.pk).actor == "test"


def test_appending_still_works(event):
    StructureEvent.objects.create(event_type=EventType.ORG_IMPORTED, actor="test")
    assert StructureEvent.objects.count() == 2
