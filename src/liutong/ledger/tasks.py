"""The nightly points jobs of every tenant: vesting, expiry, and reminders before expiry.

Each tenant has one run of each kind per local day, due at the local midnight that starts the
day (the tenant's time zone, Asia/Shanghai unless set otherwise), with that midnight as
``as_of``. The night's first job schedules the next night and splits the tenant's members into
``PARTS`` ranges of ids, one chain of jobs each, so that several workers share the night. A
chain's job does one chunk of members (``ledger.batch``) and, in the same transaction, schedules
the job of the next chunk with the walk's position in its payload. A crash or a restart
therefore loses at most the chunk in hand, which is run again when its lease runs out and
posts nothing twice.

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

#: A night's run is split in this many chains over ranges of member ids, so that as many workers
#: can share it (a single worker runs them one chunk after the other, round robin).
PARTS = 4
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
              until: int | None = None, members: int = batch.CHUNK) -> batch.Chunk:
    """One chunk of the ``kind`` run of ``day``, as its job does it."""
    as_of = batch.local_midnight(day, tz)
    walk = {"tenant_id": tenant_id, "after": after, "until": until, "members": members}
    if kind == EXPIRE:
        return batch.expire_chunk(tx, as_of=as_of, **walk)
    if kind == VEST:
        return batch.vest_chunk(tx, as_of=as_of, **walk)
    if kind == REMIND:
        return batch.remind_chunk(tx, on=day, days_before=remind_days_before(tx, tenant_id), tz=tz, **walk)
    raise ValueError(f"not a points run: {kind}")


def parts_of(span: tuple[int, int], parts: int) -> list[tuple[int, int]]:
    """(after, until) member-id ranges that split ``span`` (lowest, highest) in ``parts``."""
    low, high = span
    step = -(-(high - low + 1) // parts)
    return [(start - 1, min(start + step - 1, high)) for start in range(low, high + 1, step)]


def _open_night(tx: Tx, kind: str, payload: dict[str, Any], *, tenant_id: int, day: date, tz: ZoneInfo) -> None:
    """The night's first job: schedule the next night, then one chain per part of the members."""
    schedule_day(tx, tenant_id=tenant_id, day=day + timedelta(days=1), tz=tz, kinds=(kind,))
    span = batch.member_span(tx, tenant_id=tenant_id)
    if span is None:
        return
    for after, until in parts_of(span, payload.get("parts", PARTS)):
        chain = {"tenant_id": tenant_id, "day": day.isoformat(), "chunk": payload.get("chunk", batch.CHUNK),
                 "from": after, "after": after, "until": until, "pass": 1}
        jobs.enqueue(tx, kind=kind, payload=chain, tenant_id=tenant_id, max_attempts=MAX_ATTEMPTS,
                     dedupe_key=f"{tenant_id}:{day.isoformat()}:1:{after}:{until}")


def _step(tx: Tx, kind: str, payload: dict[str, Any]) -> None:
    tenant_id, day = payload["tenant_id"], date.fromisoformat(payload["day"])
    tz = tenant_zone(tx, tenant_id)
    if "until" not in payload:
        _open_night(tx, kind, payload, tenant_id=tenant_id, day=day, tz=tz)
        return
    start, after, until, run = payload["from"], payload["after"], payload["until"], payload["pass"]
    members = payload["chunk"]
    chunk = run_chunk(tx, kind, tenant_id=tenant_id, day=day, tz=tz, after=after, until=until, members=members)
    so_far = {name: payload.get(name, 0) + getattr(chunk, name) for name in ("members", "lots", "points", "skipped")}
    so_far["chunks"] = payload.get("chunks", 0) + 1
    base = {"tenant_id": tenant_id, "day": day.isoformat(), "chunk": members, "from": start, "until": until}
    key = f"{tenant_id}:{day.isoformat()}"
    if not chunk.done:
        follow = {**base, "after": chunk.after, "pass": run, **so_far}
        jobs.enqueue(tx, kind=kind, payload=follow, tenant_id=tenant_id, max_attempts=MAX_ATTEMPTS,
                     dedupe_key=f"{key}:{run}:{chunk.after}:{until}")
        return
    if so_far["skipped"] and run < MAX_PASSES:
        log.info("%s of tenant %s for %s, members %s-%s: pass %s skipped %s members held by other transactions; "
                 "retrying", kind, tenant_id, day, start + 1, until, run, so_far["skipped"])
        again = {**base, "after": start, "pass": run + 1, **so_far, "skipped": 0}  # the next pass counts its own
        jobs.enqueue(tx, kind=kind, payload=again, tenant_id=tenant_id,
                     run_at=tx.now() + RETRY_SKIPPED_AFTER, max_attempts=MAX_ATTEMPTS,
                     dedupe_key=f"{key}:{run + 1}:{start}:{until}")
        return
    log.log(logging.WARNING if so_far["skipped"] else logging.INFO,
            "%s of tenant %s for %s, members %s-%s done: %s members, %s lots, %s points in %s chunks; "
            "%s members left for the next run", kind, tenant_id, day, start + 1, until, so_far["members"],
            so_far["lots"], so_far["points"], so_far["chunks"], so_far["skipped"])


@jobs.handler(VEST)
def vest_due(tx: Tx, payload: dict[str, Any]) -> None:
    _step(tx, VEST, payload)


@jobs.handler(EXPIRE)
def expire_due(tx: Tx, payload: dict[str, Any]) -> None:
    _step(tx, EXPIRE, payload)


@jobs.handler(REMIND)
def remind_expiry(tx: Tx, payload: dict[str, Any]) -> None:
    _step(tx, REMIND, payload)
