"""Alembic environment. ``liutong migrate`` and the tests pass their own connection."""

from __future__ import annotations

from alembic import context

import liutong.models  # noqa: F401  (registers every table on the metadata)
from liutong.config import Settings
from liutong.db import build_engine, metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic` command line during development
    url = config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url()
    engine = build_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
