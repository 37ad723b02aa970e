from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, BigId, UTCDateTime


class Asset(StrEnum):
    """What an account counts. Postings of one entry sum to zero per asset."""

    points = "POINTS"
    cny = "CNY"  # fen
    growth = "GROWTH"


class OwnerType(StrEnum):
    member = "member"
    entity = "entity"
    merchant = "merchant"
    system = "system"


class AccountKind(StrEnum):
    # a member's own accounts (cached balance, never below zero)
    points = "points"
    points_pending = "points_pending"
    growth = "growth"
    sv_principal = "sv_principal"  # 储值本金
    sv_bonus = "sv_bonus"  # 赠送金
    # an issuing entity's points accounts: liability = -(issued + redeemed + expired)
    points_issued = "points_issued"
    points_redeemed = "points_redeemed"
    points_expired = "points_expired"
    # an entity's stored-value counterparts and the settlement accounts of entities/merchants:
    # stored value outstanding = -(sv_issued) principal and -(sv_bonus_issued) bonus
    sv_issued = "sv_issued"
    sv_bonus_issued = "sv_bonus_issued"
    receivable = "receivable"
    payable = "payable"
    # tenant-wide system accounts
    growth_issued = "growth_issued"
    payment_clearing = "payment_clearing"
    adjustments = "adjustments"


ASSET_OF: dict[AccountKind, Asset] = {
    AccountKind.points: Asset.points,
    AccountKind.points_pending: Asset.points,
    AccountKind.points_issued: Asset.points,
    AccountKind.points_redeemed: Asset.points,
    AccountKind.points_expired: Asset.points,
    AccountKind.growth: Asset.growth,
    AccountKind.growth_issued: Asset.growth,
    AccountKind.sv_principal: Asset.cny,
    AccountKind.sv_bonus: Asset.cny,
    AccountKind.sv_issued: Asset.cny,
    AccountKind.sv_bonus_issued: Asset.cny,
    AccountKind.receivable: Asset.cny,
    AccountKind.payable: Asset.cny,
    AccountKind.payment_clearing: Asset.cny,
    AccountKind.adjustments: Asset.cny,
}

#: Member accounts keep a locked, cached balance that may not fall below zero. Entity,
#: merchant and system accounts are hot aggregates: append-only postings, balance = Σ postings.
MEMBER_KINDS = (
    AccountKind.points,
    AccountKind.points_pending,
    AccountKind.growth,
    AccountKind.sv_principal,
    AccountKind.sv_bonus,
)
#: Accounts whose balance is the sum of their points lots; only lot operations move them.
LOT_BACKED = (AccountKind.points, AccountKind.points_pending)
#: Stored-value accounts: their balances are the sums of stored-value lots (``storedvalue``),
#: so only the stored-value service moves them.
STORED_VALUE_KINDS = (AccountKind.sv_principal, AccountKind.sv_bonus, AccountKind.sv_issued,
                      AccountKind.sv_bonus_issued)


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "owner_type", "owner_id", "kind"),
        CheckConstraint("min_balance IS NULL OR balance >= min_balance", name="balance_floor"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    asset: Mapped[str] = mapped_column(String(8))
    #: Cached balance, kept only when ``tracks_balance``; always equal to Σ postings.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    tracks_balance: Mapped[bool] = mapped_column(Boolean)
    #: The lowest balance the rules allow; NULL means unbounded (aggregates).
    min_balance: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JournalEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_ledger_entries_tenant_effective", "tenant_id", "effective_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    idempotency_key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(24))
    #: The member the entry is about, when there is one (history queries, distribution key).
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    #: Business time (statements are cut by it) and the time it was written.
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    memo: Mapped[str | None] = mapped_column(String(200))
    ref: Mapped[str | None] = mapped_column(String(64))


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        Index("ix_ledger_postings_account", "account_id", "id"),
        CheckConstraint("amount <> 0", name="nonzero"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    asset: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    #: Running balance after this posting, for accounts that track one.
    balance_after: Mapped[int | None] = mapped_column(BigInteger)


class LotStatus(StrEnum):
    pending = "pending"
    active = "active"
    spent = "spent"
    expired = "expired"
    reversed = "reversed"


class PointsLot(Base):
    """批次: one earning of points, with its issuer, expiry and what remains of it."""

    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        CheckConstraint("amount > 0", name="positive"),
        Index("ix_points_lots_member_open", "tenant_id", "member_id", "status", "expires_at"),
        Index("ix_points_lots_due", "tenant_id", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    issuer_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    vests_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source_entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))


class LotMovement(Base):
    """How an entry changed a lot: drawn by a spend, restored by a reversal, expired, vested."""

    __tablename__ = "points_lot_movements"
    __table_args__ = (CheckConstraint("amount <> 0", name="nonzero"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"), index=True)
    #: Signed change of the lot's ``remaining`` (negative when drawn, positive when restored).
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))


class ExpiryReminder(Base):
    """A member was told that ``points`` expire on ``expires_on`` (the tenant's local date),
    ``days_before`` days ahead. The key makes each reminder happen once, however often the
    reminder job runs; the message itself is the ``points_expiring`` outbox event written with it.

    No foreign keys: a reminder run writes one row per member reminded, and the rows are only
    ever read back by this key.
    """

    __tablename__ = "points_expiry_reminders"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    expires_on: Mapped[date] = mapped_column(Date, primary_key=True)
    days_before: Mapped[int] = mapped_column(Integer, primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
