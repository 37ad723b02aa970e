from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security

from liutong.organisation.auth import Permission as P
from liutong.program import benefits, service
from liutong.program.benefits import BenefitUsage
from liutong.program.schemas import (
    EarnPreview,
    EarnPreviewRequest,
    ProgramPublish,
    ProgramVersionOut,
    ProgramVersionSummary,
)
from liutong.web.deps import api_call, bearer, idempotency_key

router = APIRouter(tags=["program 会员方案"], dependencies=[Security(bearer)])
Key = Annotated[str, Depends(idempotency_key)]


@router.get("/program", response_model=ProgramVersionOut, summary="当前会员方案（积分、活动、等级、权益规则）")
def current(request: Request) -> ProgramVersionOut:
    with api_call(request, P.org_read) as (tx, who):
        return service.current(tx, tenant_id=who.require_tenant())


@router.put("/program", response_model=ProgramVersionOut, summary="发布新版本会员方案（每次修改都是新版本）")
def publish(body: ProgramPublish, request: Request, key: Key) -> ProgramVersionOut:
    with api_call(request, P.program_write) as (tx, who):
        return service.publish(tx, tenant_id=who.require_tenant(), data=body, key=key, actor=who.actor)


@router.get("/program/versions", response_model=list[ProgramVersionSummary], summary="方案版本历史")
def versions(request: Request) -> list[ProgramVersionSummary]:
    with api_call(request, P.org_read) as (tx, who):
        return service.versions(tx, tenant_id=who.require_tenant())


@router.get("/program/versions/{number}", response_model=ProgramVersionOut, summary="某一版本的方案")
def version(number: int, request: Request) -> ProgramVersionOut:
    with api_call(request, P.org_read) as (tx, who):
        return service.version(tx, tenant_id=who.require_tenant(), number=number)


@router.post("/program/earn-preview", response_model=EarnPreview,
             summary="试算：一笔样例消费在当前方案或草稿下能得多少积分（不改变任何数据）")
def preview(body: EarnPreviewRequest, request: Request) -> EarnPreview:
    with api_call(request, P.org_read) as (tx, who):
        return service.preview_earn(tx, tenant_id=who.require_tenant(), data=body)


@router.get("/benefits/usage", response_model=list[BenefitUsage], summary="权益使用率：持有人数、使用人数、次数、价值")
def benefit_usage(request: Request, since: datetime, until: datetime) -> list[BenefitUsage]:
    with api_call(request, P.org_read) as (tx, who):
        tenant_id = who.require_tenant()
        return benefits.usage(tx, tenant_id=tenant_id, program=service.current(tx, tenant_id=tenant_id).document,
                              since=since, until=until)
