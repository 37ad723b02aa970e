"""Read side of the ledger: balances, lots and history for a member (merged members included)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from liutong.errors import InvalidRequest
from liutong.ledger.models import Account, AccountKind, JournalEntry, LotStatus, OwnerType, PointsLot, Posting
from liutong.ledger.schemas import Balances, HistoryLine, HistoryPage, LotOut

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


def balances(tx: Tx, *, tenant_id: int, member_id: int) -> Balances:
    rows = dict(
        tx.session.execute(
            select(Account.kind, Account.balance).where(
                Account.tenant_id == tenant_id, Account.owner_type == OwnerType.member.value,
                Account.owner_id == member_id,
            )
        ).all()
    )
    soon = tx.now() + timedelta(days=30)
    expiring = tx.session.scalar(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.tenant_id == tenant_id, PointsLot.member_id == member_id,
            PointsLot.status == LotStatus.active.value, PointsLot.expires_at <= soon,
        )
    )
    return Balances(
        member_id=member_id,
        points=rows.get(AccountKind.points.value, 0),
        points_pending=rows.get(AccountKind.points_pending.value, 0),
        growth=rows.get(AccountKind.growth.value, 0),
        sv_principal=rows.get(AccountKind.sv_principal.value, 0),
        sv_bonus=rows.get(AccountKind.sv_bonus.value, 0),
        points_expiring_30d=int(expiring),
    )


def lots(tx: Tx, *, tenant_id: int, member_id: int, open_only: bool = True) -> list[LotOut]:
    """The member's lots in the order they will be spent (what expires when)."""
    stmt = select(PointsLot).where(PointsLot.tenant_id == tenant_id, PointsLot.member_id == member_id)
    if open_only:
        stmt = stmt.where(PointsLot.status.in_([LotStatus.active.value, LotStatus.pending.value]))
    stmt = stmt.order_by(PointsLot.expires_at.is_(None), PointsLot.expires_at, PointsLot.earned_at, PointsLot.id)
    return [LotOut.model_validate(lot, from_attributes=True) for lot in tx.session.scalars(stmt)]


def _encode(posting_id: int) -> str:
    return base64.urlsafe_b64encode(f"p:{posting_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "p":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(detail="cursor") from None


def history(tx: Tx, *, tenant_id: int, member_ids: list[int], cursor: str | None, limit: int) -> HistoryPage:
    """Postings on the member's accounts, newest first, with an opaque cursor."""
    stmt = (
        select(
            Posting.id, Posting.entry_id, Posting.asset, Posting.amount, Posting.balance_after,
            Account.kind.label("account_kind"), JournalEntry.kind.label("entry_kind"), JournalEntry.effective_at,
            JournalEntry.memo, JournalEntry.ref, JournalEntry.reverses_id,
        )
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(Account.tenant_id == tenant_id, Account.owner_type == OwnerType.member.value,
               Account.owner_id.in_(member_ids))
        .order_by(Posting.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        stmt = stmt.where(Posting.id < _decode(cursor))
    rows = tx.session.execute(stmt).all()
    items = [
        HistoryLine(posting_id=r.id, entry_id=r.entry_id, entry_kind=r.entry_kind, account_kind=r.account_kind,
                    asset=r.asset, amount=r.amount, balance_after=r.balance_after, effective_at=r.effective_at,
                    memo=r.memo, ref=r.ref, reverses_id=r.reverses_id)
        for r in rows[:limit]
    ]
    return HistoryPage(items=items, next_cursor=_encode(items[-1].posting_id) if len(rows) > limit else None)


def _growth_query(tenant_id: int, member_id: int):
    return select(Account.balance).where(
        Account.tenant_id == tenant_id, Account.owner_type == OwnerType.member.value, Account.owner_id == member_id,
        Account.kind == AccountKind.growth.value,
    )


def growth(tx: Tx, *, tenant_id: int, member_id: int) -> int:
    """The member's growth value (成长值)."""
    return int(tx.session.scalar(_growth_query(tenant_id, member_id)) or 0)


def growth_and_spendable(tx: Tx, *, tenant_id: int, member_id: int, at: datetime) -> tuple[int, int]:
    """(growth, spendable points at ``at``) in one round trip — what a checkout prices with.

    Spendable are the active lots not yet past their expiry: a lot that has lapsed is not
    spendable even before the expiry job has posted it."""
    spendable = select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
        PointsLot.tenant_id == tenant_id, PointsLot.member_id == member_id,
        PointsLot.status == LotStatus.active.value,
        (PointsLot.expires_at.is_(None)) | (PointsLot.expires_at > at),
    ).scalar_subquery()
    row = tx.session.execute(select(_growth_query(tenant_id, member_id).scalar_subquery(), spendable)).one()
    return int(row[0] or 0), int(row[1])
