"""``liutong ledger verify``: every ledger invariant, checked set-wise on a live database.

Each check is one query that returns the rows that break it (at most ``SAMPLE`` of them), so
the report says what is wrong and where, not just that something is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from liutong.ledger.models import (
    LOT_BACKED,
    Account,
    AccountKind,
    JournalEntry,
    LotMovement,
    LotStatus,
    OwnerType,
    PointsLot,
    Posting,
)
from liutong.storedvalue.models import StoredValueLot, StoredValueMovement

SAMPLE = 20


@dataclass
class Check:
    name: str
    description: str
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _rows(session: Session, stmt) -> list[str]:
    return [", ".join(f"{k}={v}" for k, v in row._mapping.items()) for row in session.execute(stmt.limit(SAMPLE))]


def verify(session: Session, tenant_id: int | None = None) -> list[Check]:
    def scoped(stmt, column):
        return stmt.where(column == tenant_id) if tenant_id is not None else stmt

    checks: list[Check] = []

    def check(name: str, description: str, stmt) -> None:
        checks.append(Check(name, description, _rows(session, stmt)))

    check(
        "entries_balance",
        "每笔分录按资产借贷平衡 / postings of each entry sum to zero per asset",
        scoped(
            select(Posting.entry_id, Posting.asset, func.sum(Posting.amount).label("total"))
            .group_by(Posting.entry_id, Posting.asset)
            .having(func.sum(Posting.amount) != 0),
            Posting.tenant_id,
        ),
    )
    check(
        "entries_have_postings",
        "每笔分录至少两条记账 / every entry has at least two postings",
        scoped(
            select(JournalEntry.id, func.count(Posting.id).label("postings"))
            .outerjoin(Posting, Posting.entry_id == JournalEntry.id)
            .group_by(JournalEntry.id)
            .having(func.count(Posting.id) < 2),
            JournalEntry.tenant_id,
        ),
    )
    check(
        "posting_asset",
        "记账资产与账户资产一致 / each posting is in its account's asset",
        scoped(
            select(Posting.id, Posting.asset, Account.asset.label("account_asset"))
            .join(Account, Account.id == Posting.account_id)
            .where(Posting.asset != Account.asset),
            Posting.tenant_id,
        ),
    )
    sums = (
        select(Posting.account_id, func.sum(Posting.amount).label("total")).group_by(Posting.account_id).subquery()
    )
    check(
        "cached_balances",
        "缓存余额等于记账合计 / cached balance equals the sum of postings",
        scoped(
            select(Account.id, Account.kind, Account.balance, func.coalesce(sums.c.total, 0).label("postings"))
            .outerjoin(sums, sums.c.account_id == Account.id)
            .where(Account.tracks_balance.is_(True), Account.balance != func.coalesce(sums.c.total, 0)),
            Account.tenant_id,
        ),
    )
    check(
        "balance_floors",
        "余额不低于规则允许的下限 / no balance below what the rules allow",
        scoped(
            select(Account.id, Account.kind, Account.balance, Account.min_balance).where(
                Account.min_balance.is_not(None), Account.balance < Account.min_balance
            ),
            Account.tenant_id,
        ),
    )
    open_status = {
        AccountKind.points.value: LotStatus.active.value,
        AccountKind.points_pending.value: LotStatus.pending.value,
    }
    for kind in LOT_BACKED:
        lot_sums = (
            select(PointsLot.account_id, func.sum(PointsLot.remaining).label("remaining"))
            .where(PointsLot.status == open_status[kind.value])
            .group_by(PointsLot.account_id)
            .subquery()
        )
        check(
            f"lots_match_{kind.value}",
            f"{kind.value} 余额等于批次剩余合计 / {kind.value} balance equals the remaining points of its lots",
            scoped(
                select(Account.id, Account.owner_id.label("member_id"), Account.balance,
                       func.coalesce(lot_sums.c.remaining, 0).label("lots"))
                .outerjoin(lot_sums, lot_sums.c.account_id == Account.id)
                .where(Account.kind == kind.value, Account.balance != func.coalesce(lot_sums.c.remaining, 0)),
                Account.tenant_id,
            ),
        )
    check(
        "lot_ranges",
        "批次剩余在 0 与发放量之间，状态与剩余一致 / lot remaining within 0..amount and consistent with status",
        scoped(
            select(PointsLot.id, PointsLot.status, PointsLot.amount, PointsLot.remaining).where(
                or_(
                    PointsLot.remaining < 0,
                    PointsLot.remaining > PointsLot.amount,
                    and_(PointsLot.status.in_([LotStatus.spent.value, LotStatus.expired.value,
                                                LotStatus.reversed.value]), PointsLot.remaining != 0),
                    and_(PointsLot.status == LotStatus.active.value, PointsLot.remaining == 0),
                )
            ),
            PointsLot.tenant_id,
        ),
    )
    moved = select(LotMovement.lot_id, func.sum(LotMovement.amount).label("moved")).group_by(LotMovement.lot_id).subquery()
    check(
        "lot_movements",
        "批次剩余 = 发放量 + 变动合计 / lot remaining equals amount plus its movements",
        scoped(
            select(PointsLot.id, PointsLot.amount, PointsLot.remaining, func.coalesce(moved.c.moved, 0).label("moved"))
            .outerjoin(moved, moved.c.lot_id == PointsLot.id)
            .where(PointsLot.remaining != PointsLot.amount + func.coalesce(moved.c.moved, 0)),
            PointsLot.tenant_id,
        ),
    )
    entity_points = (
        select(Account.tenant_id, Account.owner_id.label("entity_id"), (-func.sum(Posting.amount)).label("liability"))
        .join(Posting, Posting.account_id == Account.id)
        .where(Account.owner_type == OwnerType.entity.value, Account.asset == "POINTS")
        .group_by(Account.tenant_id, Account.owner_id)
        .subquery()
    )
    lot_liability = (
        select(PointsLot.tenant_id, PointsLot.issuer_entity_id.label("entity_id"),
               func.sum(PointsLot.remaining).label("outstanding"))
        .where(PointsLot.status.in_([LotStatus.active.value, LotStatus.pending.value]))
        .group_by(PointsLot.tenant_id, PointsLot.issuer_entity_id)
        .subquery()
    )
    check(
        "issuer_liability",
        "各发行主体积分负债等于其未用批次 / each issuer's points liability equals its open lots",
        scoped(
            select(entity_points.c.entity_id, entity_points.c.liability,
                   func.coalesce(lot_liability.c.outstanding, 0).label("open_lots"))
            .outerjoin(lot_liability, and_(lot_liability.c.entity_id == entity_points.c.entity_id,
                                           lot_liability.c.tenant_id == entity_points.c.tenant_id))
            .where(entity_points.c.liability != func.coalesce(lot_liability.c.outstanding, 0)),
            entity_points.c.tenant_id,
        ),
    )
    check(
        "idempotency_keys_unique",
        "幂等键唯一 / idempotency keys are unique per tenant",
        scoped(
            select(JournalEntry.tenant_id, JournalEntry.idempotency_key, func.count().label("entries"))
            .group_by(JournalEntry.tenant_id, JournalEntry.idempotency_key)
            .having(func.count() > 1),
            JournalEntry.tenant_id,
        ),
    )
    reversal = aliased(JournalEntry)
    check(
        "reversed_once",
        "每笔分录至多整笔冲正一次 / an entry is reversed in full at most once",
        scoped(
            select(reversal.reverses_id, func.count().label("reversals"))
            .where(reversal.reverses_id.is_not(None), reversal.kind == "reversal")
            .group_by(reversal.reverses_id)
            .having(func.count() > 1),
            reversal.tenant_id,
        ),
    )
    drawn = (
        select(LotMovement.entry_id, LotMovement.lot_id, (-func.sum(LotMovement.amount)).label("drawn"))
        .where(LotMovement.kind == "spend")
        .group_by(LotMovement.entry_id, LotMovement.lot_id)
        .subquery()
    )
    restored = (
        select(reversal.reverses_id.label("entry_id"), LotMovement.lot_id, func.sum(LotMovement.amount).label("back"))
        .join(reversal, reversal.id == LotMovement.entry_id)
        .where(LotMovement.kind == "restore")
        .group_by(reversal.reverses_id, LotMovement.lot_id)
        .subquery()
    )
    check(
        "restores_within_spend",
        "退回的积分不超过当初从该批次使用的 / points put back never exceed what a spend drew from each lot",
        scoped(
            select(JournalEntry.id.label("spend"), restored.c.lot_id, restored.c.back,
                   func.coalesce(drawn.c.drawn, 0).label("drawn"))
            .join(restored, restored.c.entry_id == JournalEntry.id)
            .outerjoin(drawn, and_(drawn.c.entry_id == restored.c.entry_id, drawn.c.lot_id == restored.c.lot_id))
            .where(restored.c.back > func.coalesce(drawn.c.drawn, 0)),
            JournalEntry.tenant_id,
        ),
    )
    check(
        "postings_tenant",
        "记账与账户同属一个租户 / postings stay inside their account's tenant",
        scoped(
            select(Posting.id, Posting.tenant_id, Account.tenant_id.label("account_tenant"))
            .join(Account, Account.id == Posting.account_id)
            .where(Posting.tenant_id != Account.tenant_id),
            Posting.tenant_id,
        ),
    )
    _stored_value_checks(check, scoped)
    return checks


def _stored_value_checks(check, scoped) -> None:
    """Stored value: members' balances are their lots, and the lots are the issuers' liability."""
    for kind, remaining in ((AccountKind.sv_principal, StoredValueLot.principal_remaining),
                            (AccountKind.sv_bonus, StoredValueLot.bonus_remaining)):
        lot_sums = (
            select(StoredValueLot.tenant_id, StoredValueLot.member_id, func.sum(remaining).label("remaining"))
            .group_by(StoredValueLot.tenant_id, StoredValueLot.member_id)
            .subquery()
        )
        check(
            f"sv_lots_match_{kind.value}",
            f"{kind.value} 余额等于储值批次剩余合计 / {kind.value} balance equals what its stored-value lots hold",
            scoped(
                select(Account.id, Account.owner_id.label("member_id"), Account.balance,
                       func.coalesce(lot_sums.c.remaining, 0).label("lots"))
                .outerjoin(lot_sums, and_(lot_sums.c.member_id == Account.owner_id,
                                          lot_sums.c.tenant_id == Account.tenant_id))
                .where(Account.kind == kind.value, Account.owner_type == OwnerType.member.value,
                       Account.balance != func.coalesce(lot_sums.c.remaining, 0)),
                Account.tenant_id,
            ),
        )
    for kind, remaining in ((AccountKind.sv_issued, StoredValueLot.principal_remaining),
                            (AccountKind.sv_bonus_issued, StoredValueLot.bonus_remaining)):
        owed = (
            select(Account.tenant_id, Account.owner_id.label("entity_id"),
                   (-func.coalesce(func.sum(Posting.amount), 0)).label("liability"))
            .outerjoin(Posting, Posting.account_id == Account.id)
            .where(Account.owner_type == OwnerType.entity.value, Account.kind == kind.value)
            .group_by(Account.tenant_id, Account.owner_id)
            .subquery()
        )
        held = (
            select(StoredValueLot.tenant_id, StoredValueLot.issuer_entity_id.label("entity_id"),
                   func.sum(remaining).label("held"))
            .group_by(StoredValueLot.tenant_id, StoredValueLot.issuer_entity_id)
            .subquery()
        )
        check(
            f"sv_issuer_{kind.value}",
            f"各发行主体储值负债（{kind.value}）等于会员所持批次 / each issuer's stored-value liability "
            f"({kind.value}) equals what members hold of it",
            scoped(
                select(owed.c.entity_id, owed.c.liability, func.coalesce(held.c.held, 0).label("held"))
                .outerjoin(held, and_(held.c.entity_id == owed.c.entity_id, held.c.tenant_id == owed.c.tenant_id))
                .where(owed.c.liability != func.coalesce(held.c.held, 0)),
                owed.c.tenant_id,
            ),
        )
    moved = (
        select(StoredValueMovement.lot_id, func.sum(StoredValueMovement.principal).label("principal"),
               func.sum(StoredValueMovement.bonus).label("bonus"))
        .group_by(StoredValueMovement.lot_id)
        .subquery()
    )
    check(
        "sv_lot_movements",
        "储值批次剩余 = 充值额 + 变动合计，且在 0 与充值额之间 / a stored-value lot's remaining equals what it was "
        "given plus its movements, within 0 and that",
        scoped(
            select(StoredValueLot.id, StoredValueLot.principal, StoredValueLot.principal_remaining,
                   StoredValueLot.bonus, StoredValueLot.bonus_remaining)
            .outerjoin(moved, moved.c.lot_id == StoredValueLot.id)
            .where(or_(
                StoredValueLot.principal_remaining != StoredValueLot.principal + func.coalesce(moved.c.principal, 0),
                StoredValueLot.bonus_remaining != StoredValueLot.bonus + func.coalesce(moved.c.bonus, 0),
                StoredValueLot.principal_remaining < 0, StoredValueLot.principal_remaining > StoredValueLot.principal,
                StoredValueLot.bonus_remaining < 0, StoredValueLot.bonus_remaining > StoredValueLot.bonus,
            )),
            StoredValueLot.tenant_id,
        ),
    )
    paid = (
        select(StoredValueMovement.payment_id, StoredValueMovement.lot_id,
               func.sum(case((StoredValueMovement.kind == "pay", -StoredValueMovement.principal), else_=0))
               .label("drawn_principal"),
               func.sum(case((StoredValueMovement.kind == "pay", -StoredValueMovement.bonus), else_=0))
               .label("drawn_bonus"),
               func.sum(case((StoredValueMovement.kind == "refund", StoredValueMovement.principal), else_=0))
               .label("back_principal"),
               func.sum(case((StoredValueMovement.kind == "refund", StoredValueMovement.bonus), else_=0))
               .label("back_bonus"),
               func.min(StoredValueMovement.tenant_id).label("tenant_id"))
        .where(StoredValueMovement.payment_id.is_not(None))
        .group_by(StoredValueMovement.payment_id, StoredValueMovement.lot_id)
        .subquery()
    )
    check(
        "sv_refunds_within_payment",
        "储值退回不超过该笔支付从各批次扣除的本金与赠送金 / refunds never give back more principal or bonus than "
        "a payment took from each lot",
        scoped(
            select(paid.c.payment_id, paid.c.lot_id, paid.c.drawn_principal, paid.c.back_principal,
                   paid.c.drawn_bonus, paid.c.back_bonus)
            .where(or_(paid.c.back_principal > paid.c.drawn_principal, paid.c.back_bonus > paid.c.drawn_bonus,
                       paid.c.back_principal < 0, paid.c.back_bonus < 0)),
            paid.c.tenant_id,
        ),
    )
