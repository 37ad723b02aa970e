"""Stored-value tables. The ledger holds the balances (a member's ``sv_principal`` and
``sv_bonus`` accounts, each issuer's ``sv_issued`` and ``sv_bonus_issued``); these tables hold
what the balances are made of (lots, by issuer) and the business facts behind each entry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, BigId, UTCDateTime


class StoredValueRecharge(Base):
    """充值: one external payment turned into stored value. One channel reference recharges once."""

    __tablename__ = "sv_recharges"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "reference"),
        Index("ix_sv_recharges_member", "tenant_id", "member_id", "occurred_at"),
        CheckConstraint("amount > 0 AND bonus >= 0", name="amounts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    issuer_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"))
    #: The merchant whose till sold it, when one did.
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    program_version_id: Mapped[int] = mapped_column(ForeignKey("program_versions.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger)
    bonus_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredValueLot(Base):
    """储值批次: what remains of one recharge's principal and bonus, and who issued them.

    A member's ``sv_principal`` balance is the sum of their lots' ``principal_remaining`` and
    ``sv_bonus`` the sum of ``bonus_remaining``; an issuer's outstanding liability is the sum
    over the lots it issued.
    """

    __tablename__ = "sv_lots"
    __table_args__ = (
        CheckConstraint("principal_remaining >= 0 AND principal_remaining <= principal", name="principal_in_range"),
        CheckConstraint("bonus_remaining >= 0 AND bonus_remaining <= bonus", name="bonus_in_range"),
        Index("ix_sv_lots_member", "tenant_id", "member_id", "id"),
        Index("ix_sv_lots_bonus_due", "tenant_id", "bonus_expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    issuer_entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"))
    recharge_id: Mapped[int] = mapped_column(ForeignKey("sv_recharges.id"), unique=True)
    principal: Mapped[int] = mapped_column(BigInteger)
    principal_remaining: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger)
    bonus_remaining: Mapped[int] = mapped_column(BigInteger)
    bonus_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredValuePayment(Base):
    """储值支付: stored value paying (part of) a bill at a merchant, as settlement will read it."""

    __tablename__ = "sv_payments"
    __table_args__ = (
        CheckConstraint("amount > 0 AND principal >= 0 AND bonus >= 0 AND principal + bonus = amount", name="parts"),
        Index("ix_sv_payments_member", "tenant_id", "member_id", "occurred_at"),
        Index("ix_sv_payments_merchant", "tenant_id", "merchant_id", "occurred_at"),
        Index("ix_sv_payments_order", "tenant_id", "order_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    program_version_id: Mapped[int] = mapped_column(ForeignKey("program_versions.id"))
    order_ref: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    principal: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger)
    spending_order: Mapped[str] = mapped_column(String(16))
    #: Paid at a third-party merchant the operator let take stored value (outside the group's
    #: own merchants): settlement treats these apart.
    third_party: Mapped[bool] = mapped_column(Boolean)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredValueRefund(Base):
    """A refund of (part of) a payment: principal and bonus given back, and bonus that would have
    gone back to a lot whose bonus has lapsed (forfeited instead)."""

    __tablename__ = "sv_refunds"
    __table_args__ = (CheckConstraint("amount > 0 AND principal + bonus + bonus_forfeited = amount", name="parts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("sv_payments.id"), index=True)
    refund_ref: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    principal: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger)
    bonus_forfeited: Mapped[int] = mapped_column(BigInteger)
    #: None when everything went to lapsed bonus (nothing for the ledger to move).
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredValueCashOut(Base):
    """余额退款: a member has principal back; bonus is forfeited pro rata, per the published terms."""

    __tablename__ = "sv_cash_outs"
    __table_args__ = (
        CheckConstraint("principal > 0 AND bonus_forfeited >= 0", name="amounts"),
        Index("ix_sv_cash_outs_member", "tenant_id", "member_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    program_version_id: Mapped[int] = mapped_column(ForeignKey("program_versions.id"))
    principal: Mapped[int] = mapped_column(BigInteger)
    bonus_forfeited: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(96))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredValueMovement(Base):
    """How an operation changed a lot (signed, like the ledger): drawn by a payment, given back
    by a refund, returned or forfeited by a cash-out, lapsed. ``payment_id`` ties draws and
    refunds to their payment, so that refunds can never give back more than was drawn."""

    __tablename__ = "sv_lot_movements"
    __table_args__ = (
        CheckConstraint("principal <> 0 OR bonus <> 0", name="nonzero"),
        Index("ix_sv_lot_movements_payment", "payment_id", "lot_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    lot_id: Mapped[int] = mapped_column(ForeignKey("sv_lots.id"), index=True)
    #: The ledger entry that moved the balances; None for a refund part that lapsed at once.
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("sv_payments.id"))
    #: pay | refund | cash_out | forfeit | expire
    kind: Mapped[str] = mapped_column(String(12))
    principal: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger)
