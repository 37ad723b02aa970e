"""Organisation set-up: every query here is scoped to the caller's tenant, and merchant-bound
callers see only their own merchant's stores, terminals and keys."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from liutong.errors import DuplicateCode, InvalidReference, NotFound, PermissionDenied, TenantNotFound
from liutong.kit import idempotency
from liutong.ledger import service as ledger
from liutong.program import service as program
from liutong.organisation.auth import MERCHANT_ROLES, Principal, hash_password, hash_secret, new_key_material
from liutong.organisation.models import (
    ApiKey,
    LegalEntity,
    Merchant,
    Role,
    StaffUser,
    Store,
    Tenant,
    Terminal,
    Venue,
)
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

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

O = TypeVar("O", bound=BaseModel)


def _out(model: type[O], row: Any) -> O:
    return model.model_validate(row, from_attributes=True)


def _insert(tx: Tx, row: Any, code: str) -> None:
    tx.session.add(row)
    try:
        with tx.session.begin_nested():
            tx.session.flush([row])
    except IntegrityError:
        raise DuplicateCode(value=code) from None


def _in_tenant(tx: Tx, model: type, tenant_id: int, ident: int | None, what: str) -> Any:
    row = tx.session.get(model, ident) if ident is not None else None
    if row is None or row.tenant_id != tenant_id:
        raise InvalidReference(what=what)
    return row


# --- tenants -------------------------------------------------------------------------------------


def create_tenant(tx: Tx, *, data: TenantCreate, key: str) -> TenantOut:
    def run() -> TenantOut:
        tenant = Tenant(code=data.code, name=data.name, timezone=data.timezone, created_at=tx.now())
        _insert(tx, tenant, data.code)
        ledger.open_system_accounts(tx, tenant_id=tenant.id)
        program.start_program(tx, tenant_id=tenant.id)
        return _out(TenantOut, tenant)

    return idempotency.idempotent(tx, tenant_id=idempotency.PLATFORM, key=key, operation="tenant.create",
                                  request=data.model_dump(mode="json"), model=TenantOut, run=run)


def get_tenant(tx: Tx, tenant_id: int) -> TenantOut:
    tenant = tx.session.get(Tenant, tenant_id)
    if tenant is None:
        raise TenantNotFound()
    return _out(TenantOut, tenant)


def tenant_by_code(tx: Tx, code: str) -> Tenant:
    tenant = tx.session.scalars(select(Tenant).where(Tenant.code == code)).first()
    if tenant is None:
        raise TenantNotFound()
    return tenant


def act_in_tenant(tx: Tx, principal: Principal, tenant_code: str) -> Principal:
    """A platform admin acting inside one tenant (support, set-up). Others keep their own."""
    if principal.role is not Role.platform_admin:
        if principal.tenant_id is not None and tenant_by_code(tx, tenant_code).id == principal.tenant_id:
            return principal
        raise PermissionDenied(permission="tenant")
    return replace(principal, tenant_id=tenant_by_code(tx, tenant_code).id)


# --- entities, venues, merchants, stores, terminals ----------------------------------------------


def create_entity(tx: Tx, *, tenant_id: int, data: EntityCreate, key: str) -> EntityOut:
    def run() -> EntityOut:
        entity = LegalEntity(tenant_id=tenant_id, created_at=tx.now(), **data.model_dump())
        _insert(tx, entity, data.code)
        ledger.open_entity_accounts(tx, tenant_id=tenant_id, entity_id=entity.id)
        return _out(EntityOut, entity)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="entity.create",
                                  request=data.model_dump(mode="json"), model=EntityOut, run=run)


def create_venue(tx: Tx, *, tenant_id: int, data: VenueCreate, key: str) -> VenueOut:
    def run() -> VenueOut:
        _in_tenant(tx, LegalEntity, tenant_id, data.entity_id, "法人主体 / legal entity")
        venue = Venue(tenant_id=tenant_id, created_at=tx.now(), **data.model_dump(mode="json"))
        _insert(tx, venue, data.code)
        return _out(VenueOut, venue)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="venue.create",
                                  request=data.model_dump(mode="json"), model=VenueOut, run=run)


def create_merchant(tx: Tx, *, tenant_id: int, data: MerchantCreate, key: str) -> MerchantOut:
    def run() -> MerchantOut:
        _in_tenant(tx, LegalEntity, tenant_id, data.entity_id, "法人主体 / legal entity")
        _in_tenant(tx, Venue, tenant_id, data.venue_id, "业态 / venue")
        merchant = Merchant(tenant_id=tenant_id, created_at=tx.now(), **data.model_dump(mode="json"))
        _insert(tx, merchant, data.code)
        ledger.open_merchant_accounts(tx, tenant_id=tenant_id, merchant_id=merchant.id)
        return _out(MerchantOut, merchant)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="merchant.create",
                                  request=data.model_dump(mode="json"), model=MerchantOut, run=run)


def create_store(tx: Tx, *, tenant_id: int, data: StoreCreate, key: str) -> StoreOut:
    def run() -> StoreOut:
        _in_tenant(tx, Merchant, tenant_id, data.merchant_id, "商户 / merchant")
        store = Store(tenant_id=tenant_id, created_at=tx.now(), **data.model_dump())
        _insert(tx, store, data.code)
        return _out(StoreOut, store)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="store.create",
                                  request=data.model_dump(mode="json"), model=StoreOut, run=run)


def create_terminal(tx: Tx, *, tenant_id: int, data: TerminalCreate, key: str) -> TerminalOut:
    def run() -> TerminalOut:
        store = _in_tenant(tx, Store, tenant_id, data.store_id, "门店 / store")
        terminal = Terminal(tenant_id=tenant_id, merchant_id=store.merchant_id, created_at=tx.now(),
                            **data.model_dump(mode="json"))
        _insert(tx, terminal, data.code)
        return _out(TerminalOut, terminal)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="terminal.create",
                                  request=data.model_dump(mode="json"), model=TerminalOut, run=run)


def _listing(tx: Tx, model: type, out: type[O], principal: Principal, merchant_column: Any = None) -> list[O]:
    tenant_id = principal.require_tenant()
    stmt = select(model).where(model.tenant_id == tenant_id).order_by(model.id)
    if principal.merchant_id is not None and merchant_column is not None:
        stmt = stmt.where(merchant_column == principal.merchant_id)
    return [_out(out, row) for row in tx.session.scalars(stmt)]


def list_entities(tx: Tx, principal: Principal) -> list[EntityOut]:
    return _listing(tx, LegalEntity, EntityOut, principal)


def list_venues(tx: Tx, principal: Principal) -> list[VenueOut]:
    return _listing(tx, Venue, VenueOut, principal)


def list_merchants(tx: Tx, principal: Principal) -> list[MerchantOut]:
    return _listing(tx, Merchant, MerchantOut, principal, Merchant.id)


def list_stores(tx: Tx, principal: Principal) -> list[StoreOut]:
    return _listing(tx, Store, StoreOut, principal, Store.merchant_id)


def list_terminals(tx: Tx, principal: Principal) -> list[TerminalOut]:
    return _listing(tx, Terminal, TerminalOut, principal, Terminal.merchant_id)


def get_merchant(tx: Tx, principal: Principal, merchant_id: int) -> MerchantOut:
    """Another tenant's or (for a merchant key) another merchant's id is simply not found."""
    tenant_id = principal.require_tenant()
    merchant = tx.session.get(Merchant, merchant_id)
    if (merchant is None or merchant.tenant_id != tenant_id
            or (principal.merchant_id is not None and principal.merchant_id != merchant.id)):
        raise NotFound(what="商户 / merchant")
    return _out(MerchantOut, merchant)


# --- staff and keys ------------------------------------------------------------------------------------


def _check_scope(tx: Tx, tenant_id: int, role: Role, merchant_id: int | None, terminal_id: int | None) -> tuple[int | None, int | None]:
    if role is Role.platform_admin:
        raise PermissionDenied(permission="platform_admin")
    if role in MERCHANT_ROLES:
        if terminal_id is not None:
            terminal = _in_tenant(tx, Terminal, tenant_id, terminal_id, "终端 / terminal")
            if merchant_id is not None and merchant_id != terminal.merchant_id:
                raise InvalidReference(what="终端 / terminal")
            merchant_id = terminal.merchant_id
        _in_tenant(tx, Merchant, tenant_id, merchant_id, "商户 / merchant")
        return merchant_id, terminal_id
    if merchant_id is not None or terminal_id is not None:
        raise InvalidReference(what="商户 / merchant")
    return None, None


def create_staff(tx: Tx, *, tenant_id: int, data: StaffCreate, key: str) -> StaffOut:
    def run() -> StaffOut:
        merchant_id, _ = _check_scope(tx, tenant_id, data.role, data.merchant_id, None)
        user = StaffUser(tenant_id=tenant_id, merchant_id=merchant_id, username=data.username,
                         display_name=data.display_name, password_hash=hash_password(data.password),
                         role=data.role.value, active=True, created_at=tx.now())
        _insert(tx, user, data.username)
        return _out(StaffOut, user)

    request = data.model_dump(mode="json", exclude={"password"})
    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="staff.create",
                                  request=request, model=StaffOut, run=run)


def issue_api_key(tx: Tx, *, tenant_id: int | None, data: ApiKeyCreate, key: str) -> ApiKeyOut:
    """A new key; the full key is in this answer only. A replay answers without it."""
    scope = tenant_id if tenant_id is not None else idempotency.PLATFORM
    got = idempotency.claim(tx, tenant_id=scope, key=key, operation="api_key.create",
                            request=data.model_dump(mode="json"))
    if not isinstance(got, idempotency.Claim):
        return ApiKeyOut.model_validate(got)
    if tenant_id is None:
        if data.role is not Role.platform_admin:
            raise PermissionDenied(permission="tenant")
        merchant_id = terminal_id = None
    else:
        merchant_id, terminal_id = _check_scope(tx, tenant_id, data.role, data.merchant_id, data.terminal_id)
    prefix, secret, full = new_key_material()
    row = ApiKey(tenant_id=tenant_id, merchant_id=merchant_id, terminal_id=terminal_id, name=data.name,
                 role=data.role.value, prefix=prefix, secret_hash=hash_secret(secret), created_at=tx.now())
    tx.session.add(row)
    tx.session.flush()
    out = _out(ApiKeyOut, row)
    idempotency.complete(tx, got, out.model_dump(mode="json"))
    return out.model_copy(update={"key": full})


def list_api_keys(tx: Tx, principal: Principal) -> list[ApiKeyOut]:
    return _listing(tx, ApiKey, ApiKeyOut, principal, ApiKey.merchant_id)
