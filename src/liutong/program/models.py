from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, BigId, UTCDateTime


class ProgramVersion(Base):
    """One published version of a tenant's program. Versions are never edited; a change is a
    new version, and whatever used a version (a checkout) records its id."""

    __tablename__ = "program_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BenefitUse(Base):
    """One use of a benefit by a member: what it saved or gave, in which quota period."""

    __tablename__ = "benefit_uses"
    __table_args__ = (
        Index("ix_benefit_uses_member_period", "tenant_id", "member_id", "benefit_code", "period_key"),
        Index("ix_benefit_uses_tenant_used", "tenant_id", "benefit_code", "used_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    benefit_code: Mapped[str] = mapped_column(String(32))
    period_key: Mapped[str] = mapped_column(String(16))
    #: Uses, minutes or passes, as the benefit counts its quota.
    quantity: Mapped[int] = mapped_column(Integer)
    #: What it was worth to the member, in fen (a discount's saving).
    value: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when a refund gives the quota back.
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
