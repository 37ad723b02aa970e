"""The composition root: every entry point (web, CLI, worker, tests) builds its runtime here.

A ``Runtime`` owns the settings, the engine, the session factory and the vault; it is built at
start-up, never at import. ``Runtime.transaction()`` is the unit of work: one database
transaction per request, command or job, committed only by this outermost layer. Services
receive the ``Tx`` and flush, never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from liutong.config import Settings
from liutong.db import build_engine
from liutong.errors import LiutongError
from liutong.kit import idempotency
from liutong.kit.driver_sql import DriverSQL
from liutong.kit.crypto import Vault, load_master_secret

log = logging.getLogger("liutong")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Tx:
    """One unit of work: the session plus what services need from the runtime."""

    session: Session
    runtime: Runtime
    claims: list[idempotency.Claim] = field(default_factory=list)
    _driver: DriverSQL | None = field(default=None, repr=False)

    @property
    def vault(self) -> Vault:
        return self.runtime.vault

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def tz(self) -> ZoneInfo:
        return self.runtime.tz

    def now(self) -> datetime:
        return self.runtime.clock()

    def sql(self) -> DriverSQL:
        """Driver-level SQL on the transaction's own connection (the posting hot path).

        Statements run here bypass the session's autoflush, so pending ORM changes are
        flushed first and the two views of the transaction never disagree.
        """
        session = self.session
        if session.new or session.dirty or session.deleted:
            session.flush()
        if self._driver is None:
            self._driver = DriverSQL(session.connection())
        return self._driver


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: Callable[[], Session]
    vault: Vault
    clock: Callable[[], datetime] = utc_now
    #: Parsed forms of rows that never change once written (published program versions),
    #: kept for the life of the process.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        session = self.session_factory()
        tx = Tx(session=session, runtime=self)
        try:
            yield tx
            if tx.claims:
                raise RuntimeError(f"idempotency keys claimed but never completed: {tx.claims}")
            session.commit()
        except LiutongError as err:
            session.rollback()
            if err.sticky and tx.claims:
                self._remember_failures(tx.claims, err)
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _remember_failures(self, claims: list[idempotency.Claim], err: LiutongError) -> None:
        with self.transaction() as tx:
            for claim in claims:
                idempotency.remember_failure(tx, claim, err)

    def dispose(self) -> None:
        self.engine.dispose()


def bootstrap(settings: Settings | None = None, *, engine: Engine | None = None,
              session_factory: Callable[[], Session] | None = None) -> Runtime:
    settings = settings or Settings()
    if engine is None:
        url = settings.resolved_database_url()
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = build_engine(url, pool_size=settings.db_pool_size)
    factory = session_factory or sessionmaker(bind=engine, expire_on_commit=False)
    vault = Vault(load_master_secret(settings.secret_key, settings.data_dir))
    return Runtime(settings=settings, engine=engine, session_factory=factory, vault=vault)
