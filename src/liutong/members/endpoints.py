from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Security

from liutong.members import lists, service, tiers
from liutong.members.lists import MemberListAdd, MemberListIn, MemberListOut
from liutong.members.models import IdentityKind
from liutong.members.schemas import (
    ConsentIn,
    Consents,
    IdentityIn,
    MemberCodeOut,
    MemberCodeResolve,
    MemberOut,
    MemberRegister,
    MemberUpdate,
    MergeRequest,
    MergeResult,
    PaidUpgradeIn,
    PaidUpgradeOut,
    StatusChange,
    TierHistoryPage,
    TierOverrideClear,
    TierOverrideIn,
    TierProgress,
    TierStatus,
)
from liutong.organisation.auth import Permission as P
from liutong.program.rules import Code
from liutong.web.deps import api_call, bearer, idempotency_key

router = APIRouter(tags=["members 会员"], dependencies=[Security(bearer)])
Key = Annotated[str, Depends(idempotency_key)]


@router.post("/members", status_code=201, response_model=MemberOut, summary="注册会员（手机号必填）")
def register(body: MemberRegister, request: Request, key: Key) -> MemberOut:
    with api_call(request, P.members_write) as (tx, who):
        return service.register(tx, tenant_id=who.require_tenant(), data=body, key=key, actor=who.actor)


@router.get("/members/lookup", response_model=MemberOut, summary="按任一标识查找会员（手机号、卡号、openid、车牌、身份证）")
def lookup(request: Request, kind: IdentityKind, value: Annotated[str, Query(min_length=1, max_length=64)]) -> MemberOut:
    with api_call(request, P.members_read) as (tx, who):
        member = service.lookup(tx, tenant_id=who.require_tenant(), kind=kind, value=value)
        return service.view(tx, member)


@router.post("/members/merge", response_model=MergeResult, summary="合并两个会员")
def merge(body: MergeRequest, request: Request, key: Key) -> MergeResult:
    with api_call(request, P.members_merge) as (tx, who):
        return service.merge(tx, tenant_id=who.require_tenant(), source_id=body.source_member_id,
                             target_id=body.target_member_id, reason=body.reason, key=key, actor=who.actor)


@router.post("/member-codes/resolve", response_model=MemberOut, summary="POS 扫会员码识别会员")
def resolve_code(body: MemberCodeResolve, request: Request) -> MemberOut:
    with api_call(request, P.members_read) as (tx, who):
        member = service.resolve_code(tx, tenant_id=who.require_tenant(), code=body.code)
        return service.view(tx, member)


@router.get("/members/{member_id}", response_model=MemberOut,
            summary="会员资料（默认脱敏；reveal=true 需授权并记录审计）")
def get_member(member_id: int, request: Request, reveal: bool = False) -> MemberOut:
    with api_call(request, P.members_reveal if reveal else P.members_read) as (tx, who):
        member = service.get(tx, tenant_id=who.require_tenant(), member_id=member_id)
        return service.view(tx, member, reveal=reveal, actor=who.actor)


@router.patch("/members/{member_id}", response_model=MemberOut, summary="修改会员资料")
def update(member_id: int, body: MemberUpdate, request: Request, key: Key) -> MemberOut:
    with api_call(request, P.members_write) as (tx, who):
        return service.update_profile(tx, tenant_id=who.require_tenant(), member_id=member_id, data=body, key=key,
                                      actor=who.actor)


@router.post("/members/{member_id}/identities", response_model=MemberOut, summary="绑定标识")
def add_identity(member_id: int, body: IdentityIn, request: Request, key: Key) -> MemberOut:
    with api_call(request, P.members_write) as (tx, who):
        return service.add_identity(tx, tenant_id=who.require_tenant(), member_id=member_id, data=body, key=key,
                                    actor=who.actor)


@router.delete("/members/{member_id}/identities/{identity_id}", response_model=MemberOut, summary="解绑标识")
def remove_identity(member_id: int, identity_id: int, request: Request, key: Key) -> MemberOut:
    with api_call(request, P.members_write) as (tx, who):
        return service.remove_identity(tx, tenant_id=who.require_tenant(), member_id=member_id,
                                       identity_id=identity_id, key=key, actor=who.actor)


@router.post("/members/{member_id}/status", response_model=MemberOut, summary="冻结 / 解冻 / 注销")
def change_status(member_id: int, body: StatusChange, request: Request, key: Key) -> MemberOut:
    with api_call(request, P.org_write) as (tx, who):
        return service.change_status(tx, tenant_id=who.require_tenant(), member_id=member_id, status=body.status,
                                     reason=body.reason, key=key, actor=who.actor)


@router.get("/members/{member_id}/consents", response_model=Consents, summary="授权同意（当前与历史）")
def consents(member_id: int, request: Request) -> Consents:
    with api_call(request, P.members_read) as (tx, who):
        return service.consents(tx, tenant_id=who.require_tenant(), member_id=member_id)


@router.post("/members/{member_id}/consents", response_model=Consents, summary="记录一次授权或撤回")
def record_consent(member_id: int, body: ConsentIn, request: Request, key: Key) -> Consents:
    with api_call(request, P.members_write) as (tx, who):
        return service.record_consent(tx, tenant_id=who.require_tenant(), member_id=member_id, data=body, key=key)


@router.post("/members/{member_id}/code", response_model=MemberCodeOut, summary="生成动态会员码")
def member_code(member_id: int, request: Request) -> MemberCodeOut:
    with api_call(request, P.members_read) as (tx, who):
        return service.issue_code(tx, tenant_id=who.require_tenant(), member_id=member_id)


@router.put("/member-lists/{code}", response_model=MemberListOut, summary="创建或重命名名单（活动可按名单定向）")
def save_list(code: Code, body: MemberListIn, request: Request) -> MemberListOut:
    with api_call(request, P.program_write) as (tx, who):
        return lists.save(tx, tenant_id=who.require_tenant(), code=code, data=body)


@router.post("/member-lists/{code}/members", response_model=MemberListOut, summary="按会员号加入名单")
def add_to_list(code: Code, body: MemberListAdd, request: Request, key: Key) -> MemberListOut:
    with api_call(request, P.program_write) as (tx, who):
        return lists.add(tx, tenant_id=who.require_tenant(), code=code, data=body, key=key)


@router.get("/member-lists/{code}", response_model=MemberListOut, summary="名单与人数")
def get_list(code: Code, request: Request) -> MemberListOut:
    with api_call(request, P.org_read) as (tx, who):
        return lists.get(tx, tenant_id=who.require_tenant(), code=code)


@router.get("/members/{member_id}/tier", response_model=TierProgress,
            summary="等级、升级还差多少、保级进度（会员中心）")
def tier_progress(member_id: int, request: Request) -> TierProgress:
    with api_call(request, P.members_read) as (tx, who):
        return tiers.progress(tx, tenant_id=who.require_tenant(), member_id=member_id)


@router.get("/members/{member_id}/tier/history", response_model=TierHistoryPage, summary="等级变动历史（含原因）")
def tier_history(member_id: int, request: Request, cursor: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50) -> TierHistoryPage:
    with api_call(request, P.members_read) as (tx, who):
        return tiers.history(tx, tenant_id=who.require_tenant(), member_id=member_id, cursor=cursor, limit=limit)


@router.put("/members/{member_id}/tier/override", response_model=TierStatus,
            summary="人工调整等级：保底、锁定、到期（运营权限，记录审计）")
def set_tier_override(member_id: int, body: TierOverrideIn, request: Request, key: Key) -> TierStatus:
    with api_call(request, P.program_write) as (tx, who):
        return tiers.set_override(tx, tenant_id=who.require_tenant(), member_id=member_id, data=body, key=key,
                                  actor=who.actor)


@router.post("/members/{member_id}/tier/override/clear", response_model=TierStatus,
             summary="取消人工调整（等级保留到下次复核）")
def clear_tier_override(member_id: int, body: TierOverrideClear, request: Request, key: Key) -> TierStatus:
    with api_call(request, P.program_write) as (tx, who):
        return tiers.clear_override(tx, tenant_id=who.require_tenant(), member_id=member_id, data=body, key=key,
                                    actor=who.actor)


@router.post("/members/{member_id}/tier/paid-upgrades", status_code=201, response_model=PaidUpgradeOut,
             summary="付费升级：按方案价格购买等级，期内不降级")
def buy_tier(member_id: int, body: PaidUpgradeIn, request: Request, key: Key) -> PaidUpgradeOut:
    with api_call(request, P.members_write) as (tx, who):
        return tiers.buy_upgrade(tx, tenant_id=who.require_tenant(), member_id=member_id, data=body, key=key,
                                 actor=who.actor)
