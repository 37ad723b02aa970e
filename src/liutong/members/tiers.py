"""Keeping a member's tier: promotion at once after activity, manual overrides, paid
upgrades, the member's progress and their tier history. (Demotion is the period review's,
in ``members.tier_review``.)

Every change of a member's tier or override writes one history line with its reason and
cause; a change of the tier itself also writes a ``tier_changed`` event to the outbox.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from liutong.errors import (
    InvalidOverride,
    InvalidRequest,
    PaymentAlreadyUsed,
    PaymentMismatch,
    TierLocked,
    TierNotForSale,
    UnknownTier,
)
from liutong.jobs import service as jobs
from liutong.kit import idempotency
from liutong.ledger import queries as ledger_queries
from liutong.members import activity as member_activity
from liutong.members import service as members
from liutong.members.models import Member, TierCause, TierChange, TierPurchase
from liutong.members.schemas import (
    NextReview,
    OverrideOut,
    PaidHold,
    PaidUpgradeIn,
    PaidUpgradeOut,
    TierGap,
    TierGoal,
    TierHistoryLine,
    TierHistoryPage,
    TierOverrideClear,
    TierOverrideIn,
    TierProgress,
    TierRef,
    TierStatus,
)
from liutong.organisation.audit import record_audit
from liutong.program import service as program_service
from liutong.program.rules import ProgramDocument, Tier
from liutong.program.tiers import (
    Activity,
    Override,
    Standing,
    earned_tier,
    next_tier,
    period_of,
    promotion,
    review_windows,
    standing,
)

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


def activity(tx: Tx, *, tenant_id: int, member_id: int, at: datetime, windows: set[int],
             growth: int) -> dict[int, Activity]:
    """The member's activity over each window of N local days up to and including ``at``'s day."""
    until = member_activity.local_day(tx, at) + timedelta(days=1)
    return member_activity.over_windows(tx, tenant_id=tenant_id, member_id=member_id, until=until, windows=windows,
                                        growth=growth)


def override_of(member: Member) -> Override:
    return Override(floor=member.tier_floor, locked=member.tier_locked, expires_at=member.tier_override_expires_at)


def record_change(tx: Tx, *, member: Member, before: str | None, after: str, reason: str, cause: TierCause,
                  program_version_id: int | None, at: datetime) -> int:
    """One history line; and a ``tier_changed`` event when the tier itself changed."""
    line = TierChange(tenant_id=member.tenant_id, member_id=member.id, from_tier=before, to_tier=after,
                      reason=reason[:200], program_version_id=program_version_id, at=at, cause=cause.value)
    tx.session.add(line)
    tx.session.flush()
    if before != after:
        jobs.emit(tx, tenant_id=member.tenant_id, topic="tier_changed", payload={
            "member_id": member.id, "from": before, "to": after, "reason": reason, "cause": cause.value})
    return line.id


def promote_if_earned(tx: Tx, *, member: Member, program: ProgramDocument, program_version_id: int,
                      at: datetime, reason: str, growth: int | None = None) -> str | None:
    """Promote the member at once when their activity earns a higher tier; returns the new tier.

    Two purchases committing at the same moment must promote once and write one history line,
    so this runs under the member's row lock: a caller that already holds it (a checkout locks
    the member before its ledger writes) passes the member's ``growth`` as it now stands;
    otherwise the row is locked and re-read here, and growth read under that lock.
    """
    if growth is None:
        tx.session.refresh(member, with_for_update=True)
    override = override_of(member)
    current = program.tier(member.tier_code)
    above = [t for t in program.tiers if t.rank > current.rank]
    if not above or (override.locked and override.active(at)):
        return None  # nothing to promote to: skip reading the member's activity
    if growth is None:
        growth = ledger_queries.growth(tx, tenant_id=member.tenant_id, member_id=member.id)
    activity_for = activity(tx, tenant_id=member.tenant_id, member_id=member.id, at=at,
                            windows={t.qualify.window_days for t in above}, growth=growth)
    target = promotion(program, current=member.tier_code, earned=earned_tier(program, activity_for, among=above),
                       override=override, at=at)
    if target is None:
        return None
    before = current.code
    member.tier_code = target.code
    record_change(tx, member=member, before=before, after=target.code, reason=reason, cause=TierCause.promotion,
                  program_version_id=program_version_id, at=at)
    return target.code


def check_promotion(tx: Tx, *, tenant_id: int, member_id: int, at: datetime, reason: str) -> str | None:
    """Promotion after activity that is not a purchase (a gate entry recorded with
    ``members.activity.record``): the same rule checkout applies after a sale."""
    member = members.get(tx, tenant_id=tenant_id, member_id=member_id)
    published = program_service.current(tx, tenant_id=tenant_id)
    return promote_if_earned(tx, member=member, program=published.document, program_version_id=published.id, at=at,
                             reason=reason)


# --- what operators do -------------------------------------------------------------------------


def _tier(program: ProgramDocument, code: str) -> Tier:
    found = next((t for t in program.tiers if t.code == code), None)
    if found is None:
        raise UnknownTier(tier=code)
    return found


def _override_out(member: Member, at: datetime) -> OverrideOut | None:
    o = override_of(member)
    if not o.present:
        return None
    return OverrideOut(floor=o.floor, locked=o.locked, expires_at=o.expires_at, active=o.active(at))


def _describe(data: TierOverrideIn, tx: Tx) -> str:
    parts = []
    if data.tier_code:
        parts.append(f"等级 {data.tier_code}")
    if data.floor:
        parts.append(f"保底 {data.floor}")
    if data.locked:
        parts.append("锁定")
    if data.expires_at:
        parts.append(f"至 {data.expires_at.astimezone(tx.tz):%Y-%m-%d %H:%M}")
    return "，".join(parts)


def set_override(tx: Tx, *, tenant_id: int, member_id: int, data: TierOverrideIn, key: str,
                 actor: str) -> TierStatus:
    """An operator's manual override: explicit floor, lock and expiry (never a silent floor).

    A floor above the member's tier lifts them to it now; ``tier_code`` moves them now, up or
    down, but never below the floor given with it.
    """
    def run() -> TierStatus:
        published = program_service.current(tx, tenant_id=tenant_id)
        program = published.document
        now = tx.now()
        if data.tier_code is None and data.floor is None and not data.locked:
            raise InvalidOverride(reason="没有要设定的内容 / nothing to set: give tier_code, floor or locked")
        if data.expires_at is not None and data.expires_at <= now:
            raise InvalidOverride(reason="到期时间已过 / the expiry is in the past")
        floor = _tier(program, data.floor) if data.floor else None
        wanted = _tier(program, data.tier_code) if data.tier_code else None
        if wanted is not None and floor is not None and wanted.rank < floor.rank:
            raise InvalidOverride(reason=f"等级 {wanted.code} 低于保底 {floor.code} / the tier is below the floor")
        member = members.get(tx, tenant_id=tenant_id, member_id=member_id, for_update=True)
        members.require_active(member)
        before = program.tier(member.tier_code).code
        after = wanted or program.tier(member.tier_code)
        if floor is not None and floor.rank > after.rank:
            after = floor
        member.tier_code = after.code
        member.tier_floor = floor.code if floor else None
        member.tier_locked = data.locked
        member.tier_override_expires_at = data.expires_at
        member.updated_at = now
        history_id = record_change(
            tx, member=member, before=before, after=after.code, cause=TierCause.override,
            reason=f"人工调整（{_describe(data, tx)}）：{data.reason} / manual override: {data.reason}",
            program_version_id=published.id, at=now)
        audit_id = record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.tier_override",
                                subject_type="member", subject_id=member.id,
                                data={**data.model_dump(mode="json"), "tier_before": before, "tier_after": after.code})
        return TierStatus(member_id=member.id, tier_code=after.code, override=_override_out(member, now),
                          history_id=history_id, audit_id=audit_id)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.tier_override",
                                  request={"member_id": member_id, **data.model_dump(mode="json")},
                                  model=TierStatus, run=run)


def clear_override(tx: Tx, *, tenant_id: int, member_id: int, data: TierOverrideClear, key: str,
                   actor: str) -> TierStatus:
    """Remove the override. The tier stays: a member who no longer holds it drops at the next
    review, like everyone else (demotion only at period end)."""
    def run() -> TierStatus:
        published = program_service.current(tx, tenant_id=tenant_id)
        member = members.get(tx, tenant_id=tenant_id, member_id=member_id, for_update=True)
        old = override_of(member)
        if not old.present:
            raise InvalidOverride(reason="会员没有人工调整 / the member has no override")
        now = tx.now()
        tier = published.document.tier(member.tier_code).code
        member.tier_floor, member.tier_locked, member.tier_override_expires_at = None, False, None
        member.updated_at = now
        history_id = record_change(tx, member=member, before=tier, after=tier, cause=TierCause.override,
                                   reason=f"取消人工调整：{data.reason} / override cleared: {data.reason}",
                                   program_version_id=published.id, at=now)
        audit_id = record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.tier_override_clear",
                                subject_type="member", subject_id=member.id,
                                data={"reason": data.reason, "floor": old.floor, "locked": old.locked,
                                      "expires_at": old.expires_at.isoformat() if old.expires_at else None})
        return TierStatus(member_id=member.id, tier_code=tier, override=None, history_id=history_id,
                          audit_id=audit_id)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.tier_override_clear",
                                  request={"member_id": member_id, **data.model_dump(mode="json")},
                                  model=TierStatus, run=run)


def buy_upgrade(tx: Tx, *, tenant_id: int, member_id: int, data: PaidUpgradeIn, key: str,
                actor: str) -> PaidUpgradeOut:
    """付费升级: the member pays the tier's price and holds at least that tier until the period
    ends — promoted now if it is above their tier, kept at the reviews until then.

    One payment (channel + reference) buys one upgrade. Buying the tier one already holds
    is allowed (a guarantee through the next review); buying it again while an earlier
    purchase of it runs starts the new period when the earlier one ends.
    """
    def run() -> PaidUpgradeOut:
        published = program_service.current(tx, tenant_id=tenant_id)
        program = published.document
        tier = _tier(program, data.tier_code)
        if tier.paid is None:
            raise TierNotForSale(tier=tier.code)
        if data.payment.amount != tier.paid.price_fen:
            raise PaymentMismatch(paid=data.payment.amount, payable=tier.paid.price_fen)
        used = tx.session.scalar(select(TierPurchase.id).where(
            TierPurchase.tenant_id == tenant_id, TierPurchase.payment_channel == data.payment.channel,
            TierPurchase.payment_ref == data.payment.reference))
        if used is not None:
            raise PaymentAlreadyUsed(channel=data.payment.channel, reference=data.payment.reference)
        member = members.get(tx, tenant_id=tenant_id, member_id=member_id, for_update=True)
        members.require_active(member)
        now = tx.now()
        override = override_of(member)
        if override.locked and override.active(now):
            raise TierLocked()
        running_until = tx.session.scalar(select(TierPurchase.ends_at).where(
            TierPurchase.tenant_id == tenant_id, TierPurchase.member_id == member.id,
            TierPurchase.tier_code == tier.code, TierPurchase.ends_at > now,
        ).order_by(TierPurchase.ends_at.desc()).limit(1))
        starts = max(now, running_until) if running_until else now
        last_day = starts.astimezone(tx.tz).date() + relativedelta(months=tier.paid.months)
        ends = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=tx.tz).astimezone(UTC)
        row = TierPurchase(tenant_id=tenant_id, member_id=member.id, tier_code=tier.code, starts_at=starts,
                           ends_at=ends, price_fen=tier.paid.price_fen, payment_channel=data.payment.channel,
                           payment_ref=data.payment.reference, program_version_id=published.id, created_by=actor,
                           created_at=now)
        tx.session.add(row)
        tx.session.flush()
        before = program.tier(member.tier_code)
        after = tier if tier.rank > before.rank else before
        if after.code != before.code:
            member.tier_code = after.code
            record_change(tx, member=member, before=before.code, after=after.code, cause=TierCause.paid_upgrade,
                          reason=f"付费升级{tier.name}至 {last_day:%Y-%m-%d} / paid upgrade to {tier.code} "
                                 f"until {last_day:%Y-%m-%d} ({data.payment.channel} {data.payment.reference})",
                          program_version_id=published.id, at=now)
        record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.tier_paid_upgrade", subject_type="member",
                     subject_id=member.id, data={"purchase_id": row.id, "tier": tier.code,
                                                 "payment": data.payment.model_dump(mode="json")})
        return PaidUpgradeOut(id=row.id, member_id=member.id, tier_code=tier.code, starts_at=row.starts_at,
                              ends_at=row.ends_at, price_fen=row.price_fen, payment_channel=row.payment_channel,
                              payment_ref=row.payment_ref, tier_before=before.code, tier_after=after.code)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.tier_paid_upgrade",
                                  request={"member_id": member_id, **data.model_dump(mode="json")},
                                  model=PaidUpgradeOut, run=run)


# --- what members and staff read ---------------------------------------------------------------


def _ref(tier: Tier) -> TierRef:
    return TierRef(code=tier.code, name=tier.name, rank=tier.rank)


def _goal(s: Standing) -> TierGoal:
    return TierGoal(tier=_ref(s.tier), combine=s.rule.combine, window_days=s.rule.window_days, met=s.met,
                    gaps=[TierGap(dimension=g.dimension, required=g.required, current=g.current, missing=g.missing)
                          for g in s.gaps])


def paid_hold(tx: Tx, *, program: ProgramDocument, tenant_id: int, member_id: int, at: datetime) -> PaidHold | None:
    """The highest tier the member has paid for and still holds at ``at``."""
    rows = tx.session.execute(select(TierPurchase.tier_code, TierPurchase.ends_at).where(
        TierPurchase.tenant_id == tenant_id, TierPurchase.member_id == member_id, TierPurchase.starts_at <= at,
        TierPurchase.ends_at > at)).all()
    if not rows:
        return None
    best = max(rows, key=lambda r: (program.tier(r.tier_code).rank, r.ends_at))
    return PaidHold(tier_code=best.tier_code, ends_at=best.ends_at)


def progress(tx: Tx, *, tenant_id: int, member_id: int) -> TierProgress:
    """The member's tier, what the next tier still needs over its window up to today, and what
    keeping their tier at the next review needs (activity so far in that review's window)."""
    member = members.get(tx, tenant_id=tenant_id, member_id=member_id)
    program = program_service.current(tx, tenant_id=tenant_id).document
    now = tx.now()
    growth = ledger_queries.growth(tx, tenant_id=tenant_id, member_id=member_id)
    windows = review_windows(program)
    today = activity(tx, tenant_id=tenant_id, member_id=member_id, at=now, windows=windows, growth=growth)
    period = period_of(program.tier_review, member_activity.local_day(tx, now))
    at_review = member_activity.over_windows(tx, tenant_id=tenant_id, member_id=member_id, until=period.end_day,
                                             windows=windows, growth=growth)
    tier = program.tier(member.tier_code)
    up = next_tier(program, member.tier_code)
    lowest = program.tier(None)
    keep = tier.retention
    return TierProgress(
        member_id=member.id,
        tier=_ref(tier),
        next_tier=_goal(standing(up, up.qualify, today[up.qualify.window_days])) if up else None,
        retention=(_goal(standing(tier, keep, at_review[keep.window_days])) if tier.code != lowest.code else None),
        next_review=NextReview(period=period.key, at=period.ends_at(tx.tz).astimezone(UTC)),
        override=_override_out(member, now),
        paid_upgrade=paid_hold(tx, program=program, tenant_id=tenant_id, member_id=member_id, at=now),
    )


def _cursor(line_id: int) -> str:
    return base64.urlsafe_b64encode(f"h:{line_id}".encode()).decode().rstrip("=")


def _after(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if kind != "h":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(detail="cursor") from None


def history(tx: Tx, *, tenant_id: int, member_id: int, cursor: str | None = None, limit: int = 50) -> TierHistoryPage:
    """The member's tier history, newest first, with an opaque cursor for the next page."""
    members.get(tx, tenant_id=tenant_id, member_id=member_id)
    stmt = (select(TierChange).where(TierChange.tenant_id == tenant_id, TierChange.member_id == member_id)
            .order_by(TierChange.id.desc()).limit(limit + 1))
    if cursor:
        stmt = stmt.where(TierChange.id < _after(cursor))
    rows = tx.session.scalars(stmt).all()
    items = [TierHistoryLine.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return TierHistoryPage(items=items, next_cursor=_cursor(items[-1].id) if len(rows) > limit else None)
