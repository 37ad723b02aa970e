from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, BigId, UTCDateTime


class MemberStatus(StrEnum):
    active = "active"
    frozen = "frozen"
    closed = "closed"
    merged = "merged"


class IdentityKind(StrEnum):
    phone = "phone"
    card = "card"
    wechat_openid = "wechat_openid"
    wechat_unionid = "wechat_unionid"
    plate = "plate"
    id_card = "id_card"


class ConsentPurpose(StrEnum):
    """Purposes a member consents to separately (PIPL: one consent per purpose)."""

    marketing_sms = "marketing_sms"
    marketing_wechat = "marketing_wechat"
    marketing_email = "marketing_email"
    personalisation = "personalisation"
    share_with_merchants = "share_with_merchants"


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("tenant_id", "member_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    member_no: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default=MemberStatus.active)
    #: AES-GCM ciphertext of the name; never stored in clear.
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    gender: Mapped[str] = mapped_column(String(8), default="unknown")
    birthday: Mapped[date | None] = mapped_column(Date)
    #: 行政区划代码 or a free region name, e.g. "330100" / "浙江省杭州市".
    region: Mapped[str | None] = mapped_column(String(64))
    tier_code: Mapped[str | None] = mapped_column(String(32))
    #: Manual tier override: never below ``tier_floor``, no change at all while ``tier_locked``,
    #: both until ``tier_override_expires_at`` (NULL = no expiry).
    tier_floor: Mapped[str | None] = mapped_column(String(32))
    tier_locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    tier_override_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    #: Bumped to invalidate every member code issued before (lost phone, merge, closure).
    code_epoch: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str | None] = mapped_column(String(32))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberIdentity(Base):
    """One way to recognise a member. Lookup goes through the keyed blind index only."""

    __tablename__ = "member_identities"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "blind_index"),
        Index("ix_member_identities_member", "tenant_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(24))
    blind_index: Mapped[str] = mapped_column(String(64))
    #: Ciphertext of the normalised value; NULL for ID cards, which are kept only as a hash.
    value_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    masked: Mapped[str] = mapped_column(String(64))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsentEvent(Base):
    """Consent history: the latest event per purpose is the member's current choice."""

    __tablename__ = "member_consents"
    __table_args__ = (Index("ix_member_consents_member", "tenant_id", "member_id", "purpose", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(32))
    #: Version of the privacy notice the member saw, e.g. "2026-10".
    notice_version: Mapped[str | None] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TierCause(StrEnum):
    """What moved a member's tier (or its override), for the history and for analytics."""

    promotion = "promotion"
    review = "review"
    override = "override"
    paid_upgrade = "paid_upgrade"


class TierChange(Base):
    """Tier history: every change with its reason and the program version that decided it.

    A line whose ``from_tier`` equals ``to_tier`` records a change of the override alone (set,
    cleared by an operator, or expired at a review).
    """

    __tablename__ = "member_tier_history"
    __table_args__ = (
        Index("ix_member_tier_history_member", "tenant_id", "member_id", "id"),
        # The review asks which members were promoted after its period ended.
        Index("ix_member_tier_history_tenant_at", "tenant_id", "at"),
        # One line per member per review, however often the review runs.
        UniqueConstraint("review_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    from_tier: Mapped[str | None] = mapped_column(String(32))
    to_tier: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    program_version_id: Mapped[int | None] = mapped_column(ForeignKey("program_versions.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: a ``TierCause``; NULL on lines written before causes were recorded (promotions)
    cause: Mapped[str | None] = mapped_column(String(16))
    review_id: Mapped[int | None] = mapped_column(ForeignKey("tier_reviews.id"))


class ActivityDay(Base):
    """A member's activity on one local day (the tenant's time zone): the rollup that tier
    promotion and the period review read instead of scanning orders.

    Written by upsert (``members.activity.record``), so concurrent purchases of one member add
    up instead of overwriting each other. A refund is netted on the day of the order it
    refunds, so a day's spend and points are what that day's purchases are still worth.
    ``visited`` is 1 when the member bought something or entered a venue that day.
    """

    __tablename__ = "member_activity_days"
    __table_args__ = (
        # On PostgreSQL the key carries what the review sums, so the review reads a range of
        # members from the index alone (rows arrive day by day, so one member's days are spread
        # over the whole table); the cost is that a second purchase on a day is a non-HOT update.
        PrimaryKeyConstraint("tenant_id", "member_id", "day",
                             postgresql_include=["spend_fen", "points_earned", "visited"]),
    )

    tenant_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    spend_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    purchases: Mapped[int] = mapped_column(Integer, default=0)
    visited: Mapped[int] = mapped_column(SmallInteger, default=0)


class TierPurchase(Base):
    """A paid upgrade: the member holds at least ``tier_code`` from ``starts_at`` until
    ``ends_at``. One payment (channel + reference) buys one upgrade."""

    __tablename__ = "member_tier_purchases"
    __table_args__ = (
        Index("ix_member_tier_purchases_member", "tenant_id", "member_id", "ends_at"),
        UniqueConstraint("tenant_id", "payment_channel", "payment_ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    tier_code: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    payment_channel: Mapped[str] = mapped_column(String(32))
    payment_ref: Mapped[str] = mapped_column(String(64))
    program_version_id: Mapped[int] = mapped_column(ForeignKey("program_versions.id"))
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TierReview(Base):
    """One period review of a tenant's tiers (e.g. the 2026 year-end review).

    ``cursor`` is the highest member id already reviewed: the review advances it chunk by
    chunk, each chunk in one transaction with the changes it made, so a review that stopped
    half way resumes where it was and a finished one is never run again.
    """

    __tablename__ = "tier_reviews"
    __table_args__ = (UniqueConstraint("tenant_id", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    #: the period reviewed, e.g. "2026", "2026-H2", "2026-Q4", "2026-11"
    period: Mapped[str] = mapped_column(String(16))
    #: the end of the period (a local midnight), the moment the review looks from
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    program_version_id: Mapped[int] = mapped_column(ForeignKey("program_versions.id"))
    status: Mapped[str] = mapped_column(String(16))  # running | done
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    reviewed: Mapped[int] = mapped_column(BigInteger, default=0)
    demoted: Mapped[int] = mapped_column(BigInteger, default=0)
    overrides_cleared: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MemberList(Base):
    """A named list of members (名单) that campaigns can target: invited guests, a partner's
    employees, a segment exported by an analyst."""

    __tablename__ = "member_lists"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberListEntry(Base):
    __tablename__ = "member_list_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "member_id", "list_id"),
        Index("ix_member_list_entries_list", "list_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("member_lists.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
