"""Read side of stored value: a member's balance and statement, and what each issuer owes."""

from __future__ import annotations

import base64
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import case, func, select

from liutong.errors import InvalidRequest
from liutong.ledger.models import Account, AccountKind, JournalEntry, OwnerType, Posting
from liutong.organisation.models import LegalEntity
from liutong.storedvalue.models import (
    StoredValueCashOut,
    StoredValueLot,
    StoredValuePayment,
    StoredValueRecharge,
    StoredValueRefund,
)
from liutong.storedvalue.schemas import (
    Holding,
    OutstandingReport,
    OutstandingRow,
    StatementLine,
    StatementPage,
    StoredValueBalance,
)

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

PRINCIPAL = AccountKind.sv_principal.value
BONUS = AccountKind.sv_bonus.value


def _member_accounts(tx: Tx, tenant_id: int, member_id: int) -> dict[str, tuple[int, int]]:
    """kind → (account id, balance) of the member's two stored-value accounts."""
    rows = tx.session.execute(
        select(Account.kind, Account.id, Account.balance).where(
            Account.tenant_id == tenant_id, Account.owner_type == OwnerType.member.value,
            Account.owner_id == member_id, Account.kind.in_([PRINCIPAL, BONUS]))
    ).all()
    return {r.kind: (r.id, r.balance) for r in rows}


def balance(tx: Tx, *, tenant_id: int, member_id: int) -> StoredValueBalance:
    """What the member holds, what of the bonus is spendable now, and by which issuers."""
    accounts = _member_accounts(tx, tenant_id, member_id)
    now = tx.now()
    soon = now + timedelta(days=30)
    lots = tx.session.scalars(
        select(StoredValueLot).where(StoredValueLot.tenant_id == tenant_id, StoredValueLot.member_id == member_id,
                                     (StoredValueLot.principal_remaining > 0) | (StoredValueLot.bonus_remaining > 0))
    ).all()
    spendable = expiring = 0
    by_issuer: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for lot in lots:
        by_issuer[lot.issuer_entity_id][0] += lot.principal_remaining
        by_issuer[lot.issuer_entity_id][1] += lot.bonus_remaining
        if lot.bonus_expires_at is None or lot.bonus_expires_at > now:
            spendable += lot.bonus_remaining
            if lot.bonus_expires_at is not None and lot.bonus_expires_at <= soon:
                expiring += lot.bonus_remaining
    return StoredValueBalance(
        member_id=member_id, principal=accounts.get(PRINCIPAL, (0, 0))[1], bonus=accounts.get(BONUS, (0, 0))[1],
        bonus_spendable=spendable, bonus_expiring_30d=expiring,
        holdings=[Holding(issuer_entity_id=i, principal=p, bonus=b) for i, (p, b) in sorted(by_issuer.items())],
    )


def _encode(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"s:{entry_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "s":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(detail="cursor") from None


def statement(tx: Tx, *, tenant_id: int, member_id: int, cursor: str | None, limit: int) -> StatementPage:
    """储值明细: every entry that moved the member's stored value — recharges, payments,
    refunds, cash-outs, lapses, merges — newest first, each with the principal and bonus it
    moved and both balances right after it.

    Balances after come from the postings themselves (written under the member lock, so they
    are exact): an entry that moved only one of the two accounts carries the other's balance
    from the latest posting before it.
    """
    accounts = _member_accounts(tx, tenant_id, member_id)
    if len(accounts) < 2:
        return StatementPage(items=[], next_cursor=None)
    principal_id, bonus_id = accounts[PRINCIPAL][0], accounts[BONUS][0]
    moved = (
        select(
            Posting.entry_id,
            func.sum(case((Posting.account_id == principal_id, Posting.amount), else_=0)).label("principal"),
            func.sum(case((Posting.account_id == bonus_id, Posting.amount), else_=0)).label("bonus"),
            func.max(Posting.id).label("last_posting"),
        )
        .where(Posting.account_id.in_([principal_id, bonus_id]))
        .group_by(Posting.entry_id)
    )
    if cursor:
        moved = moved.where(Posting.entry_id < _decode(cursor))
    moved = moved.order_by(Posting.entry_id.desc()).limit(limit + 1).subquery()

    def after(account_id: int):
        return func.coalesce(
            select(Posting.balance_after).where(Posting.account_id == account_id, Posting.id <= moved.c.last_posting)
            .order_by(Posting.id.desc()).limit(1).correlate(moved).scalar_subquery(), 0)

    rows = tx.session.execute(
        select(moved.c.entry_id, moved.c.principal, moved.c.bonus, JournalEntry.kind, JournalEntry.effective_at,
               JournalEntry.ref, JournalEntry.memo, after(principal_id).label("principal_after"),
               after(bonus_id).label("bonus_after"))
        .join(JournalEntry, JournalEntry.id == moved.c.entry_id)
        .order_by(moved.c.entry_id.desc())
    ).all()
    page = rows[:limit]
    entry_ids = [r.entry_id for r in page]
    merchants: dict[int, int] = {}
    channels: dict[int, str] = {}
    if entry_ids:
        merchants.update(tx.session.execute(
            select(StoredValuePayment.entry_id, StoredValuePayment.merchant_id)
            .where(StoredValuePayment.entry_id.in_(entry_ids))).all())
        merchants.update(tx.session.execute(
            select(StoredValueRefund.entry_id, StoredValuePayment.merchant_id)
            .join(StoredValuePayment, StoredValuePayment.id == StoredValueRefund.payment_id)
            .where(StoredValueRefund.entry_id.in_(entry_ids))).all())
        for model in (StoredValueRecharge, StoredValueCashOut):
            channels.update(tx.session.execute(
                select(model.entry_id, model.channel).where(model.entry_id.in_(entry_ids))).all())
    items = [
        StatementLine(entry_id=r.entry_id, kind=r.kind, effective_at=r.effective_at, principal=int(r.principal),
                      bonus=int(r.bonus), principal_after=int(r.principal_after), bonus_after=int(r.bonus_after),
                      ref=r.ref, memo=r.memo, merchant_id=merchants.get(r.entry_id),
                      channel=channels.get(r.entry_id))
        for r in page
    ]
    return StatementPage(items=items, next_cursor=_encode(items[-1].entry_id) if len(rows) > limit else None)


def outstanding(tx: Tx, *, tenant_id: int, as_of: datetime | None = None) -> OutstandingReport:
    """Principal and bonus outstanding per issuing entity at ``as_of`` (business time; now when
    None), read from the issuers' ledger accounts: the base that 单用途预付卡 rules apply an
    escrow ratio to (principal; bonus is shown apart)."""
    as_of = as_of or tx.now()
    totals = (
        select(Account.owner_id, Account.kind, func.sum(Posting.amount).label("total"))
        .join(Posting, Posting.account_id == Account.id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(Account.tenant_id == tenant_id, Account.owner_type == OwnerType.entity.value,
               Account.kind.in_([AccountKind.sv_issued.value, AccountKind.sv_bonus_issued.value]),
               JournalEntry.effective_at <= as_of)
        .group_by(Account.owner_id, Account.kind)
    )
    owed: dict[int, dict[str, int]] = defaultdict(dict)
    for owner_id, kind, total in tx.session.execute(totals).all():
        owed[owner_id][kind] = -int(total)
    entities = tx.session.scalars(
        select(LegalEntity).where(LegalEntity.tenant_id == tenant_id).order_by(LegalEntity.code)).all()
    rows = [
        OutstandingRow(entity_id=e.id, entity_code=e.code, entity_name=e.name,
                       principal=owed[e.id].get(AccountKind.sv_issued.value, 0),
                       bonus=owed[e.id].get(AccountKind.sv_bonus_issued.value, 0))
        for e in entities
    ]
    return OutstandingReport(as_of=as_of, rows=rows, principal=sum(r.principal for r in rows),
                             bonus=sum(r.bonus for r in rows))
