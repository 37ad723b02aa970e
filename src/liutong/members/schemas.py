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
