"""Plain SQL run on the driver cursor of the transaction's own connection.

Only the ledger's posting path uses it. There, SQLAlchemy's per-statement work (parameter
processing, result set-up, events: about 20 µs a statement) was most of the cost of an entry,
more than SQLite itself. The statements stay inside the unit of work's transaction (same
connection), so commit and rollback are still owned by ``Runtime.transaction``.

SQL is written once with ``:name`` parameters, which SQLite understands; for PostgreSQL it is
rewritten to ``%(name)s`` once and cached. Datetimes are bound exactly as SQLAlchemy stores
them (naive UTC; on SQLite the fixed-width text ``YYYY-MM-DD HH:MM:SS.ffffff``), so rows
written here and rows written through SQLAlchemy compare and sort alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class DriverSQL:
    def __init__(self, conn: Connection) -> None:
        self.postgres = conn.dialect.name == "postgresql"
        self._cursor = conn.connection.driver_connection.cursor()
        #: psycopg prepares a statement on the server from its sixth execution on, and PostgreSQL
        #: then settles on a generic plan for it. ``None`` keeps that (the hot path's statements
        #: plan the same whatever their values); False never prepares, for statements whose plan
        #: should depend on their values, such as the scheduled batch work's ranges of members.
        self.prepare: bool | None = None

    def _sql(self, sql: str) -> str:
        return _pyformat(sql) if self.postgres else sql

    def time(self, value: datetime | None) -> Any:
        if value is None:
            return None
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive if self.postgres else naive.strftime("%Y-%m-%d %H:%M:%S.%f")

    def json(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def _execute(self, sql: str, params: dict[str, Any] | None) -> None:
        if self.postgres and self.prepare is not None:
            self._cursor.execute(self._sql(sql), params or {}, prepare=self.prepare)
        else:
            self._cursor.execute(self._sql(sql), params or {})

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        self._execute(sql, params)
        return self._cursor.fetchall()

    def one(self, sql: str, params: dict[str, Any] | None = None) -> tuple | None:
        self._execute(sql, params)
        return self._cursor.fetchone()

    def run(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._execute(sql, params)

    def many(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        if len(rows) == 1:  # psycopg batches even one row through pipeline mode, at a cost
            self._cursor.execute(self._sql(sql), rows[0])
        elif rows:
            self._cursor.executemany(self._sql(sql), rows)

    @staticmethod
    def in_list(name: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
        """``(:name0, :name1, …)`` and its parameters, for a short IN list."""
        params = {f"{name}{i}": v for i, v in enumerate(values)}
        return "(" + ", ".join(f":{k}" for k in params) + ")", params
