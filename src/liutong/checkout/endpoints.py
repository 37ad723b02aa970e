from __future__ import annotations

from fastapi import APIRouter, Request, Security

from liutong.checkout import service
from liutong.checkout.schemas import Quote, QuoteRequest
from liutong.organisation.auth import Permission as P
from liutong.web.deps import api_call, bearer

router = APIRouter(tags=["checkout 收银"], dependencies=[Security(bearer)])


@router.post("/checkout/quote", response_model=Quote,
             summary="试算：等级与权益折扣、可用积分、应付金额、可得积分与成长值（不改变任何数据）")
def quote(body: QuoteRequest, request: Request) -> Quote:
    with api_call(request, P.members_read) as (tx, who):
        return service.quote(tx, principal=who, data=body)
