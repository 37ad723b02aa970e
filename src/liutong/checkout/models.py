from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, BigId, UTCDateTime


class Order(Base):
    """A committed checkout. Amounts in fen; it records the program version it was priced by."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_no"),
        Index("ix_orders_tenant_member", "tenant_id", "member_id", "occurred_at"),
        Index("ix_orders_tenant_merchant", "tenant_id", "merchant_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    order_no: Mapped[str] = mapped_column(String(64))
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    program_version_id: Mapped[int] = mapped_column(ForeignKey("program_versions.id"))
    status: Mapped[str] = mapped_column(String(24))  # committed | partially_refunded | refunded
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    gross: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    points_used: Mapped[int] = mapped_column(BigInteger)
    points_value: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger)
    #: The part of ``paid`` that stored value paid (the rest came through ``payment_channel``).
    stored_value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    payment_channel: Mapped[str | None] = mapped_column(String(32))
    payment_ref: Mapped[str | None] = mapped_column(String(64))
    points_earned: Mapped[int] = mapped_column(BigInteger)
    growth_earned: Mapped[int] = mapped_column(BigInteger)
    earn_explanation: Mapped[str] = mapped_column(String(500))
    spend_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    earn_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    growth_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    sv_payment_id: Mapped[int | None] = mapped_column(ForeignKey("sv_payments.id"))


class OrderLine(Base):
    """A line, with its share of every allocation so that refunds by line add back exactly."""

    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    gross: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    discount_benefit: Mapped[str | None] = mapped_column(String(32))
    points_value: Mapped[int] = mapped_column(BigInteger)
    points_used: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger)
    #: The part of ``paid`` that stored value paid (the rest came through ``payment_channel``).
    stored_value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    points_earned: Mapped[int] = mapped_column(BigInteger)
    growth_earned: Mapped[int] = mapped_column(BigInteger)
    refunded_qty: Mapped[int] = mapped_column(Integer, default=0)
    refunded_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_stored_value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunded_points: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed_growth: Mapped[int] = mapped_column(BigInteger, default=0)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("tenant_id", "refund_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    refund_no: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Money back through the payment channel, and stored value back to the member's balance.
    paid_back: Mapped[int] = mapped_column(BigInteger)
    stored_value_back: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    points_back: Mapped[int] = mapped_column(BigInteger)
    points_clawed: Mapped[int] = mapped_column(BigInteger)
    #: Earned points the member had already spent and the refund could not take back, and the
    #: cash value kept out of ``paid_back`` for them under the ``deduct_from_refund`` policy.
    points_unrecovered: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    deducted: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    growth_clawed: Mapped[int] = mapped_column(BigInteger)
    restore_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    claw_back_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    growth_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
