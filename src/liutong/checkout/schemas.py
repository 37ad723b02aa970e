from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from liutong.program.rules import Code


class MemberRef(BaseModel):
    """How the till identifies the member: exactly one of these."""

    member_id: int | None = None
    member_code: str | None = Field(default=None, max_length=200, description="会员码（扫码）")
    phone: str | None = Field(default=None, max_length=32)
    plate: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _exactly_one(self) -> MemberRef:
        given = [v for v in (self.member_id, self.member_code, self.phone, self.plate) if v is not None]
        if len(given) != 1:
            raise ValueError("identify the member by exactly one of member_id, member_code, phone, plate")
        return self


class CartLine(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    category: Code
    qty: int = Field(gt=0, le=10_000)
    unit_price: int = Field(ge=0, le=10**9, description="单价（分）/ unit price in fen")
    venue: Code | None = Field(default=None, description="代售其他业态时的场所编码（如票务处售酒店套餐）/ "
                                                        "the venue a line is sold for, when not the till's own")


class QuoteRequest(BaseModel):
    terminal_id: int | None = Field(default=None, description="终端；终端密钥可省略 / implied by a terminal key")
    member: MemberRef | None = None
    lines: list[CartLine] = Field(min_length=1, max_length=200)
    points: int = Field(default=0, ge=0, le=100_000_000, description="会员想用的积分 / points to pay with")
    stored_value: int = Field(default=0, ge=0, le=10**10,
                              description="会员想用的储值（分）/ stored value to pay with, fen")
    at: datetime | None = Field(default=None, description="消费时间，默认现在 / purchase time, default now")


class QuotedMember(BaseModel):
    id: int
    member_no: str
    tier_code: str
    tier_name: str
    growth: int
    points_spendable: int


class QuotedLine(BaseModel):
    sku: str
    category: str
    qty: int
    unit_price: int
    gross: int
    discount: int
    discount_benefit: str | None
    points_value: int
    paid: int


class QuotedPoints(BaseModel):
    requested: int
    max_usable: int
    applied: int
    value: int
    refused_because: str | None


class QuotedEarnPart(BaseModel):
    rule: str
    label: str
    points: int


class QuotedEarn(BaseModel):
    points: int
    growth: int
    explanation: str
    parts: list[QuotedEarnPart]


class QuotedStoredValue(BaseModel):
    requested: int
    #: Principal and spendable bonus the member holds (0 for a guest).
    available: int
    applied: int
    principal: int
    bonus: int
    refused_because: str | None


class Quote(BaseModel):
    """The price breakdown a till shows before the member pays. Quoting changes nothing."""

    program_version: int
    merchant_id: int
    venue_format: str
    member: QuotedMember | None
    lines: list[QuotedLine]
    gross: int
    discount: int
    points: QuotedPoints
    stored_value: QuotedStoredValue
    #: What the payment channel must collect: the bill after discounts, points and stored value.
    payable: int
    earn: QuotedEarn
    benefits_applied: list[str]


class Payment(BaseModel):
    channel: str = Field(min_length=1, max_length=32, description="wechat / alipay / unionpay / cash …")
    reference: str | None = Field(default=None, max_length=64, description="渠道交易号 / channel transaction id")
    amount: int = Field(ge=0, le=10**11, description="实付金额（分）")


class CommitRequest(QuoteRequest):
    order_no: str = Field(min_length=1, max_length=64, pattern=r"^[^~\s][^\s]*$",
                          description="POS 单号，幂等键 / the POS order number")
    payment: Payment


class Committed(BaseModel):
    order_id: int
    order_no: str
    quote: Quote
    spend_entry_id: int | None
    earn_entry_id: int | None
    growth_entry_id: int | None
    points_pending: bool
    sv_payment_id: int | None = None
    #: The tier this purchase promoted the member to, if it did; the next purchase earns at it.
    promoted_to: str | None = None


class RefundLine(BaseModel):
    line_no: int = Field(ge=1)
    qty: int = Field(gt=0, le=10_000)


class RefundRequest(BaseModel):
    order_no: str = Field(min_length=1, max_length=64)
    refund_no: str = Field(min_length=1, max_length=64, pattern=r"^[^~\s][^\s]*$", description="退款单号，幂等键")
    lines: list[RefundLine] | None = Field(default=None, description="省略表示整单退 / omit for a full refund")


class Refunded(BaseModel):
    refund_id: int
    refund_no: str
    order_no: str
    order_status: str
    paid_back: int
    stored_value_back: int = 0
    points_back: int
    points_clawed: int
    #: Earned points already spent that the refund did not take back (see the refund policy),
    #: and the cash kept out of ``paid_back`` for them under ``deduct_from_refund``.
    points_unrecovered: int = 0
    deducted: int = 0
    growth_clawed: int
