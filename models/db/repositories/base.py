"""What every repository shares: one session, and keyset paging with one contract.

A listing is ordered by a keyset, a tuple of columns that identifies a row (e.g. creation time
and id). A page fetches `limit + 1` rows after a key; the extra row only says that another page
exists, and the key of the page's last item is where the next page starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, Select, TypeDecorator, and_, or_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session

Item = TypeVar("Item")

Key = tuple[Any, ...]
"""The values of a keyset for one row, in the keyset's column order."""


@dataclass(frozen=True)
class Keyset:
    """The sort key of a listing: mapped columns, all ascending or all descending."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False

    @classmethod
    def of(cls, *columns: InstrumentedAttribute[Any], descending: bool = False) -> Keyset:
        return cls(columns, descending)

    @property
    def kinds(self) -> tuple[type[Any], ...]:
        """The Python type of each column's values (what a cursor must decode to)."""
        types = (column.type for column in self.columns)
        return tuple(
            (kind.impl_instance if isinstance(kind, TypeDecorator) else kind).python_type
            for kind in types
        )

    def order_by(self) -> list[ColumnElement[Any]]:
        return [column.desc() if self.descending else column.asc() for column in self.columns]

    def after(self, key: Key) -> ColumnElement[bool]:
        """Rows strictly after `key` in this order (a row-value comparison spelled out)."""
        if len(key) != len(self.columns):
            raise ValueError(f"a key of this keyset has {len(self.columns)} values, not {len(key)}")
        clauses = []
        for position, (column, value) in enumerate(zip(self.columns, key, strict=True)):
            beyond = column < value if self.descending else column > value
            equal = [c == v for c, v in zip(self.columns[:position], key[:position], strict=True)]
            clauses.append(and_(*equal, beyond))
        return or_(*clauses)

    def key_of(self, item: Any) -> Key:
        """The key of a fetched item: an entity, or a row holding the entities of the columns."""
        return tuple(_value(item, column) for column in self.columns)


def _value(item: Any, column: InstrumentedAttribute[Any]) -> Any:
    owner = column.parent.class_
    if isinstance(item, owner):
        return getattr(item, column.key)
    for element in item:
        if isinstance(element, owner):
            return getattr(element, column.key)
    raise TypeError(f"no {owner.__name__} in the fetched row to read {column.key} from")


@dataclass(frozen=True)
class KeysetPage(Generic[Item]):
    """Up to `limit` items and the key after which the next page starts (None on the last)."""

    items: list[Item]
    next_key: Key | None

    @classmethod
    def of(cls, rows: Sequence[Item], limit: int, key: Callable[[Item], Key]) -> KeysetPage[Item]:
        """A page from up to `limit + 1` rows: the extra row only says another page exists."""
        items = list(rows[:limit])
        more = len(rows) > limit and bool(items)
        return cls(items, key(items[-1]) if more else None)


class Repository:
    """SQL for one kind of row over a session; the caller's unit of work commits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_unless_taken(self, table: type[Any], row: Mapping[str, Any]) -> bool:
        """Insert `row` into `table` unless its unique key is taken; True when inserted.

        `INSERT … ON CONFLICT DO NOTHING` (PostgreSQL and SQLite alike) waits for a concurrent
        transaction writing the same key, then skips the row: the transaction stays usable,
        unlike after a failed plain INSERT, so the caller can read what the other one wrote.
        """
        result = self.session.execute(self._insert(table).values(dict(row)))
        return bool(cast(CursorResult[Any], result).rowcount)

    def insert_many_unless_taken(self, table: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows`, skipping each whose unique key is taken: the ORM's bulk insert, which
        leaves out a None value (the column's default applies) and so starts a new statement
        wherever the columns given change from one row to the next."""
        if rows:
            self.session.execute(self._insert(table), [dict(row) for row in rows])

    def insert_rows_unless_taken(self, table: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows`, each giving the same columns, in one executemany whatever their None
        values (written as NULL), skipping each whose unique key is taken. For batches of
        rows built alike (the serving log's), where `insert_many_unless_taken` would send one
        statement per row when rows with and without None values alternate."""
        if not rows:
            return
        columns = rows[0].keys()
        if any(row.keys() != columns for row in rows):
            raise ValueError(f"every row must give the same columns: {sorted(columns)}")
        self.session.execute(self._insert(table.__table__), [dict(row) for row in rows])

    def _insert(self, table: type[Any]) -> Any:
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        return insert(table).on_conflict_do_nothing()

    def page(
        self, query: Select[*tuple[Any, ...]], keyset: Keyset, *, after: Key | None, limit: int
    ) -> KeysetPage[Any]:
        """One page of `query` in `keyset` order after `after`: entities, or tuples of them."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = query.order_by(*keyset.order_by()).limit(limit + 1)
        if after is not None:
            query = query.where(keyset.after(after))
        if len(query.column_descriptions) == 1:
            rows: list[Any] = list(self.session.scalars(query))
        else:
            rows = [tuple(row) for row in self.session.execute(query)]
        return KeysetPage.of(rows, limit, keyset.key_of)
