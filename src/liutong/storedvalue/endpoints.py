from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Security

from liutong.errors import PermissionDenied
from liutong.members import service as members
from liutong.organisation.auth import Permission as P
from liutong.storedvalue import queries, service
from liutong.storedvalue.schemas import (
    CashedOut,
    CashOutRequest,
    OutstandingReport,
    Recharged,
    RechargePreview,
    RechargeRequest,
    StatementPage,
    StoredValueBalance,
)
from liutong.web.deps import api_call, bearer, idempotency_key

router = APIRouter(tags=["stored value 储值"], dependencies=[Security(bearer)])
Key = Annotated[str, Depends(idempotency_key)]


@router.post("/members/{member_id}/stored-value/recharges", status_code=201, response_model=Recharged,
             summary="储值充值：按方案赠送，本金受单人上限约束；同一支付流水只充一次")
def recharge(member_id: int, body: RechargeRequest, request: Request, key: Key) -> Recharged:
    with api_call(request, P.members_write) as (tx, who):
        return service.recharge(tx, tenant_id=who.require_tenant(), member_id=member_id,
                                issuer_entity_id=body.issuer_entity_id, amount=body.amount, channel=body.channel,
                                reference=body.reference, key=key, merchant_id=who.merchant_id)


@router.post("/members/{member_id}/stored-value/cash-outs", status_code=201, response_model=CashedOut,
             summary="储值余额退款：只退本金，赠送金按退还本金比例扣除")
def cash_out(member_id: int, body: CashOutRequest, request: Request, key: Key) -> CashedOut:
    with api_call(request, P.ledger_adjust) as (tx, who):
        return service.refund_balance(tx, tenant_id=who.require_tenant(), member_id=member_id,
                                      principal=body.principal, channel=body.channel, reference=body.reference,
                                      reason=body.reason, key=key, actor=who.actor)


@router.get("/members/{member_id}/stored-value", response_model=StoredValueBalance,
            summary="储值余额：本金、赠送金（可用与即将过期）及发卡主体")
def balance(member_id: int, request: Request) -> StoredValueBalance:
    with api_call(request, P.ledger_read) as (tx, who):
        tenant_id = who.require_tenant()
        members.get(tx, tenant_id=tenant_id, member_id=member_id)
        return queries.balance(tx, tenant_id=tenant_id, member_id=member_id)


@router.get("/members/{member_id}/stored-value/statement", response_model=StatementPage,
            summary="储值明细：充值、支付、退款、提现，含每笔后的余额（游标分页）")
def statement(member_id: int, request: Request, cursor: str | None = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> StatementPage:
    with api_call(request, P.ledger_read) as (tx, who):
        tenant_id = who.require_tenant()
        members.get(tx, tenant_id=tenant_id, member_id=member_id)
        return queries.statement(tx, tenant_id=tenant_id, member_id=member_id, cursor=cursor, limit=limit)


@router.get("/stored-value/recharge-preview", response_model=RechargePreview, summary="充值试算：充多少送多少")
def recharge_preview(request: Request, amount: Annotated[int, Query(gt=0, le=100_000_000)]) -> RechargePreview:
    with api_call(request, P.members_read) as (tx, who):
        return service.preview_recharge(tx, tenant_id=who.require_tenant(), amount=amount)


@router.get("/stored-value/outstanding", response_model=OutstandingReport,
            summary="各发卡主体未兑付储值（预付卡资金存管的计算基数）")
def outstanding(request: Request, as_of: datetime | None = None) -> OutstandingReport:
    with api_call(request, P.ledger_read) as (tx, who):
        if who.merchant_id is not None:  # the group's liabilities are not a merchant's to see
            raise PermissionDenied(permission="stored_value.outstanding")
        return queries.outstanding(tx, tenant_id=who.require_tenant(), as_of=as_of)
