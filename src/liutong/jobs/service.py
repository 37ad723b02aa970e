"""Deferred jobs and the transactional outbox.

Scheduling is part of the caller's unit of work: ``enqueue`` and ``emit`` only insert a row in
the caller's transaction, so a job or an event exists exactly when the change that caused it
committed — no journey for a purchase that rolled back, no purchase whose journey was lost.

Workers (``liutong worker`` on any number of machines, or the thread inside ``liutong serve``)
call ``dispatch_outbox`` and ``run_due``. A claim is a short transaction of its own, committed
before the work starts:

* on PostgreSQL with ``SELECT … FOR UPDATE SKIP LOCKED``: concurrent workers each take other
  rows and never wait for one another;
* on SQLite every transaction takes the single write lock up front (``BEGIN IMMEDIATE``),
  which serialises claims.

A claimed job carries a lease (``locked_until``). A worker that dies in the middle of a job
leaves it ``running`` until the lease expires; then any worker takes it again.

Delivery is **at least once**. A handler runs in its own transaction together with the update
that marks its job done, and that update only succeeds for the claim that is still current: a
worker whose lease was taken over rolls its work back instead. So a handler's database writes
commit once; whatever it does outside the database (an HTTP call, an SMS) can happen again
after a crash or a lease that ran out. Handlers and subscribers must be idempotent.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from liutong.db import insert_or_ignore
from liutong.errors import LiutongError
from liutong.jobs.models import Job, JobStatus, OutboxEvent

if TYPE_CHECKING:
    from liutong.bootstrap import Runtime, Tx

log = logging.getLogger("liutong.jobs")

#: How long a claim holds a job. A handler that may run longer must be split into smaller jobs:
#: past its lease another worker takes the job, and this worker's result is rolled back.
LEASE = timedelta(minutes=5)
#: Retry n waits BACKOFF_BASE × 2^(n-1), at most BACKOFF_CAP.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)

Handler = Callable[["Tx", dict[str, Any]], None]


@dataclass(frozen=True)
class Event:
    """An outbox event as subscribers see it."""

    id: int
    tenant_id: int
    topic: str
    payload: dict[str, Any]
    created_at: datetime


Subscriber = Callable[["Tx", Event], None]
Scheduler = Callable[["Tx"], int]

_HANDLERS: dict[str, Handler] = {}
_SUBSCRIBERS: dict[str, list[Subscriber]] = {}
_SCHEDULERS: list[Scheduler] = []

_jobs = Job.__table__
_events = OutboxEvent.__table__


# --- registration ----------------------------------------------------------------------------


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``fn(tx, payload)`` as the handler of jobs of ``kind``.

    The handler runs in its own unit of work; raising anything rolls its writes back and the
    job is retried later. It must be idempotent: the same job can run again after a worker
    crashed or its lease ran out (see the module docstring). The payload carries ids, so the
    handler reads the rows as they are now, not as they were when the job was scheduled.

    A worker only claims jobs whose kind has a handler in its process, so a worker that does
    not know a kind (an older version during a rolling deploy) leaves those jobs to others.
    """

    def register(fn: Handler) -> Handler:
        if _HANDLERS.get(kind, fn) is not fn:
            raise TypeError(f"a handler for job kind {kind!r} is already registered")
        _HANDLERS[kind] = fn
        return fn

    return register


def subscriber(topic: str) -> Callable[[Subscriber], Subscriber]:
    """Register ``fn(tx, event)`` to receive every outbox event of ``topic``, in id order.

    Subscribers run inside the dispatch transaction: their writes (typically ``enqueue`` of
    the job that does the slow part — a webhook, a message) commit together with the mark
    that the event was dispatched. Events of a topic nobody subscribes to in this process stay
    in the outbox for a process that does.
    """

    def register(fn: Subscriber) -> Subscriber:
        listeners = _SUBSCRIBERS.setdefault(topic, [])
        if fn not in listeners:
            listeners.append(fn)
        return fn

    return register


def scheduler(fn: Scheduler) -> Scheduler:
    """Register ``fn(tx)``, which makes sure recurring jobs (the nightly points runs) are
    scheduled, and returns how many it scheduled.

    Workers call every scheduler when they start and then periodically (``run_schedulers``), so
    a scheduler must be idempotent: it enqueues with dedupe keys, and two workers or two
    start-ups schedule each run once.
    """
    if fn not in _SCHEDULERS:
        _SCHEDULERS.append(fn)
    return fn


def run_schedulers(runtime: Runtime) -> int:
    """Run every registered scheduler, each in a transaction of its own; returns the jobs scheduled."""
    scheduled = 0
    for fn in list(_SCHEDULERS):
        with runtime.transaction() as tx:
            scheduled += fn(tx)
    return scheduled


# --- scheduling (inside the caller's transaction) ---------------------------------------------


def enqueue(
    tx: Tx,
    *,
    kind: str,
    payload: dict[str, Any],
    run_at: datetime | None = None,
    tenant_id: int | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
) -> int | None:
    """Schedule a job in the caller's transaction; it exists only if that transaction commits.

    ``payload`` holds ids and plain values, never ORM objects. With a ``dedupe_key``, the same
    logical job (the birthday gift of member 42 for 2026) is scheduled at most once, ever: a
    second ``enqueue`` with the same kind and key returns ``None`` and changes nothing, even
    after the first one ran. Without one, every call schedules a new job.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    now = tx.now()
    stmt = (
        insert_or_ignore(tx.session.get_bind(), _jobs)
        .values(
            tenant_id=tenant_id, kind=kind, payload=payload, run_at=run_at or now, status=JobStatus.queued.value,
            attempts=0, max_attempts=max_attempts, dedupe_key=dedupe_key, created_at=now,
        )
        .returning(_jobs.c.id)
    )
    return tx.session.execute(stmt).scalar_one_or_none()


def emit(tx: Tx, *, tenant_id: int, topic: str, payload: dict[str, Any]) -> int:
    """Write an outbox event in the caller's transaction (ids only in ``payload``)."""
    stmt = insert(_events).values(tenant_id=tenant_id, topic=topic, payload=payload, created_at=tx.now())
    return tx.session.execute(stmt.returning(_events.c.id)).scalar_one()


# --- running jobs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    id: int
    kind: str
    payload: dict[str, Any]
    #: the attempt this claim is; with ``worker_id`` it identifies the claim
    attempt: int
    max_attempts: int
    given_up: bool = False


class _LeaseLost(Exception):
    """The job was taken over by another worker while this one ran it (never leaves here)."""


def backoff(attempts: int) -> timedelta:
    """How long a job waits after its ``attempts``-th failed attempt."""
    return min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_CAP)


def run_due(
    runtime: Runtime,
    *,
    worker_id: str,
    limit: int = 100,
    now: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> int:
    """Run up to ``limit`` due jobs, one after another; returns how many were taken.

    Jobs are claimed one at a time, so a job's lease starts when the job starts rather than
    when a batch was fetched. ``kinds`` restricts this call to some kinds (a worker dedicated
    to webhooks); only kinds with a registered handler are ever claimed. ``now`` replaces the
    clock for choosing due jobs and for the times written (tests, catching up).
    """
    wanted = sorted(_HANDLERS.keys() & set(kinds) if kinds is not None else _HANDLERS)
    if not wanted:
        return 0
    taken = 0
    while taken < limit:
        job = _claim(runtime, worker_id=worker_id, kinds=wanted, at=now or runtime.clock())
        if job is None:
            break
        taken += 1
        if not job.given_up:
            _run(runtime, job, worker_id=worker_id, now=now)
    return taken


def _claim(runtime: Runtime, *, worker_id: str, kinds: list[str], at: datetime) -> _Claim | None:
    """Take one due job and commit the claim before anything runs.

    Expired leases come first (their workers died; their jobs are the oldest), then queued jobs
    in the order they were due. Two separate lookups keep each one an index range scan.
    """
    c = _jobs.c
    columns = (c.id, c.kind, c.payload, c.attempts, c.max_attempts)
    lookups = (
        select(*columns).where(c.status == JobStatus.running.value, c.locked_until <= at, c.kind.in_(kinds))
        .order_by(c.id),
        select(*columns).where(c.status == JobStatus.queued.value, c.run_at <= at, c.kind.in_(kinds))
        .order_by(c.run_at, c.id),
    )
    with runtime.transaction() as tx:
        for lookup in lookups:
            row = tx.session.execute(lookup.limit(1).with_for_update(skip_locked=True)).first()
            if row is not None:
                break
        else:
            return None
        if row.attempts >= row.max_attempts:
            # Only a job whose worker died holding it gets here with every attempt started:
            # running it again could take down the next worker too.
            tx.session.execute(update(_jobs).where(c.id == row.id).values(
                status=JobStatus.failed.value, locked_by=None, locked_until=None, finished_at=at,
                last_error=f"lease expired on attempt {row.attempts} of {row.max_attempts} (worker lost)",
            ))
            log.error("job %s (%s) given up: its worker was lost on the last attempt", row.id, row.kind)
            return _Claim(row.id, row.kind, row.payload, row.attempts, row.max_attempts, given_up=True)
        attempt = row.attempts + 1
        tx.session.execute(update(_jobs).where(c.id == row.id).values(
            status=JobStatus.running.value, attempts=attempt, locked_by=worker_id, locked_until=at + LEASE,
        ))
        return _Claim(row.id, row.kind, row.payload, attempt, row.max_attempts)


def _settle(tx: Tx, job: _Claim, *, worker_id: str, **values: Any) -> bool:
    """Update the job only if this claim still holds it; False when the lease was taken over."""
    c = _jobs.c
    result = tx.session.execute(
        update(_jobs)
        .where(c.id == job.id, c.status == JobStatus.running.value, c.locked_by == worker_id,
               c.attempts == job.attempt)
        .values(locked_by=None, locked_until=None, **values)
    )
    return result.rowcount == 1


def _run(runtime: Runtime, job: _Claim, *, worker_id: str, now: datetime | None) -> None:
    fn = _HANDLERS[job.kind]
    try:
        with runtime.transaction() as tx:
            fn(tx, dict(job.payload))
            if not _settle(tx, job, worker_id=worker_id, status=JobStatus.done.value,
                           finished_at=now or tx.now()):
                raise _LeaseLost()
    except _LeaseLost:
        log.warning("job %s (%s) ran past its lease and was taken over; its work was rolled back", job.id, job.kind)
    except Exception as err:
        _record_failure(runtime, job, err, worker_id=worker_id, now=now)


def _record_failure(runtime: Runtime, job: _Claim, err: Exception, *, worker_id: str, now: datetime | None) -> None:
    """In a transaction of its own, after the handler's work rolled back."""
    with runtime.transaction() as tx:
        at = now or tx.now()
        if job.attempt >= job.max_attempts:
            values: dict[str, Any] = {"status": JobStatus.failed.value, "finished_at": at}
            log.error("job %s (%s) failed for good after %s attempts: %s", job.id, job.kind, job.attempt, err,
                      exc_info=not isinstance(err, LiutongError))
        else:
            values = {"status": JobStatus.queued.value, "run_at": at + backoff(job.attempt)}
            log.warning("job %s (%s) attempt %s of %s failed, retrying at %s: %s", job.id, job.kind, job.attempt,
                        job.max_attempts, values["run_at"], err, exc_info=not isinstance(err, LiutongError))
        _settle(tx, job, worker_id=worker_id, last_error=_describe(err), **values)


def _describe(err: Exception) -> str:
    if isinstance(err, LiutongError):
        text = f"{err.code}: {err.message('en')}"
    else:
        text = "".join(traceback.format_exception_only(err)).strip()
    return text[:2000]


# --- the outbox ------------------------------------------------------------------------------


def dispatch_outbox(runtime: Runtime, *, limit: int = 500) -> int:
    """Hand undispatched events to their subscribers in id order; returns how many were delivered.

    Each event is delivered in a savepoint: when a subscriber raises, that event's writes roll
    back, it stays undispatched for the next run, and the later events of its topic wait
    behind it so that a topic is never delivered out of order; other topics go on. The
    events are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; an event another
    dispatcher holds also holds back the later events of its topic here.

    At least once: a subscriber sees an event again if the run that delivered it failed to
    commit. Order is id order among committed events; two transactions running at the same
    time can commit in the opposite order of their ids, so subscribers must not expect the
    ids they see to be gap-free.
    """
    topics = sorted(_SUBSCRIBERS)
    if not topics:
        return 0
    c = _events.c
    delivered = 0
    with runtime.transaction() as tx:
        pending = tx.session.execute(
            select(c.id, c.topic).where(c.dispatched_at.is_(None), c.topic.in_(topics)).order_by(c.id).limit(limit)
        ).all()
        if not pending:
            return 0
        claimed = {
            row.id: row
            for row in tx.session.execute(
                select(c.id, c.tenant_id, c.topic, c.payload, c.created_at)
                .where(c.id.in_([p.id for p in pending]), c.dispatched_at.is_(None))
                .with_for_update(skip_locked=True)
            )
        }
        held_back: set[str] = set()
        for event_id, topic in pending:
            if topic in held_back:
                continue
            row = claimed.get(event_id)
            if row is None:  # another dispatcher holds it, or has just delivered it
                held_back.add(topic)
                continue
            event = Event(id=row.id, tenant_id=row.tenant_id, topic=row.topic, payload=row.payload,
                          created_at=row.created_at)
            open_claims = len(tx.claims)
            try:
                with tx.session.begin_nested():
                    for fn in list(_SUBSCRIBERS.get(topic, ())):
                        fn(tx, event)
                    tx.session.execute(update(_events).where(c.id == event_id).values(dispatched_at=tx.now()))
            except Exception as err:
                # Idempotency keys claimed by the failed delivery were rolled back with it.
                del tx.claims[open_claims:]
                held_back.add(topic)
                log.warning("outbox event %s (%s) not delivered, will retry: %s", event_id, topic, err,
                            exc_info=not isinstance(err, LiutongError))
                continue
            delivered += 1
    return delivered
