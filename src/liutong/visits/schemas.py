from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from liutong.checkout.schemas import Committed, MemberRef, Payment, Quote
from liutong.program.rules import BehaviourEvent, Code

EventNo = Field(min_length=1, max_length=64, pattern=r"^[^~\s][^\s]*$",
                description="上报系统的事件单号，幂等键 / the reporting system's event number, the idempotency key")


class BehaviourIn(BaseModel):
    member: MemberRef
    event: BehaviourEvent
    task: Code | None = Field(default=None, description="任务编码（task）/ the task completed")
    venue: Code | None = Field(default=None, description="评价或分享的场所 / the venue reviewed or shared")
    merchant: Code | None = Field(default=None, description="评价或分享的商户 / the merchant reviewed or shared")
    referee: MemberRef | None = Field(default=None, description="被推荐的新会员（referral）/ the member referred")
    ref: str | None = Field(default=None, max_length=64, description="业务单号，如评价编号 / e.g. the review id")

    @model_validator(mode="after")
    def _referral_names_referee(self) -> BehaviourIn:
        if (self.event == "referral") != (self.referee is not None):
            raise ValueError("a referral, and only a referral, names the referee")
        return self


class GateEntryIn(BaseModel):
    event_no: str = EventNo
    terminal_id: int | None = Field(default=None, description="闸机；终端密钥可省略 / implied by a terminal key")
    member: MemberRef
    at: datetime | None = None
    use_benefit: Code | None = Field(default=None, description="入园时使用的权益，如快速通道 / e.g. a fast-lane pass")


class VenueEventOut(BaseModel):
    event_id: int
    event_no: str
    kind: str
    member_id: int | None
    venue_id: int
    occurred_at: datetime
    benefit_used: str | None = None
    #: What is left of the benefit's quota this period, when it has one.
    benefit_left: int | None = None


class CheckInIn(BaseModel):
    stay_no: str = EventNo
    terminal_id: int | None = None
    member: MemberRef
    room: str | None = Field(default=None, max_length=16)
    at: datetime | None = None


class CheckOutIn(BaseModel):
    stay_no: str = EventNo
    terminal_id: int | None = None
    at: datetime | None = None


class StayOut(BaseModel):
    stay_no: str
    member_id: int
    venue_id: int
    room: str | None
    checked_in_at: datetime
    checked_out_at: datetime | None
    #: Points the stay's check-out made spendable.
    points_vested: int = 0


class ParkingExitIn(BaseModel):
    event_no: str = EventNo
    terminal_id: int | None = None
    plate: str = Field(min_length=1, max_length=16)
    entered_at: datetime
    exited_at: datetime
    fee: int = Field(ge=0, le=10**8, description="停车系统按收费标准计算的停车费（分）/ the car park's fee, fen")
    points: int = Field(default=0, ge=0, le=100_000_000, description="用积分抵扣停车费 / points to pay with")

    @model_validator(mode="after")
    def _ordered(self) -> ParkingExitIn:
        if self.exited_at < self.entered_at:
            raise ValueError("exited_at is before entered_at")
        return self


class ParkingExitCommit(ParkingExitIn):
    payment: Payment


class ParkingQuote(BaseModel):
    minutes: int
    member_id: int | None
    free_minutes_benefit: str | None
    free_minutes_used: int
    free_minutes_left: int | None
    quote: Quote


class ParkingExited(ParkingQuote):
    event_id: int
    committed: Committed


class BenefitUseIn(BaseModel):
    use_no: str = EventNo
    terminal_id: int | None = None
    member: MemberRef
    benefit: Code
    quantity: int = Field(default=1, gt=0, le=10_000, description="次数或分钟 / uses or minutes")
    value: int = Field(default=0, ge=0, le=10**9, description="权益价值（分），用于权益成本统计 / worth, fen")


class BenefitUsed(BaseModel):
    use_no: str
    member_id: int
    benefit: str
    quantity: int
    #: What is left of the benefit's quota this period, when it has one.
    quota_left: int | None
