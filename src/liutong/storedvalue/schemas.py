"""Requests and answers of the stored-value services and API. Amounts are fen."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

Fen = Annotated[int, Field(gt=0, le=100_000_000)]
Channel = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-.]+$")]
Reference = Annotated[str, Field(min_length=1, max_length=64)]


class RechargeRequest(BaseModel):
    """A recharge paid through an external channel (WeChat Pay, Alipay, UnionPay, cash at a desk)."""

    amount: Fen
    issuer_entity_id: int = Field(description="发卡法人主体 / the legal entity that issues the stored value")
    channel: Channel = Field(description="支付渠道，如 wechat、alipay / payment channel")
    reference: Reference = Field(description="渠道支付流水号 / the channel's payment reference")


class CashOutRequest(BaseModel):
    """A member has (part of) their principal back; the bonus goes in proportion."""

    principal: Fen | None = Field(default=None,
                                  description="退还本金；不填则全部 / principal to return; all when absent")
    channel: Channel = Field(description="退款渠道 / the channel the money goes back through")
    reference: Reference = Field(description="渠道退款流水号 / the channel's refund reference")
    reason: str = Field(min_length=1, max_length=200)


class IssuerPart(BaseModel):
    """What one issuing entity's stored value contributed (or got back)."""

    issuer_entity_id: int
    principal: int
    bonus: int


class Recharged(BaseModel):
    recharge_id: int
    entry_id: int
    member_id: int
    issuer_entity_id: int
    program_version_id: int
    amount: int
    bonus: int
    bonus_rule: str | None
    bonus_expires_at: datetime | None
    channel: str
    reference: str
    principal_after: int
    bonus_after: int


class Paid(BaseModel):
    """A stored-value payment: how much principal and bonus it took, and from which issuers."""

    payment_id: int
    entry_id: int
    member_id: int
    merchant_id: int
    order_ref: str
    amount: int
    principal: int
    bonus: int
    spending_order: str
    #: Paid at a third-party merchant the operator lets take stored value.
    third_party: bool
    parts: list[IssuerPart]
    principal_after: int
    bonus_after: int


class PaymentRefunded(BaseModel):
    refund_id: int
    payment_id: int
    entry_id: int | None
    amount: int
    principal: int
    bonus: int
    #: Bonus that would have gone back to a lot whose bonus has lapsed since the payment.
    bonus_forfeited: int
    parts: list[IssuerPart]
    #: What of the payment is still refundable after this refund.
    left: int


class CashOutPartOut(BaseModel):
    issuer_entity_id: int
    principal: int
    bonus_forfeited: int


class CashedOut(BaseModel):
    cash_out_id: int
    entry_id: int
    member_id: int
    principal: int
    bonus_forfeited: int
    channel: str
    reference: str
    parts: list[CashOutPartOut]
    principal_after: int
    bonus_after: int


class BonusExpired(BaseModel):
    entry_id: int
    member_id: int
    bonus: int
    lots: list[int]


class Holding(BaseModel):
    issuer_entity_id: int
    principal: int
    bonus: int


class StoredValueBalance(BaseModel):
    member_id: int
    principal: int
    bonus: int
    #: Bonus within its validity: what a payment can use now.
    bonus_spendable: int
    #: Bonus that lapses within the next 30 days.
    bonus_expiring_30d: int
    holdings: list[Holding]


class StoredValueOffer(BaseModel):
    """What stored value can do for a bill at a merchant (a checkout quote); changes nothing."""

    accepted: bool
    refused_because: str | None = None
    third_party: bool = False
    principal: int = 0
    bonus_spendable: int = 0
    #: For a requested amount: the principal and bonus it would take (None when refused).
    principal_used: int | None = None
    bonus_used: int | None = None


class StatementLine(BaseModel):
    entry_id: int
    kind: str
    effective_at: datetime
    principal: int
    bonus: int
    principal_after: int
    bonus_after: int
    ref: str | None
    memo: str | None
    merchant_id: int | None = None
    channel: str | None = None


class StatementPage(BaseModel):
    items: list[StatementLine]
    next_cursor: str | None


class OutstandingRow(BaseModel):
    entity_id: int
    entity_code: str
    entity_name: str
    principal: int
    bonus: int


class OutstandingReport(BaseModel):
    """Stored value outstanding per issuing entity — the base for prepaid-card escrow ratios."""

    as_of: datetime
    rows: list[OutstandingRow]
    principal: int
    bonus: int


class RechargePreview(BaseModel):
    amount: int
    bonus: int
    bonus_rule: str | None
    bonus_expires_at: datetime | None
