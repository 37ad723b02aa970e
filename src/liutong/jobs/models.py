from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, BigId, UTCDateTime


class JobStatus(StrEnum):
    queued = "queued"
    #: claimed by ``locked_by`` until ``locked_until``; after that another worker may take it
    running = "running"
    done = "done"
    failed = "failed"


class Job(Base):
    """One piece of deferred work. The payload holds ids and plain values only: the handler
    reads the current rows when it runs, which may be long after (and on another machine
    than) the transaction that scheduled it."""

    __tablename__ = "jobs"
    __table_args__ = (
        # Scheduling the same logical job twice (same kind and dedupe key) is a no-op.
        UniqueConstraint("kind", "dedupe_key"),
        # Workers look for queued jobs that are due and running jobs whose lease has expired.
        Index("ix_jobs_due", "status", "run_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: jobs and outbox events are written on hot paths (every purchase), and
    # some jobs (platform housekeeping) belong to no tenant.
    tenant_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    #: attempts started so far (a claim counts, so a job that crashes its worker runs out too)
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    """Something that happened (a purchase, points earned, a tier change), written in the same
    transaction as the change itself, so an event exists exactly when the change committed."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # Only undispatched events are ever scanned; the partial index stays small however
        # long the outbox grows.
        Index(
            "ix_outbox_events_undispatched", "topic", "id",
            postgresql_where=text("dispatched_at IS NULL"), sqlite_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
