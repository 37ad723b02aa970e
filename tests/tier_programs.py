"""A theme park's tier ladder for the tier tests: earned and kept by spend or visits in the year."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from liutong.members import activity
from liutong.members.models import Member, TierChange
from liutong.program import service as program_service
from liutong.program.defaults import default_program
from liutong.program.rules import ProgramDocument
from liutong.program.schemas import ProgramPublish
from tests.conftest import key, register

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The 2026 year-end review looks from midnight of 1 January 2027 in Shanghai.
YEAR_END_2026 = datetime(2027, 1, 1, tzinfo=SHANGHAI)
MID_2026 = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)


def park_ladder(**review) -> ProgramDocument:
    """普通 → 银卡 → 金卡 → 钻石: earned by spend or visits over 365 days, kept by less."""
    document = default_program().model_dump(mode="json")
    document["tiers"] = [
        {"code": "normal", "name": "普通会员", "rank": 0},
        {"code": "silver", "name": "银卡", "rank": 1, "earn_multiplier": "1.2",
         "qualify": {"combine": "any", "window_days": 365, "spend_fen": 500_000, "visits": 10},
         "retain": {"combine": "any", "window_days": 365, "spend_fen": 300_000, "visits": 6}},
        {"code": "gold", "name": "金卡", "rank": 2, "earn_multiplier": "1.5",
         "qualify": {"combine": "any", "window_days": 365, "spend_fen": 2_000_000, "visits": 30},
         "retain": {"combine": "any", "window_days": 365, "spend_fen": 1_200_000, "visits": 20},
         "paid": {"price_fen": 99_900, "months": 12}},
        {"code": "diamond", "name": "钻石卡", "rank": 3, "earn_multiplier": "2",
         "qualify": {"combine": "any", "window_days": 365, "spend_fen": 5_000_000, "visits": 60},
         "retain": {"combine": "any", "window_days": 365, "spend_fen": 3_000_000, "visits": 40}},
    ]
    if review:
        document["tier_review"] = review
    return ProgramDocument.model_validate(document)


def publish(runtime, world, document: ProgramDocument) -> int:
    with runtime.transaction() as tx:
        return program_service.publish(tx, tenant_id=world.tenant_id, key=key(), actor="test",
                                       data=ProgramPublish(document=document, note="乐园等级体系")).id


def member_at(runtime, world, phone: str, tier: str | None, **override) -> int:
    """A member who holds ``tier`` (as the arrangement of a test, not through the services)."""
    with runtime.transaction() as tx:
        m = register(tx, world, phone).id
        tx.session.execute(update(Member).where(Member.id == m).values(tier_code=tier, **override))
    return m


def spend(runtime, world, member_id: int, fen: int, on: date, *, visits: int = 1) -> None:
    """Activity as the rollup holds it: ``fen`` spent over ``visits`` days from ``on``."""
    with runtime.transaction() as tx:
        for i in range(visits):
            day = date.fromordinal(on.toordinal() + i)
            activity.record(tx, tenant_id=world.tenant_id, member_id=member_id,
                            at=datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI),
                            spend_fen=fen // visits + (fen % visits if i == 0 else 0), purchases=1, visit=True)


def tier_of(runtime, member_id: int) -> str | None:
    with runtime.transaction() as tx:
        return tx.session.scalar(select(Member.tier_code).where(Member.id == member_id))


def history_of(runtime, member_id: int) -> list[tuple]:
    with runtime.transaction() as tx:
        return [tuple(r) for r in tx.session.execute(
            select(TierChange.from_tier, TierChange.to_tier, TierChange.cause, TierChange.reason)
            .where(TierChange.member_id == member_id).order_by(TierChange.id))]
