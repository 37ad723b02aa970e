"""Engine construction and the declarative base. Nothing here connects at import time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Constraint names that are stable across backends; Alembic batch mode on SQLite needs them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: 64-bit keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = metadata


def build_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    """Build the engine for ``url``.

    SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``: the
    single writer lock is taken up front, so two writers never deadlock on a lock upgrade,
    and savepoints work (the pysqlite driver's own transaction handling is switched off).
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it would cost a round trip on every transaction; stale connections are
    # recycled by age instead.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, **kwargs)


def is_postgres(bind: Any) -> bool:
    return bind.dialect.name == "postgresql"


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, stored as naive UTC on every backend.

    SQLite has no time zone type; storing naive UTC everywhere keeps comparisons and
    ordering identical on SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def insert_or_ignore(bind: Any, table: Any):
    """``INSERT … ON CONFLICT DO NOTHING`` in the dialect of ``bind`` (SQLite or PostgreSQL)."""
    if is_postgres(bind):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()
