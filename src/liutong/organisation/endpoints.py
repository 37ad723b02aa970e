from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security

from liutong.organisation import service
from liutong.organisation.auth import Permission as P
from liutong.organisation.schemas import (
    ApiKeyCreate,
    ApiKeyOut,
    EntityCreate,
    EntityOut,
    MerchantCreate,
    MerchantOut,
    StaffCreate,
    StaffOut,
    StoreCreate,
    StoreOut,
    TenantCreate,
    TenantOut,
    TerminalCreate,
    TerminalOut,
    VenueCreate,
    VenueOut,
)
from liutong.web.deps import api_call, bearer, idempotency_key

router = APIRouter(tags=["organisation 组织"], dependencies=[Security(bearer)])
Key = Annotated[str, Depends(idempotency_key)]


@router.post("/tenants", status_code=201, response_model=TenantOut, summary="创建租户（平台管理员）")
def create_tenant(body: TenantCreate, request: Request, key: Key) -> TenantOut:
    with api_call(request, P.platform_tenants) as (tx, _):
        return service.create_tenant(tx, data=body, key=key)


@router.get("/tenant", response_model=TenantOut, summary="当前租户")
def current_tenant(request: Request) -> TenantOut:
    with api_call(request, P.org_read) as (tx, who):
        return service.get_tenant(tx, who.require_tenant())


@router.post("/entities", status_code=201, response_model=EntityOut, summary="新建法人主体")
def create_entity(body: EntityCreate, request: Request, key: Key) -> EntityOut:
    with api_call(request, P.org_write) as (tx, who):
        return service.create_entity(tx, tenant_id=who.require_tenant(), data=body, key=key)


@router.get("/entities", response_model=list[EntityOut], summary="法人主体列表")
def list_entities(request: Request) -> list[EntityOut]:
    with api_call(request, P.org_read) as (tx, who):
        return service.list_entities(tx, who)


@router.post("/venues", status_code=201, response_model=VenueOut, summary="新建业态 / 场馆")
def create_venue(body: VenueCreate, request: Request, key: Key) -> VenueOut:
    with api_call(request, P.org_write) as (tx, who):
        return service.create_venue(tx, tenant_id=who.require_tenant(), data=body, key=key)


@router.get("/venues", response_model=list[VenueOut], summary="业态列表")
def list_venues(request: Request) -> list[VenueOut]:
    with api_call(request, P.org_read) as (tx, who):
        return service.list_venues(tx, who)


@router.post("/merchants", status_code=201, response_model=MerchantOut, summary="新建商户")
def create_merchant(body: MerchantCreate, request: Request, key: Key) -> MerchantOut:
    with api_call(request, P.org_write) as (tx, who):
        return service.create_merchant(tx, tenant_id=who.require_tenant(), data=body, key=key)


@router.get("/merchants", response_model=list[MerchantOut], summary="商户列表（商户密钥只见本商户）")
def list_merchants(request: Request) -> list[MerchantOut]:
    with api_call(request, P.org_read) as (tx, who):
        return service.list_merchants(tx, who)


@router.get("/merchants/{merchant_id}", response_model=MerchantOut, summary="商户详情")
def get_merchant(merchant_id: int, request: Request) -> MerchantOut:
    with api_call(request, P.org_read) as (tx, who):
        return service.get_merchant(tx, who, merchant_id)


@router.post("/stores", status_code=201, response_model=StoreOut, summary="新建门店")
def create_store(body: StoreCreate, request: Request, key: Key) -> StoreOut:
    with api_call(request, P.org_write) as (tx, who):
        return service.create_store(tx, tenant_id=who.require_tenant(), data=body, key=key)


@router.get("/stores", response_model=list[StoreOut], summary="门店列表")
def list_stores(request: Request) -> list[StoreOut]:
    with api_call(request, P.org_read) as (tx, who):
        return service.list_stores(tx, who)


@router.post("/terminals", status_code=201, response_model=TerminalOut, summary="新建终端（POS、闸机、前台、停车道闸）")
def create_terminal(body: TerminalCreate, request: Request, key: Key) -> TerminalOut:
    with api_call(request, P.org_write) as (tx, who):
        return service.create_terminal(tx, tenant_id=who.require_tenant(), data=body, key=key)


@router.get("/terminals", response_model=list[TerminalOut], summary="终端列表")
def list_terminals(request: Request) -> list[TerminalOut]:
    with api_call(request, P.org_read) as (tx, who):
        return service.list_terminals(tx, who)


@router.post("/staff", status_code=201, response_model=StaffOut, summary="新建员工账号")
def create_staff(body: StaffCreate, request: Request, key: Key) -> StaffOut:
    with api_call(request, P.staff_write) as (tx, who):
        return service.create_staff(tx, tenant_id=who.require_tenant(), data=body, key=key)


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut, summary="签发 API 密钥（仅此一次显示）")
def create_api_key(body: ApiKeyCreate, request: Request, key: Key) -> ApiKeyOut:
    with api_call(request, P.staff_write) as (tx, who):
        return service.issue_api_key(tx, tenant_id=who.require_tenant(), data=body, key=key)


@router.get("/api-keys", response_model=list[ApiKeyOut], summary="API 密钥列表（不含密钥本身）")
def list_api_keys(request: Request) -> list[ApiKeyOut]:
    with api_call(request, P.org_read) as (tx, who):
        return service.list_api_keys(tx, who)
