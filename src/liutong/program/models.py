from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
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


class BehaviourAward(Base):
    """Points or growth given for something a member did (签到, 评价, 分享, 推荐, 任务…).

    The rows of a rule in one period are what its frequency limit counts; a sign-in row also
    carries the streak it continues.
    """

    __tablename__ = "behaviour_awards"
    __table_args__ = (Index("ix_behaviour_awards_member_rule", "tenant_id", "member_id", "rule_code", "period_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(BigInteger)
    rule_code: Mapped[str] = mapped_column(String(32))
    #: The event, or ``referee`` for the points a referred member receives.
    role: Mapped[str] = mapped_column(String(16))
    period_key: Mapped[str] = mapped_column(String(16))
    local_day: Mapped[date] = mapped_column(Date)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(BigInteger)
    growth: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str | None] = mapped_column(String(64))
    earn_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    growth_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    program_version_id: Mapped[int] = mapped_column(ForeignKey("program_versions.id"))
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignBudgetUse(Base):
    """Points a campaign has given: in all (``member_id`` 0) and to each member.

    Counters are keyed by campaign code, across program versions: a campaign that is edited
    keeps what it has spent; a new campaign takes a new code. A refund does not give budget
    back — the budget bounds what was ever granted.
    """

    __tablename__ = "campaign_budget_uses"
    __table_args__ = (UniqueConstraint("tenant_id", "campaign_code", "member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    campaign_code: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[int] = mapped_column(BigInteger)
    used: Mapped[int] = mapped_column(BigInteger)
