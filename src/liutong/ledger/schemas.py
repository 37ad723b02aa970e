from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PostingOut(BaseModel):
    account_id: int
    kind: str
    asset: str
    amount: int
    balance_after: int | None = None


class LotChange(BaseModel):
    lot_id: int
    amount: int
    kind: str


class EntryResult(BaseModel):
    """What a ledger write answers, and what a replay of its key answers again."""

    entry_id: int
    kind: str
    member_id: int | None
    effective_at: datetime
    reverses_id: int | None = None
    postings: list[PostingOut]
    lots: list[LotChange] = Field(default_factory=list)


class LegIn(BaseModel):
    account_id: int
    amount: int


class Balances(BaseModel):
    member_id: int
    points: int
    points_pending: int
    growth: int
    sv_principal: int
    sv_bonus: int
    #: Points that expire within the next 30 days.
    points_expiring_30d: int


class LotOut(BaseModel):
    id: int
    issuer_entity_id: int
    amount: int
    remaining: int
    status: str
    earned_at: datetime
    vests_at: datetime | None
    expires_at: datetime | None


class HistoryLine(BaseModel):
    posting_id: int
    entry_id: int
    entry_kind: str
    account_kind: str
    asset: str
    amount: int
    balance_after: int | None
    effective_at: datetime
    memo: str | None
    ref: str | None
    reverses_id: int | None


class HistoryPage(BaseModel):
    items: list[HistoryLine]
    next_cursor: str | None
