"""Keeping a member's tier: immediate promotion after activity, with history and events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from liutong.checkout.models import Order, Refund
from liutong.jobs import service as jobs
from liutong.ledger import queries as ledger_queries
from liutong.members.models import Member, TierChange
from liutong.program.rules import ProgramDocument
from liutong.program.tiers import Activity, Override, earned_tier, promotion

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


def activity(tx: Tx, *, tenant_id: int, member_id: int, since: datetime, growth: int) -> Activity:
    """Spend (net of refunds), visits (local days with a purchase) and points earned since."""
    orders = tx.session.execute(
        select(Order.id, Order.paid, Order.points_earned, Order.occurred_at)
        .where(Order.tenant_id == tenant_id, Order.member_id == member_id, Order.occurred_at >= since)
    ).all()
    refunds = tx.session.execute(
        select(func.coalesce(func.sum(Refund.paid_back), 0), func.coalesce(func.sum(Refund.points_clawed), 0))
        .join(Order, Order.id == Refund.order_id)
        .where(Order.tenant_id == tenant_id, Order.member_id == member_id, Order.occurred_at >= since)
    ).one()
    days = {o.occurred_at.astimezone(tx.tz).date() for o in orders}
    return Activity(spend_fen=sum(o.paid for o in orders) - int(refunds[0]), visits=len(days), growth=growth,
                    points_earned=sum(o.points_earned for o in orders) - int(refunds[1]))


def promote_if_earned(tx: Tx, *, member: Member, program: ProgramDocument, program_version_id: int,
                      at: datetime, reason: str) -> str | None:
    """Promote the member at once when their activity earns a higher tier; returns the new tier.

    The member row is re-read under a lock, so two purchases committing at the same moment
    promote once and write one history line.
    """
    tx.session.refresh(member, with_for_update=True)
    override = Override(floor=member.tier_floor, locked=member.tier_locked,
                        expires_at=member.tier_override_expires_at)
    current = program.tier(member.tier_code)
    above = [t for t in program.tiers if t.rank > current.rank]
    if not above or (override.locked and override.active(at)):
        return None  # nothing to promote to: skip reading the member's activity
    # read again under the member lock, not taken from the quote: a purchase committing at the
    # same moment may have added growth since
    growth = ledger_queries.balances(tx, tenant_id=member.tenant_id, member_id=member.id).growth
    windows = {t.qualify.window_days for t in above}
    activity_for = {days: activity(tx, tenant_id=member.tenant_id, member_id=member.id,
                                   since=at - timedelta(days=days), growth=growth) for days in windows}
    target = promotion(program, current=member.tier_code, earned=earned_tier(program, activity_for, among=above),
                       override=override, at=at)
    if target is None:
        return None
    before = program.tier(member.tier_code).code
    member.tier_code = target.code
    tx.session.add(TierChange(tenant_id=member.tenant_id, member_id=member.id, from_tier=before, to_tier=target.code,
                              reason=reason, program_version_id=program_version_id, at=at))
    jobs.emit(tx, tenant_id=member.tenant_id, topic="tier_changed",
              payload={"member_id": member.id, "from": before, "to": target.code, "reason": reason})
    return target.code
