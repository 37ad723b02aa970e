from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, BigId, UTCDateTime


class VenueEvent(Base):
    """Something a member did at a venue that a gate, front desk or parking system reports,
    recorded once per the reporting system's own event number."""

    __tablename__ = "venue_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_no"),
        Index("ix_venue_events_member", "tenant_id", "member_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    event_no: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # gate_entry, check_in, check_out, parking_exit
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Stay(Base):
    """A hotel stay between check-in and check-out; points earned at the hotel during it
    stay pending until the guest checks out (the hotel's refund window)."""

    __tablename__ = "hotel_stays"
    __table_args__ = (
        UniqueConstraint("tenant_id", "stay_no"),
        Index("ix_hotel_stays_member_open", "tenant_id", "member_id", "venue_id", "checked_out_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    stay_no: Mapped[str] = mapped_column(String(64))
    venue_id: Mapped[int] = mapped_column(ForeignKey("venues.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    room: Mapped[str | None] = mapped_column(String(16))
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
