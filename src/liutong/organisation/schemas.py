from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from liutong.organisation.models import MerchantMode, Role, TerminalKind, VenueFormat

Code = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
Name = Field(min_length=1, max_length=128)


class TenantCreate(BaseModel):
    code: str = Code
    name: str = Name
    timezone: str = "Asia/Shanghai"


class TenantOut(BaseModel):
    id: int
    code: str
    name: str
    timezone: str
    created_at: datetime


class EntityCreate(BaseModel):
    code: str = Code
    name: str = Name
    credit_code: str | None = Field(default=None, pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$",
                                    description="统一社会信用代码 / unified social credit code")


class EntityOut(BaseModel):
    id: int
    code: str
    name: str
    credit_code: str | None


class VenueCreate(BaseModel):
    code: str = Code
    name: str = Name
    format: VenueFormat
    entity_id: int


class VenueOut(BaseModel):
    id: int
    code: str
    name: str
    format: VenueFormat
    entity_id: int


class MerchantCreate(BaseModel):
    code: str = Code
    name: str = Name
    mode: MerchantMode
    entity_id: int
    venue_id: int


class MerchantOut(BaseModel):
    id: int
    code: str
    name: str
    mode: MerchantMode
    entity_id: int
    venue_id: int


class StoreCreate(BaseModel):
    code: str = Code
    name: str = Name
    merchant_id: int


class StoreOut(BaseModel):
    id: int
    code: str
    name: str
    merchant_id: int


class TerminalCreate(BaseModel):
    code: str = Code
    kind: TerminalKind
    store_id: int


class TerminalOut(BaseModel):
    id: int
    code: str
    kind: TerminalKind
    store_id: int
    merchant_id: int


class StaffCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-@]+$")
    display_name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=128)
    role: Role
    merchant_id: int | None = None


class StaffOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    merchant_id: int | None
    active: bool


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    merchant_id: int | None = None
    terminal_id: int | None = None


class ApiKeyOut(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str
    merchant_id: int | None
    terminal_id: int | None
    created_at: datetime
    #: The full key, shown once at creation and never again (only its hash is kept).
    key: str | None = None
