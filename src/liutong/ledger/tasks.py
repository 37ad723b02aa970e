"""The nightly points jobs of every tenant: vesting, expiry, and reminders before expiry.

Each tenant has one run of each kind per local day, due at the local midnight that starts the
day (the tenant's time zone, Asia/Shanghai unless set otherwise), with that midnight as
``as_of``. A run is a chain of jobs of one chunk of members each (``ledger.batch``): a job does
its chunk and, in the same transaction, schedules the job of the next chunk with the walk's
position in its payload. A crash or a restart therefore loses at most the chunk in hand, which
is run again when its lease runs out and posts nothing twice. The first job of a day also
schedules the next day's run.

Every run is scheduled with the dedupe key ``tenant:day``, so it exists once however many
workers start and however often they schedule: workers call ``schedule_nightly_runs`` when they
start and every hour (``jobs.scheduler``), which also picks up tenants created since and
restarts a chain whose day failed for good.

On PostgreSQL a chunk skips members whose accounts a purchase holds at that moment. A pass that
skipped members is followed by another pass over what is still due, ``RETRY_SKIPPED_AFTER``
later, up to ``MAX_PASSES``; a member still held after that is expired or vested by the next
night's run (and meanwhile cannot spend lapsed points: spending only draws unexpired lots).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from liutong.errors import NotFound
from liutong.jobs import service as jobs
from liutong.ledger import batch
from liutong.organisation.models import Tenant
from liutong.program import service as program

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

log = logging.getLogger("liutong.points")

VEST = "points.vest_due"
EXPIRE = "points.expire_due"
REMIND = "points.remind_expiry"
#: In the order a night runs them (claimed by due time, then id): vesting first, so that points
#: vesting the night they lapse are expired that night too.
KINDS = (VEST, EXPIRE, REMIND)

RETRY_SKIPPED_AFTER = timedelta(minutes=1)
MAX_PASSES = 5
#: With the jobs' backoff (30 s doubling, at most an hour), ten attempts cover about four hours.
MAX_ATTEMPTS = 10


def tenant_zone(tx: Tx, tenant_id: int) -> ZoneInfo:
    name = tx.session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id))
    return ZoneInfo(name or tx.settings.timezone)


def schedule_day(tx: Tx, *, tenant_id: int, day: date, tz: ZoneInfo, kinds: tuple[str, ...] = KINDS) -> int:
    """Schedule the runs of ``day`` at its local midnight; returns how many were new."""
    run_at = batch.local_midnight(day, tz)
    scheduled = 0
    for kind in kinds:
        job = jobs.enqueue(tx, kind=kind, payload={"tenant_id": tenant_id, "day": day.isoformat()}, run_at=run_at,
                           tenant_id=tenant_id, dedupe_key=f"{tenant_id}:{day.isoformat()}", max_attempts=MAX_ATTEMPTS)
        scheduled += job is not None
    return scheduled


@jobs.scheduler
def schedule_nightly_runs(tx: Tx) -> int:
    """Today's and tomorrow's runs for every tenant, in its own time zone (idempotent).

    Today's run of a tenant that never had one is due at once: it takes what was due at today's
    midnight.
    """
    scheduled = 0
    for tenant_id, zone in tx.session.execute(select(Tenant.id, Tenant.timezone).order_by(Tenant.id)).all():
        tz = ZoneInfo(zone or tx.settings.timezone)
        today = tx.now().astimezone(tz).date()
        for day in (today, today + timedelta(days=1)):
            scheduled += schedule_day(tx, tenant_id=tenant_id, day=day, tz=tz)
    return scheduled


# --- one chunk per job -----------------------------------------------------------------------------


def remind_days_before(tx: Tx, tenant_id: int) -> list[int]:
    """The program's days ahead to remind members of expiring points (none without a program)."""
    try:
        return program.current(tx, tenant_id=tenant_id).document.expiry.remind_days_before
    except NotFound:
        return []


def run_chunk(tx: Tx, kind: str, *, tenant_id: int, day: date, tz: ZoneInfo, after: int,
              members: int = batch.CHUNK) -> batch.Chunk:
    """One chunk of the ``kind`` run of ``day``, as its job does it (the CLI walks with it too)."""
    as_of = batch.local_midnight(day, tz)
    if kind == EXPIRE:
        return batch.expire_chunk(tx, tenant_id=tenant_id, as_of=as_of, after=after, members=members)
    if kind == VEST:
        return batch.vest_chunk(tx, tenant_id=tenant_id, as_of=as_of, after=after, members=members)
    if kind == REMIND:
        return batch.remind_chunk(tx, tenant_id=tenant_id, on=day, days_before=remind_days_before(tx, tenant_id), tz=tz,
                                  after=after, members=members)
    raise ValueError(f"not a points run: {kind}")


def _step(tx: Tx, kind: str, payload: dict[str, Any]) -> None:
    tenant_id, day = payload["tenant_id"], date.fromisoformat(payload["day"])
    after, run = payload.get("after", 0), payload.get("pass", 1)
    members = payload.get("chunk", batch.CHUNK)
    tz = tenant_zone(tx, tenant_id)
    if after == 0 and run == 1:
        schedule_day(tx, tenant_id=tenant_id, day=day + timedelta(days=1), tz=tz, kinds=(kind,))
    chunk = run_chunk(tx, kind, tenant_id=tenant_id, day=day, tz=tz, after=after, members=members)
    so_far = {name: payload.get(name, 0) + getattr(chunk, name) for name in ("members", "lots", "points", "skipped")}
    so_far["chunks"] = payload.get("chunks", 0) + 1
    base = {"tenant_id": tenant_id, "day": day.isoformat(), "chunk": members}
    if not chunk.done:
        follow = {**base, "after": chunk.after, "pass": run, **so_far}
        jobs.enqueue(tx, kind=kind, payload=follow, tenant_id=tenant_id, max_attempts=MAX_ATTEMPTS,
                     dedupe_key=f"{tenant_id}:{day.isoformat()}:{run}:{chunk.after}")
        return
    if so_far["skipped"] and run < MAX_PASSES:
        log.info("%s of tenant %s for %s: pass %s skipped %s members held by other transactions; retrying",
                 kind, tenant_id, day, run, so_far["skipped"])
        again = {**base, "pass": run + 1, **so_far, "skipped": 0}  # the next pass counts its own skips
        jobs.enqueue(tx, kind=kind, payload=again, tenant_id=tenant_id,
                     run_at=tx.now() + RETRY_SKIPPED_AFTER, max_attempts=MAX_ATTEMPTS,
                     dedupe_key=f"{tenant_id}:{day.isoformat()}:{run + 1}:0")
        return
    log.log(logging.WARNING if so_far["skipped"] else logging.INFO,
            "%s of tenant %s for %s done: %s members, %s lots, %s points in %s chunks; %s members left for "
            "the next run", kind, tenant_id, day, so_far["members"], so_far["lots"], so_far["points"],
            so_far["chunks"], so_far["skipped"])


@jobs.handler(VEST)
def vest_due(tx: Tx, payload: dict[str, Any]) -> None:
    _step(tx, VEST, payload)


@jobs.handler(EXPIRE)
def expire_due(tx: Tx, payload: dict[str, Any]) -> None:
    _step(tx, EXPIRE, payload)


@jobs.handler(REMIND)
def remind_expiry(tx: Tx, payload: dict[str, Any]) -> None:
    _step(tx, REMIND, payload)
