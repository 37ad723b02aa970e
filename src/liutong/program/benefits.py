"""Benefit uses: every use is recorded against its quota period, and the usage rate per
benefit (members who used it ÷ members who hold it) is a headline metric operators watch."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select, update

from liutong.errors import BenefitQuotaUsed
from liutong.ledger.models import Account, AccountKind, OwnerType
from liutong.members.models import Member, MemberStatus
from liutong.program.models import BenefitUse
from liutong.program.rules import Benefit, ProgramDocument

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


def period_key(per: str, day: date) -> str:
    """The quota or limit period a local day falls in: the day, ISO week, month, year, or ever."""
    if per == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return {"day": day.isoformat(), "month": day.strftime("%Y-%m"), "year": day.strftime("%Y"),
            "lifetime": "all"}[per]


def record_use(tx: Tx, *, tenant_id: int, member_id: int, benefit: Benefit, quantity: int, value: int,
               at: datetime, order_id: int | None = None) -> None:
    tx.session.add(BenefitUse(tenant_id=tenant_id, member_id=member_id, benefit_code=benefit.code,
                              period_key=period_key(benefit.period, at.astimezone(tx.tz).date()), quantity=quantity,
                              value=value, order_id=order_id, used_at=at))


def quota_left(tx: Tx, *, tenant_id: int, member_id: int, benefit: Benefit, at: datetime) -> int | None:
    """What is left of the benefit's quota in the current period (None: no quota)."""
    if benefit.quota is None:
        return None
    used = tx.session.scalar(
        select(func.coalesce(func.sum(BenefitUse.quantity), 0)).where(
            BenefitUse.tenant_id == tenant_id, BenefitUse.member_id == member_id,
            BenefitUse.benefit_code == benefit.code,
            BenefitUse.period_key == period_key(benefit.period, at.astimezone(tx.tz).date()),
            BenefitUse.returned_at.is_(None),
        )
    )
    return max(0, benefit.quota - int(used))


def use(tx: Tx, *, tenant_id: int, member_id: int, benefit: Benefit, quantity: int, value: int, at: datetime,
        order_id: int | None = None) -> int | None:
    """Use ``quantity`` of a benefit the member holds, refusing when the period's quota is spent;
    returns what is left of the quota. The caller holds the member's row lock, so two uses at
    the same moment cannot both take the last of a quota."""
    left = quota_left(tx, tenant_id=tenant_id, member_id=member_id, benefit=benefit, at=at)
    if left is not None and left < quantity:
        raise BenefitQuotaUsed(benefit=benefit.name)
    record_use(tx, tenant_id=tenant_id, member_id=member_id, benefit=benefit, quantity=quantity, value=value, at=at,
               order_id=order_id)
    return None if left is None else left - quantity


def return_uses(tx: Tx, *, tenant_id: int, order_id: int, at: datetime) -> int:
    """A refunded order gives back the quota its benefit uses took."""
    return tx.session.execute(
        update(BenefitUse).where(BenefitUse.tenant_id == tenant_id, BenefitUse.order_id == order_id,
                                 BenefitUse.returned_at.is_(None)).values(returned_at=at)
    ).rowcount


class BenefitUsage(BaseModel):
    code: str
    name: str
    kind: str
    holders: int
    users: int
    uses: int
    value: int
    #: users ÷ holders over the period, 0 when nobody holds it
    usage_rate: float


def usage(tx: Tx, *, tenant_id: int, program: ProgramDocument, since: datetime, until: datetime) -> list[BenefitUsage]:
    lowest = program.tier(None).code
    out = []
    for benefit in program.benefits:
        held_by = []
        if benefit.tiers:
            held_by.append(func.coalesce(Member.tier_code, lowest).in_(benefit.tiers))
        if benefit.min_growth is not None:
            held_by.append(Account.balance >= benefit.min_growth)
        holders = tx.session.scalar(
            select(func.count()).select_from(Member)
            .join(Account, and_(Account.tenant_id == Member.tenant_id, Account.owner_type == OwnerType.member.value,
                                Account.owner_id == Member.id, Account.kind == AccountKind.growth.value))
            .where(Member.tenant_id == tenant_id, Member.status == MemberStatus.active.value, or_(*held_by))
        )
        users, uses, value = tx.session.execute(
            select(func.count(func.distinct(BenefitUse.member_id)), func.coalesce(func.sum(BenefitUse.quantity), 0),
                   func.coalesce(func.sum(BenefitUse.value), 0))
            .where(BenefitUse.tenant_id == tenant_id, BenefitUse.benefit_code == benefit.code,
                   BenefitUse.used_at >= since, BenefitUse.used_at < until, BenefitUse.returned_at.is_(None))
        ).one()
        out.append(BenefitUsage(code=benefit.code, name=benefit.name, kind=benefit.kind, holders=holders,
                                users=users, uses=int(uses), value=int(value),
                                usage_rate=round(users / holders, 4) if holders else 0.0))
    return out
