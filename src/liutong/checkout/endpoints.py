from __future__ import annotations

from fastapi import APIRouter, Request, Security

from liutong.checkout import service
from liutong.checkout.schemas import CommitRequest, Committed, Quote, QuoteRequest, RefundRequest, Refunded
from liutong.organisation.auth import Permission as P
from liutong.web.deps import api_call, bearer

router = APIRouter(tags=["checkout 收银"], dependencies=[Security(bearer)])


@router.post("/checkout/quote", response_model=Quote,
             summary="试算：等级与权益折扣、可用积分、应付金额、可得积分与成长值（不改变任何数据）")
def quote(body: QuoteRequest, request: Request) -> Quote:
    with api_call(request, P.members_read) as (tx, who):
        return service.quote(tx, principal=who, data=body)


@router.post("/checkout/commit", response_model=Committed,
             summary="结账：以 POS 单号幂等地记录订单、积分抵现、积分与成长值（全部或全无）")
def commit(body: CommitRequest, request: Request) -> Committed:
    with api_call(request, P.members_write) as (tx, who):
        return service.commit(tx, principal=who, data=body, actor=who.actor)


@router.post("/checkout/refund", response_model=Refunded,
             summary="退款：整单或按行，以退款单号幂等；按比例退回积分、扣回所得积分与成长值")
def refund(body: RefundRequest, request: Request) -> Refunded:
    with api_call(request, P.members_write) as (tx, who):
        return service.refund(tx, principal=who, data=body)
