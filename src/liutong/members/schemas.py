from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from liutong.members.models import ConsentPurpose, IdentityKind, MemberStatus

Gender = Literal["male", "female", "unknown"]


class IdentityIn(BaseModel):
    kind: IdentityKind
    value: str = Field(min_length=1, max_length=64)
    verified: bool = False


class ConsentIn(BaseModel):
    purpose: ConsentPurpose
    granted: bool
    channel: str = Field(default="api", max_length=32)
    notice_version: str | None = Field(default=None, max_length=32)


class MemberRegister(BaseModel):
    phone: str = Field(min_length=1, max_length=32, description="中国大陆手机号 / mainland mobile number")
    name: str | None = Field(default=None, min_length=1, max_length=32)
    gender: Gender = "unknown"
    birthday: date | None = None
    region: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=32)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=10)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=10)
    referred_by: str | None = Field(default=None, min_length=1, max_length=20,
                                    description="推荐人会员号 / member number of the member who referred them")


class MemberUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=32)
    gender: Gender | None = None
    birthday: date | None = None
    region: str | None = Field(default=None, max_length=64)


class IdentityOut(BaseModel):
    id: int
    kind: IdentityKind
    masked: str
    is_primary: bool
    verified: bool
    #: Only filled when the caller's role may reveal personal data (and the reveal is audited).
    value: str | None = None


class MemberOut(BaseModel):
    id: int
    member_no: str
    status: MemberStatus
    name: str | None = Field(description="脱敏姓名 / masked unless revealed")
    phone: str = Field(description="脱敏手机号 / masked unless revealed")
    gender: Gender
    birthday: date | None
    region: str | None
    tier_code: str | None
    merged_into_id: int | None
    registered_at: datetime
    identities: list[IdentityOut]
    revealed: bool = False


class StatusChange(BaseModel):
    status: Literal["active", "frozen", "closed"]
    reason: str = Field(min_length=1, max_length=200)


class ConsentState(BaseModel):
    purpose: ConsentPurpose
    granted: bool
    channel: str
    notice_version: str | None
    recorded_at: datetime


class Consents(BaseModel):
    current: list[ConsentState]
    history: list[ConsentState]


class MergeRequest(BaseModel):
    source_member_id: int
    target_member_id: int
    reason: str = Field(min_length=1, max_length=200)


class MergeResult(BaseModel):
    target: MemberOut
    source_member_id: int
    identities_moved: int
    lots_moved: int
    entry_ids: list[int]
    audit_id: int


class MemberCodeOut(BaseModel):
    code: str
    issued_at: datetime
    expires_at: datetime


class MemberCodeResolve(BaseModel):
    code: str = Field(min_length=1, max_length=200)


# --- tiers -----------------------------------------------------------------------------------


class TierRef(BaseModel):
    code: str
    name: str
    rank: int


class TierGap(BaseModel):
    """One threshold: what it needs, what the member has in the window, what is missing."""

    dimension: Literal["spend_fen", "visits", "growth", "points_earned"]
    required: int
    current: int
    missing: int


class TierGoal(BaseModel):
    tier: TierRef
    combine: Literal["all", "any"]
    window_days: int
    met: bool
    gaps: list[TierGap]


class OverrideOut(BaseModel):
    floor: str | None
    locked: bool
    expires_at: datetime | None
    active: bool


class PaidHold(BaseModel):
    tier_code: str
    ends_at: datetime


class NextReview(BaseModel):
    period: str
    at: datetime


class TierProgress(BaseModel):
    """What the member centre shows: the tier, what the next one still needs, what keeping this
    one at the next review needs (activity counted so far in the review's window)."""

    member_id: int
    tier: TierRef
    next_tier: TierGoal | None = Field(description="下一等级还差多少 / what the next tier still needs")
    retention: TierGoal | None = Field(description="保级进度 / keeping the tier at the next review")
    next_review: NextReview
    override: OverrideOut | None
    paid_upgrade: PaidHold | None


class TierHistoryLine(BaseModel):
    id: int
    from_tier: str | None
    to_tier: str
    reason: str
    cause: str | None
    at: datetime
    program_version_id: int | None


class TierHistoryPage(BaseModel):
    items: list[TierHistoryLine]
    next_cursor: str | None


class TierOverrideIn(BaseModel):
    """Set a manual override. ``tier_code`` moves the member now (up or down); ``floor`` keeps
    them at or above a tier (and lifts them to it now); ``locked`` freezes their tier; all of
    it until ``expires_at`` (none = until cleared)."""

    tier_code: str | None = Field(default=None, max_length=32)
    floor: str | None = Field(default=None, max_length=32)
    locked: bool = False
    expires_at: datetime | None = None
    reason: str = Field(min_length=1, max_length=120)


class TierOverrideClear(BaseModel):
    reason: str = Field(min_length=1, max_length=120)


class UpgradePayment(BaseModel):
    channel: str = Field(min_length=1, max_length=32, description="wechat / alipay / unionpay / cash …")
    reference: str = Field(min_length=1, max_length=64, description="渠道交易号 / channel transaction id")
    amount: int = Field(ge=0, le=10**11, description="实付金额（分）")


class PaidUpgradeIn(BaseModel):
    tier_code: str = Field(min_length=1, max_length=32)
    payment: UpgradePayment


class PaidUpgradeOut(BaseModel):
    id: int
    member_id: int
    tier_code: str
    starts_at: datetime
    ends_at: datetime
    price_fen: int
    payment_channel: str
    payment_ref: str
    tier_before: str
    tier_after: str


class TierStatus(BaseModel):
    """The member's tier and override after an operator's change."""

    member_id: int
    tier_code: str
    override: OverrideOut | None
    history_id: int
    audit_id: int
