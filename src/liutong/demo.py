"""A small demo tenant for the quick start: a resort group with a park, a scenic area, a hotel,
a mall, a theatre and parking, a few merchants and members with points. Idempotent: running it
again keeps what exists and only issues fresh API keys to print."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from liutong.ledger import service as ledger
from liutong.members import service as members
from liutong.members.schemas import ConsentIn, IdentityIn, MemberRegister
from liutong.organisation import service as org
from liutong.organisation.models import Role, Tenant
from liutong.organisation.schemas import (
    ApiKeyCreate,
    EntityCreate,
    MerchantCreate,
    StaffCreate,
    StoreCreate,
    TenantCreate,
    TerminalCreate,
    VenueCreate,
)

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

DEMO_CODE = "demo-resort"

ENTITIES = [("park-co", "六通乐园有限公司"), ("hotel-co", "六通度假酒店有限公司"), ("mall-co", "六通商业管理有限公司")]
VENUES = [
    ("park", "六通欢乐谷", "theme_park", "park-co"),
    ("scenic", "云栖山景区", "scenic_area", "park-co"),
    ("hotel", "湖畔度假酒店", "hotel", "hotel-co"),
    ("mall", "六通里购物中心", "mall", "mall-co"),
    ("theatre", "六通大剧院", "theatre", "park-co"),
    ("parking", "P1 停车场", "parking", "mall-co"),
]
MERCHANTS = [
    ("park-tickets", "欢乐谷票务", "self_operated", "park-co", "park"),
    ("park-food", "欢乐谷美食街", "self_operated", "park-co", "park"),
    ("hotel-front", "湖畔酒店前台", "self_operated", "hotel-co", "hotel"),
    ("hotel-dining", "湖畔酒店自助餐厅", "self_operated", "hotel-co", "hotel"),
    ("mall-starcoffee", "星语咖啡（联营）", "third_party", "mall-co", "mall"),
    ("mall-noodles", "知味观面馆", "third_party", "mall-co", "mall"),
    ("mall-sports", "动感运动", "third_party", "mall-co", "mall"),
    ("theatre-box", "大剧院售票处", "self_operated", "park-co", "theatre"),
    ("parking-p1", "P1 停车场收费", "self_operated", "mall-co", "parking"),
]
MEMBERS = [
    ("13800000001", "王小明", "male", date(1988, 5, 20), "浙A12345", 3200),
    ("13800000002", "李娜", "female", date(1992, 11, 23), None, 860),
    ("13800000003", "张伟", "male", date(1979, 2, 14), "浙AD12345", 15400),
    ("13800000004", "刘芳", "female", date(1995, 8, 8), None, 120),
    ("13800000005", "陈静", "female", date(2000, 1, 1), "沪B8K9Z2", 0),
]


def seed_demo(tx: Tx) -> dict[str, Any]:
    tenant = tx.session.scalars(select(Tenant).where(Tenant.code == DEMO_CODE)).first()
    if tenant is None:
        tenant_id = _build(tx)
    else:
        tenant_id = tenant.id
    operator = org.issue_api_key(tx, tenant_id=tenant_id, key=f"demo:key:{secrets.token_hex(6)}",
                                 data=ApiKeyCreate(name="demo-operator", role=Role.operator_admin))
    return {"租户 / tenant": f"#{tenant_id} 六通文旅集团（演示）", "operator_key": operator.key}


def _build(tx: Tx) -> int:
    tenant = org.create_tenant(tx, data=TenantCreate(code=DEMO_CODE, name="六通文旅集团（演示）"), key="demo:tenant")
    t = tenant.id
    entities = {code: org.create_entity(tx, tenant_id=t, key=f"demo:entity:{code}",
                                        data=EntityCreate(code=code, name=name)).id for code, name in ENTITIES}
    venues = {code: org.create_venue(tx, tenant_id=t, key=f"demo:venue:{code}",
                                     data=VenueCreate(code=code, name=name, format=fmt, entity_id=entities[ent])).id
              for code, name, fmt, ent in VENUES}
    for code, name, mode, ent, venue in MERCHANTS:
        merchant = org.create_merchant(tx, tenant_id=t, key=f"demo:merchant:{code}", data=MerchantCreate(
            code=code, name=name, mode=mode, entity_id=entities[ent], venue_id=venues[venue]))
        store = org.create_store(tx, tenant_id=t, key=f"demo:store:{code}",
                                 data=StoreCreate(code=f"{code}-01", name=f"{name} 一号店", merchant_id=merchant.id))
        kind = "parking_gate" if venue == "parking" else "front_desk" if venue == "hotel" else "pos"
        org.create_terminal(tx, tenant_id=t, key=f"demo:terminal:{code}",
                            data=TerminalCreate(code=f"{code}-t1", kind=kind, store_id=store.id))
    org.create_staff(tx, tenant_id=t, key="demo:staff:admin", data=StaffCreate(
        username="demo-admin", display_name="演示运营管理员", password=secrets.token_urlsafe(12),
        role=Role.operator_admin))
    now = tx.now()
    for i, (phone, name, gender, birthday, plate, points) in enumerate(MEMBERS):
        identities = [IdentityIn(kind="plate", value=plate, verified=True)] if plate else []
        member = members.register(tx, tenant_id=t, key=f"demo:member:{phone}", actor="demo", data=MemberRegister(
            phone=phone, name=name, gender=gender, birthday=birthday, region="浙江省杭州市", source="demo",
            identities=identities, consents=[ConsentIn(purpose="marketing_sms", granted=i % 2 == 0, channel="demo")]))
        if points:
            earned = now - timedelta(days=30 * (i + 1))
            ledger.earn_points(tx, tenant_id=t, member_id=member.id, issuer_entity_id=entities["park-co"],
                               points=points, key=f"demo:earn:{phone}", effective_at=earned,
                               expires_at=earned + relativedelta(months=12), memo="演示积分 / demo points")
    return t
