"""A campaign gives no more than its budget — per member and in all, whatever the concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from liutong.checkout import service as checkout
from liutong.checkout.models import Order
from liutong.checkout.schemas import CommitRequest
from liutong.organisation.auth import Principal
from liutong.organisation.models import Role
from liutong.program import service as program_service
from liutong.program.defaults import default_program
from liutong.program.models import CampaignBudgetUse
from liutong.program.schemas import ProgramPublish
from tests.conftest import build_world, key, register

SATURDAY_NOON = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def _budgeted_weekend(tx, tenant_id, *, per_member=None, total=None):
    doc = default_program().model_dump(mode="json")
    weekend = next(c for c in doc["earn"]["campaigns"] if c["code"] == "weekend-x2")
    weekend["budget_per_member"], weekend["budget_total"] = per_member, total
    program_service.publish(tx, tenant_id=tenant_id, key=key(), actor="test",
                            data=ProgramPublish(document=doc, note="周末双倍，预算有限"))


def _buy(client, world, order_no, phone, amount=10_000):
    return client.post("/v1/checkout/commit", headers=world.headers(world.coffee_cashier_key), json={
        "order_no": order_no, "member": {"phone": phone},
        "lines": [{"sku": "MUG", "category": "goods", "qty": 1, "unit_price": amount}],
        "payment": {"channel": "wechat", "amount": amount}})


def test_a_member_gets_weekend_points_up_to_their_budget_then_base_points_only(client, world, runtime):
    runtime.clock = lambda: SATURDAY_NOON
    with runtime.transaction() as tx:
        _budgeted_weekend(tx, world.tenant_id, per_member=150)
        register(tx, world, "13500135000")
    first = _buy(client, world, "B-1", "13500135000").json()["quote"]["earn"]
    second = _buy(client, world, "B-2", "13500135000").json()["quote"]["earn"]
    third = _buy(client, world, "B-3", "13500135000").json()["quote"]["earn"]
    assert [first["points"], second["points"], third["points"]] == [200, 150, 100]
    assert second["explanation"] == "基础积分 100 + 周末双倍 50"
    assert third["explanation"] == "基础积分 100"


def test_the_total_budget_is_shared_by_every_member(client, world, runtime):
    runtime.clock = lambda: SATURDAY_NOON
    with runtime.transaction() as tx:
        _budgeted_weekend(tx, world.tenant_id, total=250)
        for phone in ("13500135001", "13500135002", "13500135003"):
            register(tx, world, phone)
    earned = [_buy(client, world, f"T-{n}", phone).json()["quote"]["earn"]["points"]
              for n, phone in enumerate(("13500135001", "13500135002", "13500135003"))]
    assert earned == [200, 200, 150]
    with runtime.transaction() as tx:
        total = tx.session.query(CampaignBudgetUse).filter_by(campaign_code="weekend-x2", member_id=0).one()
        assert total.used == 250


def test_a_quote_shows_what_the_budget_still_allows_and_takes_nothing(client, world, runtime):
    runtime.clock = lambda: SATURDAY_NOON
    with runtime.transaction() as tx:
        _budgeted_weekend(tx, world.tenant_id, total=30)
        register(tx, world, "13500135004")
    body = {"member": {"phone": "13500135004"}, "lines": [{"sku": "MUG", "category": "goods", "qty": 1,
                                                            "unit_price": 10_000}]}
    for _ in range(2):
        q = client.post("/v1/checkout/quote", json=body, headers=world.headers(world.coffee_cashier_key)).json()
        assert q["earn"]["explanation"] == "基础积分 100 + 周末双倍 30"


def test_concurrent_tills_never_give_more_than_the_total_budget(committed_runtime):
    rt = committed_runtime
    rt.clock = lambda: SATURDAY_NOON
    with rt.transaction() as tx:
        world = build_world(tx)
        _budgeted_weekend(tx, world.tenant_id, total=1_000)
        members = [register(tx, world, f"135{n:08d}").id for n in range(8)]
        terminal = world.coffee_terminal
    principal = Principal(key_id=None, role=Role.cashier, tenant_id=world.tenant_id, merchant_id=world.mall_coffee,
                          terminal_id=terminal, name="till")
    errors: list[Exception] = []

    def till(n: int) -> None:
        try:
            for i in range(4):
                with rt.transaction() as tx:
                    checkout.commit(tx, principal=principal, actor="till", data=CommitRequest(
                        order_no=f"C-{n}-{i}", member={"member_id": members[n]},
                        lines=[{"sku": "MUG", "category": "goods", "qty": 1, "unit_price": 10_000}],
                        payment={"channel": "wechat", "amount": 10_000}))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=till, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with rt.transaction() as tx:
        used = tx.session.query(CampaignBudgetUse).filter_by(
            tenant_id=world.tenant_id, campaign_code="weekend-x2", member_id=0).one().used
        orders = tx.session.query(Order).filter_by(tenant_id=world.tenant_id).all()
    assert used == 1_000
    # 32 sales of ¥100: 3,200 base points and exactly the 1,000 the campaign could give
    assert sum(o.points_earned for o in orders) == 3_200 + 1_000



def test_a_campaign_for_a_member_list_reaches_only_the_members_on_it(client, world, runtime):
    runtime.clock = lambda: SATURDAY_NOON
    doc = default_program().model_dump(mode="json")
    doc["earn"]["campaigns"].append({"code": "vip-bonus", "name": "贵宾名单加赠", "window": {}, "effect": "bonus",
                                     "bonus_points": 300, "member_lists": ["vip-2026"]})
    with runtime.transaction() as tx:
        program_service.publish(tx, tenant_id=world.tenant_id, key=key(), actor="test",
                                data=ProgramPublish(document=doc, note="贵宾名单活动"))
        invited = register(tx, world, "13500135100")
        register(tx, world, "13500135101")
    op = world.headers()
    assert client.put("/v1/member-lists/vip-2026", json={"name": "2026贵宾"}, headers=op).status_code == 200
    unknown = client.post("/v1/member-lists/vip-2026/members", headers=world.headers(idem=key()),
                          json={"member_nos": [invited.member_no, "0000000000"]})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "invalid_reference"
    added = client.post("/v1/member-lists/vip-2026/members", headers=world.headers(idem=key()),
                        json={"member_nos": [invited.member_no, invited.member_no]})
    assert added.json()["members"] == 1
    on_list = _buy(client, world, "L-1", "13500135100").json()["quote"]["earn"]
    off_list = _buy(client, world, "L-2", "13500135101").json()["quote"]["earn"]
    assert on_list["explanation"] == "基础积分 100 + 周末双倍 100 + 贵宾名单加赠 300"
    assert off_list["explanation"] == "基础积分 100 + 周末双倍 100"
