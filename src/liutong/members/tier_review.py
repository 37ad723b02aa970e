"""The period review of tiers, set-based: a million members in chunks, resumable, idempotent.

At the end of each review period (``ProgramDocument.tier_review``: every calendar year, half
year, quarter or month, in the tenant's local time) every member above the lowest tier, or
with an override, is judged by ``program.tiers.review`` on their activity over the windows
ending at the period's end: they keep their tier or drop, expired overrides are cleared.

How it stays correct at scale:

* **Chunks with a cursor.** A review is a row in ``tier_reviews`` (one per tenant and
  period). Each chunk locks that row, takes the next members by id after its ``cursor``,
  reads their activity, growth and paid upgrades in three set-based queries, decides in
  Python with the same pure rule the tests check, writes the changes in bulk and advances the
  cursor — all in one transaction. A chunk that fails rolls back whole; the next attempt
  starts where the last committed chunk ended.
* **Idempotent.** A finished review is never run again, the row lock makes two workers take
  chunks one after the other, and ``member_tier_history`` holds at most one line per member
  per review (a unique constraint) — so a rerun changes nothing and writes nothing.
* **Never against a later change.** The chunk's members are locked while it runs. A member
  whose tier changed after the period ended (promoted by a purchase on 1 January, say) is
  left alone: the review judges the past period, not what they did since.
* **Pinned rules.** A review decides by the program version current when it started, even
  if a new one is published while it runs.

As a job (``tiers.review``) each run is one chunk, and it schedules the next chunk, or, when
the review is done, the review of the next period. ``liutong tiers review`` runs the chunks
in a loop in the foreground.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, and_, case, cast, func, insert, or_, select, update

from liutong.db import insert_or_ignore, is_postgres
from liutong.jobs import service as jobs
from liutong.jobs.models import OutboxEvent
from liutong.ledger.models import Account, AccountKind, OwnerType
from liutong.members.models import ActivityDay, Member, MemberStatus, TierCause, TierChange, TierPurchase, TierReview
from liutong.program import service as program_service
from liutong.program.models import ProgramVersion
from liutong.program.rules import ProgramDocument, ReviewSchedule
from liutong.program.tiers import (
    Activity,
    Override,
    Period,
    Verdict,
    last_period_ended,
    period_of,
    review,
    review_windows,
)

if TYPE_CHECKING:
    from liutong.bootstrap import Runtime, Tx

log = logging.getLogger("liutong.tiers")

JOB_KIND = "tiers.review"
#: Members judged per chunk (one transaction). Large enough that the per-chunk statements
#: are a small part of the time, small enough that a chunk holds its locks briefly.
CHUNK = 10_000

_WORDS = {"year": ("年度", "annual"), "half_year": ("半年度", "half-yearly"), "quarter": ("季度", "quarterly"),
          "month": ("月度", "monthly")}


@dataclass(frozen=True)
class Progress:
    review_id: int
    period: str
    as_of: datetime
    done: bool
    cursor: int
    reviewed: int
    demoted: int
    overrides_cleared: int
    #: members judged by this chunk
    chunk: int = 0


def _progress(row: TierReview, chunk: int = 0) -> Progress:
    return Progress(review_id=row.id, period=row.period, as_of=row.as_of, done=row.status == "done", cursor=row.cursor,
                    reviewed=row.reviewed, demoted=row.demoted, overrides_cleared=row.overrides_cleared, chunk=chunk)


def _program(tx: Tx, program_version_id: int) -> ProgramDocument:
    return ProgramDocument.model_validate(tx.session.get(ProgramVersion, program_version_id).document)


def period_for(tx: Tx, *, schedule: ReviewSchedule, as_of: datetime | None = None) -> Period:
    """The period a review run at ``as_of`` (default now) is for: the latest that had ended."""
    return last_period_ended(schedule, (as_of or tx.now()).astimezone(tx.tz))


def open_review(tx: Tx, *, tenant_id: int, as_of: datetime | None = None) -> TierReview:
    """The review of the latest period ended by ``as_of``, created when it does not exist yet;
    returned locked (one chunk at a time, whichever worker runs it)."""
    published = program_service.current(tx, tenant_id=tenant_id)
    period = period_for(tx, schedule=published.document.tier_review, as_of=as_of)
    t = TierReview.__table__
    tx.session.execute(insert_or_ignore(tx.session.get_bind(), t).values(
        tenant_id=tenant_id, period=period.key, as_of=period.ends_at(tx.tz), program_version_id=published.id,
        status="running", cursor=0, reviewed=0, demoted=0, overrides_cleared=0, started_at=tx.now()))
    return tx.session.scalars(
        select(TierReview).where(TierReview.tenant_id == tenant_id, TierReview.period == period.key)
        .with_for_update().execution_options(populate_existing=True)
    ).one()


def _due(tenant_id: int, lowest: str):
    """Members the review has anything to do for: above the lowest tier, or with an override."""
    m = Member.__table__.c
    return and_(
        m.tenant_id == tenant_id,
        m.status.in_([MemberStatus.active.value, MemberStatus.frozen.value]),
        or_(and_(m.tier_code.is_not(None), m.tier_code != lowest), m.tier_floor.is_not(None), m.tier_locked,
            m.tier_override_expires_at.is_not(None)),
    )


def remaining(tx: Tx, *, tenant_id: int, review_row: TierReview) -> int:
    """How many members the review still has to judge (for a progress bar)."""
    program = _program(tx, review_row.program_version_id)
    m = Member.__table__.c
    return tx.session.scalar(select(func.count()).select_from(Member.__table__).where(
        _due(tenant_id, program.tier(None).code), m.id > review_row.cursor))


def review_chunk(tx: Tx, *, tenant_id: int, as_of: datetime | None = None, limit: int = CHUNK) -> Progress:
    """Judge the next ``limit`` members of the review of the period ended by ``as_of``."""
    row = open_review(tx, tenant_id=tenant_id, as_of=as_of)
    if row.status == "done":
        return _progress(row)
    program = _program(tx, row.program_version_id)
    members = _members(tx, tenant_id=tenant_id, lowest=program.tier(None).code, after=row.cursor, limit=limit)
    if not members:
        row.status, row.finished_at = "done", tx.now()
        tx.session.flush()
        log.info("tier review %s of tenant %s done: %s reviewed, %s demoted, %s overrides cleared", row.period,
                 tenant_id, row.reviewed, row.demoted, row.overrides_cleared)
        return _progress(row)
    lo, hi = members[0].id, members[-1].id
    end_day = row.as_of.astimezone(tx.tz).date()
    windows = review_windows(program)
    activity = _activity(tx, tenant_id=tenant_id, lo=lo, hi=hi, end_day=end_day, windows=windows)
    growth = _growth(tx, tenant_id=tenant_id, lo=lo, hi=hi) if _uses_growth(program) else {}
    paid = _paid_floors(tx, program=program, tenant_id=tenant_id, lo=lo, hi=hi, at=row.as_of)
    moved_since = _changed_since(tx, tenant_id=tenant_id, lo=lo, hi=hi, since=row.as_of)
    idle = {d: (0, 0, 0) for d in windows}
    changes: list[tuple[Any, Verdict]] = []
    for member in members:
        if member.id in moved_since:
            continue
        sums = activity.get(member.id, idle)
        g = growth.get(member.id, 0)
        activity_for = {d: Activity(spend_fen=s, visits=v, growth=g, points_earned=p) for d, (s, v, p) in sums.items()}
        verdict = review(program, current=member.tier_code, activity_for=activity_for,
                         override=Override(floor=member.tier_floor, locked=bool(member.tier_locked),
                                           expires_at=member.tier_override_expires_at),
                         paid_floor=paid.get(member.id), at=row.as_of)
        before = member.tier_code or program.tier(None).code
        if verdict.tier.code != before or verdict.clear_override:
            changes.append((member, verdict))
    demoted, cleared = _write(tx, row=row, program=program, changes=changes)
    row.cursor = hi
    row.reviewed += len(members)
    row.demoted += demoted
    row.overrides_cleared += cleared
    tx.session.flush()
    return _progress(row, chunk=len(members))


def _members(tx: Tx, *, tenant_id: int, lowest: str, after: int, limit: int) -> list[Any]:
    """The next members to judge, locked: a purchase promoting one of them waits for the chunk."""
    m = Member.__table__.c
    return tx.session.execute(
        select(m.id, m.tier_code, m.tier_floor, m.tier_locked, m.tier_override_expires_at)
        .where(_due(tenant_id, lowest), m.id > after).order_by(m.id).limit(limit).with_for_update()
    ).all()


def _activity(tx: Tx, *, tenant_id: int, lo: int, hi: int, end_day: date,
              windows: set[int]) -> dict[int, dict[int, tuple[int, int, int]]]:
    """Spend, visits and points earned of each member in ``lo..hi``, per window before ``end_day``."""
    a = ActivityDay.__table__.c
    ordered = sorted(windows)
    columns = []
    for days in ordered:
        inside = a.day >= end_day - timedelta(days=days)
        columns += [cast(func.sum(case((inside, col), else_=0)), BigInteger)
                    for col in (a.spend_fen, a.visited, a.points_earned)]
    rows = tx.session.execute(
        select(a.member_id, *columns)
        .where(a.tenant_id == tenant_id, a.member_id >= lo, a.member_id <= hi,
               a.day >= end_day - timedelta(days=ordered[-1]), a.day < end_day)
        .group_by(a.member_id)
    ).all()
    if len(ordered) == 1:  # the usual program: one window for every tier
        only = ordered[0]
        return {member_id: {only: (s, v, p)} for member_id, s, v, p in rows}
    return {r[0]: {d: tuple(r[1 + 3 * i:4 + 3 * i]) for i, d in enumerate(ordered)} for r in rows}


def _uses_growth(program: ProgramDocument) -> bool:
    return any(rule.growth is not None for t in program.tiers for rule in (t.qualify, t.retention))


def _growth(tx: Tx, *, tenant_id: int, lo: int, hi: int) -> dict[int, int]:
    """Growth is a ledger balance, read as it is now (it is not windowed)."""
    a = Account.__table__.c
    return dict(tx.session.execute(select(a.owner_id, a.balance).where(
        a.tenant_id == tenant_id, a.owner_type == OwnerType.member.value, a.owner_id >= lo, a.owner_id <= hi,
        a.kind == AccountKind.growth.value)).all())


def _paid_floors(tx: Tx, *, program: ProgramDocument, tenant_id: int, lo: int, hi: int, at: datetime) -> dict[int, str]:
    p = TierPurchase.__table__.c
    best: dict[int, str] = {}
    for member_id, code in tx.session.execute(select(p.member_id, p.tier_code).where(
            p.tenant_id == tenant_id, p.member_id >= lo, p.member_id <= hi, p.starts_at <= at, p.ends_at > at)):
        if member_id not in best or program.tier(code).rank > program.tier(best[member_id]).rank:
            best[member_id] = code
    return best


def _changed_since(tx: Tx, *, tenant_id: int, lo: int, hi: int, since: datetime) -> set[int]:
    """Members whose tier or override changed after the period ended, other than by a review."""
    h = TierChange.__table__.c
    return set(tx.session.scalars(select(h.member_id).where(
        h.tenant_id == tenant_id, h.at > since, h.member_id >= lo, h.member_id <= hi, h.review_id.is_(None))))


def reason(schedule: ReviewSchedule, verdict: Verdict, *, demoted: bool) -> str:
    zh, en = _WORDS[schedule.every]
    parts_zh, parts_en = [], []
    if verdict.clear_override:
        parts_zh.append("人工调整到期")
        parts_en.append("manual override expired")
    if demoted:
        parts_zh.append(f"{zh}保级未达标")
        parts_en.append(f"{en} review: retention not met")
    if verdict.held_by == "floor":
        parts_zh.append("保持保底等级")
        parts_en.append("held at the override floor")
    elif verdict.held_by == "paid_upgrade":
        parts_zh.append("付费升级期内")
        parts_en.append("held by a paid upgrade")
    if not parts_zh:  # the floor lifted a member above the tier they had
        parts_zh.append(f"{zh}复核")
        parts_en.append(f"{en} review")
    return f"{'；'.join(parts_zh)} / {'; '.join(parts_en)}"


def _write(tx: Tx, *, row: TierReview, program: ProgramDocument, changes: list[tuple[Any, Verdict]]) -> tuple[int, int]:
    """Apply a chunk's verdicts in bulk: members by group, history lines, ``tier_changed`` events."""
    if not changes:
        return 0, 0
    m = Member.__table__.c
    groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
    history, events = [], []
    now = tx.now()
    demoted = cleared = 0
    lowest = program.tier(None).code
    for member, verdict in changes:
        before = member.tier_code or lowest
        after = verdict.tier.code
        down = program.tier(after).rank < program.tier(before).rank
        text = reason(program.tier_review, verdict, demoted=down)
        groups[(after, verdict.clear_override)].append(member.id)
        history.append({"tenant_id": row.tenant_id, "member_id": member.id, "from_tier": before, "to_tier": after,
                        "reason": text, "program_version_id": row.program_version_id, "at": row.as_of,
                        "cause": TierCause.review.value, "review_id": row.id})
        if after != before:
            events.append({"tenant_id": row.tenant_id, "topic": "tier_changed", "created_at": now, "payload": {
                "member_id": member.id, "from": before, "to": after, "reason": text, "cause": TierCause.review.value,
                "review": row.period}})
        demoted += down
        cleared += verdict.clear_override
    if is_postgres(tx.session.get_bind()):
        _write_arrays(tx, row=row, groups=groups, history=history, events=events)
        return demoted, cleared
    for (after, clear), ids in groups.items():
        values: dict[str, Any] = {"tier_code": after}
        if clear:
            values.update(tier_floor=None, tier_locked=False, tier_override_expires_at=None)
        tx.session.execute(update(Member.__table__).where(m.id.in_(ids)).values(**values))
    tx.session.execute(insert(TierChange.__table__), history)
    if events:
        tx.session.execute(insert(OutboxEvent.__table__), events)
    return demoted, cleared


def _write_arrays(tx: Tx, *, row: TierReview, groups: dict[tuple[str, bool], list[int]], history: list[dict],
                  events: list[dict]) -> None:
    """PostgreSQL: each table in one statement over arrays instead of a statement per row (an
    executemany of the history and the events was a third of the review's time). Tier codes
    and reasons are few: they travel once, and the rows refer to them by position."""
    sql = tx.sql()
    for (after, clear), ids in groups.items():
        reset = ", tier_floor = NULL, tier_locked = false, tier_override_expires_at = NULL" if clear else ""
        sql.run(f"UPDATE members SET tier_code = :after{reset} WHERE id = ANY(:ids)", {"after": after, "ids": ids})
    words: dict[str, int] = {}

    def word(text: str) -> int:
        return words.setdefault(text, len(words) + 1)  # SQL arrays count from 1

    params = {
        "t": row.tenant_id, "v": row.program_version_id, "at": sql.time(row.as_of), "cause": TierCause.review.value,
        "review": row.id, "period": row.period, "now": sql.time(tx.now()),
        "members": [h["member_id"] for h in history], "froms": [word(h["from_tier"]) for h in history],
        "tos": [word(h["to_tier"]) for h in history], "reasons": [word(h["reason"]) for h in history],
    }
    params["words"] = list(words)
    sql.run(
        "WITH x AS (SELECT x.m, w[x.f] AS f, w[x.o] AS o, w[x.r] AS r "
        "           FROM unnest(:members::bigint[], :froms::int[], :tos::int[], :reasons::int[]) AS x(m, f, o, r), "
        "                (SELECT :words::text[] AS w) AS words), "
        "     lines AS (INSERT INTO member_tier_history (tenant_id, member_id, from_tier, to_tier, reason, "
        "                                                program_version_id, at, cause, review_id) "
        "               SELECT :t, m, f, o, r, :v, :at, :cause, :review FROM x) "
        "INSERT INTO outbox_events (tenant_id, topic, payload, created_at) "
        "SELECT :t, 'tier_changed', json_build_object('member_id', m, 'from', f, 'to', o, 'reason', r, "
        "       'cause', :cause::text, 'review', :period::text), :now FROM x WHERE f <> o",
        params,
    )


# --- running it --------------------------------------------------------------------------------


def run(runtime: Runtime, *, tenant_id: int, as_of: datetime | None = None, limit: int = CHUNK,
        on_start: Callable[[Progress, int], None] | None = None,
        on_chunk: Callable[[Progress], None] | None = None) -> Progress:
    """Run a review to its end in the foreground, one transaction per chunk (the CLI, benches).

    ``on_start`` receives the review as it stands and how many members it still has to judge.
    """
    with runtime.transaction() as tx:
        row = open_review(tx, tenant_id=tenant_id, as_of=as_of)
        if on_start is not None:
            on_start(_progress(row), 0 if row.status == "done" else remaining(tx, tenant_id=tenant_id, review_row=row))
    while True:
        with runtime.transaction() as tx:
            progress = review_chunk(tx, tenant_id=tenant_id, as_of=as_of, limit=limit)
        if on_chunk is not None:
            on_chunk(progress)
        if progress.done:
            return progress


def schedule(tx: Tx, *, tenant_id: int, after: datetime | None = None) -> int | None:
    """Schedule the review of the period running at ``after`` (default now) for its end, once."""
    program = program_service.current(tx, tenant_id=tenant_id).document
    period = period_of(program.tier_review, (after or tx.now()).astimezone(tx.tz).date())
    at = period.ends_at(tx.tz)
    return jobs.enqueue(tx, kind=JOB_KIND, tenant_id=tenant_id, run_at=at,
                        payload={"tenant_id": tenant_id, "period": period.key, "as_of": at.isoformat()},
                        dedupe_key=f"{tenant_id}:{period.key}:0")


@jobs.handler(JOB_KIND)
def _review_job(tx: Tx, payload: dict[str, Any]) -> None:
    """One chunk of the review; then the next chunk, or the next period's review."""
    tenant_id = payload["tenant_id"]
    as_of = datetime.fromisoformat(payload["as_of"])
    program = program_service.current(tx, tenant_id=tenant_id).document
    if period_for(tx, schedule=program.tier_review, as_of=as_of).key != payload["period"]:
        log.info("tier review %s of tenant %s dropped: the program now reviews every %s", payload["period"],
                 tenant_id, program.tier_review.every)
        schedule(tx, tenant_id=tenant_id, after=tx.now())
        return
    progress = review_chunk(tx, tenant_id=tenant_id, as_of=as_of)
    if progress.done:
        schedule(tx, tenant_id=tenant_id, after=progress.as_of)
    else:
        jobs.enqueue(tx, kind=JOB_KIND, tenant_id=tenant_id, payload=payload,
                     dedupe_key=f"{tenant_id}:{payload['period']}:{progress.cursor}")
