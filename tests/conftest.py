"""Test harness: a real database (SQLite file, or PostgreSQL when LIUTONG_TEST_DATABASE_URL
points at one), built once per run by the same Alembic migrations as production; each test
runs inside a transaction that is rolled back (services' commits become savepoints)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from liutong.bootstrap import Runtime, Tx
from liutong.config import Settings
from liutong.db import build_engine
from liutong.kit.crypto import Vault
from liutong.migrate import upgrade

TEST_SECRET = "4c697574-6f6e-6720-7465-7374206b6579"  # 36 bytes, tests only


def _database_url(tmp_root: Path) -> str:
    return os.environ.get("LIUTONG_TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'liutong-test.db'}"


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    url = _database_url(tmp_path_factory.mktemp("db"))
    eng = build_engine(url)
    if eng.dialect.name == "postgresql":
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key=TEST_SECRET)


@pytest.fixture
def runtime(engine, settings) -> Iterator[Runtime]:
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    rt = Runtime(settings=settings, engine=engine, session_factory=factory, vault=Vault(TEST_SECRET.encode()))
    yield rt
    outer.rollback()
    connection.close()


@pytest.fixture
def tx(runtime) -> Iterator[Tx]:
    """A unit of work for service-level tests (rolled back with the test)."""
    with runtime.transaction() as unit:
        yield unit


@pytest.fixture
def client(runtime) -> TestClient:
    from liutong.web.app import create_app

    return TestClient(create_app(runtime))


def is_postgres(engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def committed_runtime(engine, tmp_path) -> Iterator[Runtime]:
    """A runtime whose transactions really commit (concurrency tests on PostgreSQL)."""
    if not is_postgres(engine):
        pytest.skip("concurrency is tested on PostgreSQL (set LIUTONG_TEST_DATABASE_URL)")
    eng = build_engine(engine.url.render_as_string(hide_password=False), pool_size=20)
    rt = Runtime(settings=Settings(data_dir=tmp_path, secret_key=TEST_SECRET), engine=eng,
                 session_factory=sessionmaker(bind=eng, expire_on_commit=False), vault=Vault(TEST_SECRET.encode()))
    yield rt
    eng.dispose()


def key() -> str:
    return secrets.token_hex(8)


@dataclass
class World:
    """A tenant set up the way an operator would: entities, venues, merchants, keys."""

    tenant_id: int
    park_entity: int
    hotel_entity: int
    mall_entity: int
    park_venue: int
    mall_venue: int
    park_tickets: int
    mall_coffee: int
    mall_noodles: int
    coffee_store: int
    coffee_terminal: int
    operator_key: str
    analyst_key: str
    coffee_manager_key: str
    noodles_manager_key: str
    coffee_cashier_key: str

    def headers(self, api_key: str | None = None, idem: str | None = None, lang: str | None = None) -> dict:
        h = {"Authorization": f"Bearer {api_key or self.operator_key}"}
        if idem is not None:
            h["Idempotency-Key"] = idem
        if lang:
            h["Accept-Language"] = lang
        return h


def build_world(tx: Tx, code: str | None = None) -> World:
    from liutong.organisation import service as org
    from liutong.organisation.models import Role
    from liutong.organisation.schemas import (
        ApiKeyCreate,
        EntityCreate,
        MerchantCreate,
        StoreCreate,
        TenantCreate,
        TerminalCreate,
        VenueCreate,
    )

    code = code or f"t-{secrets.token_hex(4)}"
    t = org.create_tenant(tx, data=TenantCreate(code=code, name="西湖文旅集团"), key=key()).id

    def entity(c: str, name: str) -> int:
        return org.create_entity(tx, tenant_id=t, key=key(), data=EntityCreate(code=c, name=name)).id

    park_e, hotel_e, mall_e = entity("park", "乐园公司"), entity("hotel", "酒店公司"), entity("mall", "商管公司")
    park_v = org.create_venue(tx, tenant_id=t, key=key(), data=VenueCreate(code="park", name="欢乐谷", format="theme_park", entity_id=park_e)).id
    mall_v = org.create_venue(tx, tenant_id=t, key=key(), data=VenueCreate(code="mall", name="六通里", format="mall", entity_id=mall_e)).id

    def merchant(c: str, name: str, mode: str, e: int, v: int) -> int:
        return org.create_merchant(tx, tenant_id=t, key=key(), data=MerchantCreate(code=c, name=name, mode=mode, entity_id=e, venue_id=v)).id

    tickets = merchant("tickets", "票务", "self_operated", park_e, park_v)
    coffee = merchant("coffee", "星语咖啡", "third_party", mall_e, mall_v)
    noodles = merchant("noodles", "知味观", "third_party", mall_e, mall_v)
    store = org.create_store(tx, tenant_id=t, key=key(), data=StoreCreate(code="coffee-1", name="星语咖啡一号店", merchant_id=coffee)).id
    org.create_store(tx, tenant_id=t, key=key(), data=StoreCreate(code="noodles-1", name="知味观一号店", merchant_id=noodles))
    terminal = org.create_terminal(tx, tenant_id=t, key=key(), data=TerminalCreate(code="coffee-pos-1", kind="pos", store_id=store)).id

    def api_key(role: Role, merchant_id: int | None = None, terminal_id: int | None = None) -> str:
        return org.issue_api_key(tx, tenant_id=t, key=key(), data=ApiKeyCreate(
            name=role.value, role=role, merchant_id=merchant_id, terminal_id=terminal_id)).key

    return World(
        tenant_id=t, park_entity=park_e, hotel_entity=hotel_e, mall_entity=mall_e, park_venue=park_v,
        mall_venue=mall_v, park_tickets=tickets, mall_coffee=coffee, mall_noodles=noodles, coffee_store=store,
        coffee_terminal=terminal, operator_key=api_key(Role.operator_admin),
        analyst_key=api_key(Role.operator_analyst), coffee_manager_key=api_key(Role.merchant_manager, coffee),
        noodles_manager_key=api_key(Role.merchant_manager, noodles),
        coffee_cashier_key=api_key(Role.cashier, terminal_id=terminal),
    )


@pytest.fixture
def world(runtime) -> World:
    with runtime.transaction() as unit:
        return build_world(unit)


@pytest.fixture
def pg_world(committed_runtime) -> World:
    """A world whose setup really committed (PostgreSQL concurrency tests)."""
    with committed_runtime.transaction() as unit:
        return build_world(unit)


def register(tx: Tx, world: World, phone: str, **extra):
    from liutong.members import service as members
    from liutong.members.schemas import MemberRegister

    return members.register(tx, tenant_id=world.tenant_id, key=key(), actor="test",
                            data=MemberRegister(phone=phone, **extra))


@dataclass
class Resort:
    """The rest of a resort around the world's park and mall: a hotel with its front desk, a
    car park with its exit gate, the park's ticket gate; each with a terminal key."""

    hotel_venue: int
    hotel_rooms: int
    front_desk: int
    car_park: int
    parking_gate: int
    park_gate: int
    hotel_pos: int
    front_desk_key: str
    parking_gate_key: str
    park_gate_key: str
    hotel_pos_key: str


def build_resort(tx: Tx, world: World) -> Resort:
    from liutong.organisation import service as org
    from liutong.organisation.models import Role
    from liutong.organisation.schemas import ApiKeyCreate, MerchantCreate, StoreCreate, TerminalCreate, VenueCreate

    t = world.tenant_id
    hotel_v = org.create_venue(tx, tenant_id=t, key=key(), data=VenueCreate(
        code="hotel", name="六通度假酒店", format="hotel", entity_id=world.hotel_entity)).id
    parking_v = org.create_venue(tx, tenant_id=t, key=key(), data=VenueCreate(
        code="parking", name="P1停车场", format="parking", entity_id=world.mall_entity)).id

    def till(code: str, name: str, venue: int, entity: int, kind: str, merchant_id: int | None = None) -> tuple[int, int]:
        if merchant_id is None:
            merchant_id = org.create_merchant(tx, tenant_id=t, key=key(), data=MerchantCreate(
                code=code, name=name, mode="self_operated", entity_id=entity, venue_id=venue)).id
        store = org.create_store(tx, tenant_id=t, key=key(), data=StoreCreate(
            code=f"{code}-{kind}", name=name, merchant_id=merchant_id)).id
        terminal = org.create_terminal(tx, tenant_id=t, key=key(), data=TerminalCreate(
            code=f"{code}-{kind}-1", kind=kind, store_id=store)).id
        return merchant_id, terminal

    rooms, desk = till("rooms", "客房", hotel_v, world.hotel_entity, "front_desk")
    _, hotel_pos = till("rooms", "客房", hotel_v, world.hotel_entity, "pos", merchant_id=rooms)
    car_park, gate = till("car-park", "P1停车场", parking_v, world.mall_entity, "parking_gate")
    _, park_gate = till("tickets", "票务", world.park_venue, world.park_entity, "gate", merchant_id=world.park_tickets)

    def terminal_key(terminal: int) -> str:
        return org.issue_api_key(tx, tenant_id=t, key=key(), data=ApiKeyCreate(
            name="terminal", role=Role.cashier, terminal_id=terminal)).key

    return Resort(hotel_venue=hotel_v, hotel_rooms=rooms, front_desk=desk, car_park=car_park, parking_gate=gate,
                  park_gate=park_gate, hotel_pos=hotel_pos, front_desk_key=terminal_key(desk),
                  parking_gate_key=terminal_key(gate), park_gate_key=terminal_key(park_gate),
                  hotel_pos_key=terminal_key(hotel_pos))


@pytest.fixture
def resort(runtime, world) -> Resort:
    with runtime.transaction() as unit:
        return build_resort(unit, world)
