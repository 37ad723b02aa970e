from __future__ import annotations

from datetime import datetime
from typing import Annotated

from dateutil.relativedelta import relativedelta
from fastapi import APIRouter, Depends, Query, Request, Security
from pydantic import BaseModel, Field

from liutong.ledger import queries, service
from liutong.ledger.schemas import Balances, EntryResult, HistoryPage, LotOut
from liutong.members import service as members
from liutong.organisation.auth import Permission as P
from liutong.web.deps import api_call, bearer, idempotency_key

router = APIRouter(tags=["ledger 账本"], dependencies=[Security(bearer)])
Key = Annotated[str, Depends(idempotency_key)]


class PointsGrant(BaseModel):
    """A manual grant by the operator (goodwill, compensation); purchases earn through checkout."""

    points: int = Field(gt=0, le=100_000_000)
    issuer_entity_id: int
    expires_at: datetime | None = Field(default=None, description="默认发放后 12 个月 / default 12 months")
    vests_at: datetime | None = None
    memo: str = Field(min_length=1, max_length=200)
    ref: str | None = Field(default=None, max_length=64)


class PointsDeduct(BaseModel):
    points: int = Field(gt=0, le=100_000_000)
    memo: str = Field(min_length=1, max_length=200)
    ref: str | None = Field(default=None, max_length=64)


class Reverse(BaseModel):
    memo: str | None = Field(default=None, max_length=200)


@router.get("/members/{member_id}/balances", response_model=Balances, summary="会员余额：积分、待生效积分、成长值、储值")
def balances(member_id: int, request: Request) -> Balances:
    with api_call(request, P.ledger_read) as (tx, who):
        tenant_id = who.require_tenant()
        members.get(tx, tenant_id=tenant_id, member_id=member_id)
        return queries.balances(tx, tenant_id=tenant_id, member_id=member_id)


@router.get("/members/{member_id}/lots", response_model=list[LotOut], summary="积分批次：何时过期多少")
def lots(member_id: int, request: Request, all: bool = False) -> list[LotOut]:  # noqa: A002
    with api_call(request, P.ledger_read) as (tx, who):
        tenant_id = who.require_tenant()
        members.get(tx, tenant_id=tenant_id, member_id=member_id)
        return queries.lots(tx, tenant_id=tenant_id, member_id=member_id, open_only=not all)


@router.get("/members/{member_id}/history", response_model=HistoryPage, summary="账户流水（游标分页）")
def history(member_id: int, request: Request, cursor: str | None = None,
            limit: Annotated[int, Query(ge=1, le=200)] = 50) -> HistoryPage:
    with api_call(request, P.ledger_read) as (tx, who):
        tenant_id = who.require_tenant()
        members.get(tx, tenant_id=tenant_id, member_id=member_id)
        family = members.merged_family(tx, tenant_id=tenant_id, member_id=member_id)
        return queries.history(tx, tenant_id=tenant_id, member_ids=family, cursor=cursor, limit=limit)


@router.post("/members/{member_id}/points/grants", status_code=201, response_model=EntryResult, summary="手工补发积分")
def grant_points(member_id: int, body: PointsGrant, request: Request, key: Key) -> EntryResult:
    with api_call(request, P.ledger_adjust) as (tx, who):
        expires = body.expires_at or (tx.now() + relativedelta(months=12))
        return service.earn_points(tx, tenant_id=who.require_tenant(), member_id=member_id,
                                   issuer_entity_id=body.issuer_entity_id, points=body.points, key=key,
                                   expires_at=expires, vests_at=body.vests_at, memo=body.memo, ref=body.ref)


@router.post("/members/{member_id}/points/deductions", status_code=201, response_model=EntryResult, summary="手工扣减积分")
def deduct_points(member_id: int, body: PointsDeduct, request: Request, key: Key) -> EntryResult:
    with api_call(request, P.ledger_adjust) as (tx, who):
        return service.spend_points(tx, tenant_id=who.require_tenant(), member_id=member_id, points=body.points,
                                    key=key, memo=body.memo, ref=body.ref)


@router.post("/ledger/entries/{entry_id}/reversal", status_code=201, response_model=EntryResult, summary="冲正一笔分录")
def reverse(entry_id: int, body: Reverse, request: Request, key: Key) -> EntryResult:
    with api_call(request, P.ledger_adjust) as (tx, who):
        return service.reverse_entry(tx, tenant_id=who.require_tenant(), entry_id=entry_id, key=key, memo=body.memo)


