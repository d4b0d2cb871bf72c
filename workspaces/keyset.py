"""Keyset paging for the console's tables (docs/architecture.md §11).

A page is "the next ``size`` rows after this position in this order", never "skip N rows": the
database starts its index scan at the position, so page 2,000 of a 100,000-row fleet costs what
page 1 does. The position travels in the query string as an opaque, signed cursor; one that was
tampered with, belongs to another sort, or does not parse is a ``BadCursor`` for the caller to
answer (the pages show the first page and say so). A cursor holds only a position: the rows of
a page are always those the query lets the user see, so a cursor made on another org's page
shows nothing of that org.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet

SALT = "molecule.keyset"


class BadCursor(ValueError):
    """A cursor that this order did not make (tampered, another sort, unparseable)."""


@dataclass(frozen=True)
class Order:
    """One sort of a table: the column sorted on (never NULL) and its direction.

    The primary key breaks ties, in the same direction, so the order is total and every row is
    on exactly one page. Each order needs an index on ``(column, pk)`` to be served.
    """

    key: str
    column: str
    descending: bool = False
    kind: type = str

    def order_by(self) -> tuple[str, str]:
        sign = "-" if self.descending else ""
        return f"{sign}{self.column}", f"{sign}pk"


@dataclass
class Page:
    rows: list[Any]
    next_cursor: str | None
    is_first: bool


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _load(value: Any, kind: type) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise BadCursor("not a moment")
        return datetime.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(str(value))
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadCursor("not a number")
        return value
    if not isinstance(value, str):
        raise BadCursor("not text")
    return value


def encode(order: Order, value: Any, pk: Any) -> str:
    return signing.dumps([_dump(value), _dump(pk)], salt=f"{SALT}:{order.key}", compress=False)


def decode(order: Order, cursor: str, *, pk_kind: type) -> tuple[Any, Any]:
    try:
        value, pk = signing.loads(cursor, salt=f"{SALT}:{order.key}")
        return _load(value, order.kind), _load(pk, pk_kind)
    except BadCursor:
        raise
    except (signing.BadSignature, ValueError, TypeError) as bad:
        raise BadCursor(str(bad)) from bad


def after(rows: QuerySet, order: Order, value: Any, pk: Any) -> QuerySet:
    """The rows past (value, pk) in ``order``.

    The redundant ``column >= value`` (or ``<=``) is what lets the database start its index
    scan at the position instead of filtering every row before it.
    """
    col = order.column
    if order.descending:
        return rows.filter(Q(**{f"{col}__lte": value}), Q(**{f"{col}__lt": value}) | Q(pk__lt=pk))
    return rows.filter(Q(**{f"{col}__gte": value}), Q(**{f"{col}__gt": value}) | Q(pk__gt=pk))


def page(
    rows: QuerySet, order: Order, cursor: str | None, *, size: int, pk_kind: type = uuid.UUID
) -> Page:
    """One page of ``rows`` in ``order`` after ``cursor`` (the first page without one).

    Raises ``BadCursor``. One query: ``size + 1`` rows are read to know whether a next page
    exists.
    """
    if cursor:
        value, pk = decode(order, cursor, pk_kind=pk_kind)
        rows = after(rows, order, value, pk)
    found = list(rows.order_by(*order.order_by())[: size + 1])
    more = len(found) > size
    found = found[:size]
    next_cursor = None
    if more:
        last = found[-1]
        next_cursor = encode(order, getattr(last, order.column), last.pk)
    return Page(rows=found, next_cursor=next_cursor, is_first=not cursor)
