"""Benefit uses are recorded, counted against their quota period and measured as a usage rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from liutong.members.models import Member
from liutong.program import benefits
from liutong.program.defaults import default_program
from tests.conftest import register

AT = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def test_free_parking_minutes_are_counted_per_month_in_local_time(runtime, world):
    parking = next(b for b in default_program().benefits if b.code == "gold-parking")
    runtime.clock = lambda: AT
    with runtime.transaction() as tx:
        m = register(tx, world, "13400134000").id
        assert benefits.quota_left(tx, tenant_id=world.tenant_id, member_id=m, benefit=parking, at=AT) == 120
        benefits.record_use(tx, tenant_id=world.tenant_id, member_id=m, benefit=parking, quantity=90, value=1_500, at=AT)
        assert benefits.quota_left(tx, tenant_id=world.tenant_id, member_id=m, benefit=parking, at=AT) == 30
        # 30 Nov 17:00 UTC is already 1 December in Shanghai: a new month, a new quota
        december = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
        assert benefits.quota_left(tx, tenant_id=world.tenant_id, member_id=m, benefit=parking, at=december) == 120


def test_a_gold_discount_used_at_the_till_counts_in_the_usage_rate_until_the_order_is_refunded(client, world, runtime):
    runtime.clock = lambda: AT
    with runtime.transaction() as tx:
        golds = [register(tx, world, f"1340013410{i}").id for i in range(4)]
        for m in golds:
            tx.session.get(Member, m).tier_code = "gold"
    headers = world.headers(world.coffee_cashier_key)
    basket = {"member": {"member_id": golds[0]}, "lines": [{"sku": "BAG", "category": "retail", "qty": 1,
                                                            "unit_price": 20_000}]}
    payable = client.post("/v1/checkout/quote", json=basket, headers=headers).json()["payable"]
    r = client.post("/v1/checkout/commit", headers=headers,
                    json={**basket, "order_no": "B-1", "payment": {"channel": "alipay", "amount": payable}})
    assert r.status_code == 200, r.text
    window = {"since": (AT - timedelta(days=1)).isoformat(), "until": (AT + timedelta(days=1)).isoformat()}
    usage = {u["code"]: u for u in client.get("/v1/benefits/usage", params=window, headers=world.headers()).json()}
    gold = usage["gold-retail-85"]
    assert (gold["holders"], gold["users"], gold["uses"], gold["value"], gold["usage_rate"]) == (4, 1, 1, 3_000, 0.25)
    client.post("/v1/checkout/refund", json={"order_no": "B-1", "refund_no": "RB-1"}, headers=headers)
    usage = {u["code"]: u for u in client.get("/v1/benefits/usage", params=window, headers=world.headers()).json()}
    assert usage["gold-retail-85"]["uses"] == 0
