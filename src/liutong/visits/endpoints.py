from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security

from liutong.organisation.auth import Permission as P
from liutong.program.behaviour import Rewarded
from liutong.visits import service
from liutong.visits.schemas import (
    BehaviourIn,
    BenefitUsed,
    BenefitUseIn,
    CheckInIn,
    CheckOutIn,
    GateEntryIn,
    ParkingExitCommit,
    ParkingExited,
    ParkingExitIn,
    ParkingQuote,
    StayOut,
    VenueEventOut,
)
from liutong.web.deps import api_call, bearer, idempotency_key

router = APIRouter(tags=["events 行为与场所事件"], dependencies=[Security(bearer)])
Key = Annotated[str, Depends(idempotency_key)]


@router.post("/behaviour", response_model=Rewarded,
             summary="会员行为奖励：签到、评价、分享、推荐、任务、生日（按方案的频次上限）")
def behaviour(body: BehaviourIn, request: Request, key: Key) -> Rewarded:
    with api_call(request, P.members_write) as (tx, who):
        return service.reward_behaviour(tx, principal=who, data=body, key=key)


@router.post("/venue-events/gate-entry", response_model=VenueEventOut,
             summary="检票入园：记一次到访，可同时使用快速通道等权益（以闸机事件号幂等）")
def gate_entry(body: GateEntryIn, request: Request) -> VenueEventOut:
    with api_call(request, P.members_write) as (tx, who):
        return service.gate_entry(tx, principal=who, data=body)


@router.post("/venue-events/check-in", response_model=StayOut, summary="酒店入住（以入住单号幂等）")
def check_in(body: CheckInIn, request: Request) -> StayOut:
    with api_call(request, P.members_write) as (tx, who):
        return service.check_in(tx, principal=who, data=body)


@router.post("/venue-events/check-out", response_model=StayOut,
             summary="酒店离店：本次在酒店所得的待生效积分立即生效")
def check_out(body: CheckOutIn, request: Request) -> StayOut:
    with api_call(request, P.members_write) as (tx, who):
        return service.check_out(tx, principal=who, data=body)


@router.post("/venue-events/parking-exit/quote", response_model=ParkingQuote,
             summary="出场试算：按车牌识别会员，免费停车时长与积分抵扣后的应付停车费（不改变任何数据）")
def parking_quote(body: ParkingExitIn, request: Request) -> ParkingQuote:
    with api_call(request, P.members_read) as (tx, who):
        return service.quote_parking_exit(tx, principal=who, data=body)


@router.post("/venue-events/parking-exit", response_model=ParkingExited,
             summary="出场结算：使用免费停车时长、积分抵扣并记一笔停车订单（以出场事件号幂等）")
def parking_exit(body: ParkingExitCommit, request: Request) -> ParkingExited:
    with api_call(request, P.members_write) as (tx, who):
        return service.parking_exit(tx, principal=who, data=body, actor=who.actor)


@router.post("/benefits/use", response_model=BenefitUsed,
             summary="前台、贵宾厅等处使用权益（如免费升房），按本期额度扣减（以使用单号幂等）")
def use_benefit(body: BenefitUseIn, request: Request) -> BenefitUsed:
    with api_call(request, P.members_write) as (tx, who):
        return service.use_benefit(tx, principal=who, data=body)
