"""Tiers: promotion at once after a purchase, overrides with floor, lock and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from liutong.members.models import TierChange
from liutong.program.defaults import default_program
from liutong.program.rules import Qualification
from liutong.program.tiers import Activity, Override, earned_tier, promotion, qualifies
from tests.conftest import register

AT = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def _act(spend=0, visits=0, growth=0, points=0):
    return Activity(spend_fen=spend, visits=visits, growth=growth, points_earned=points)


def test_qualification_combines_thresholds_with_all_or_any():
    rule = Qualification(combine="all", spend_fen=100_000, visits=3)
    assert not qualifies(rule, _act(spend=200_000, visits=2))
    assert qualifies(rule, _act(spend=100_000, visits=3))
    assert qualifies(rule.model_copy(update={"combine": "any"}), _act(spend=0, visits=3))


def test_the_highest_tier_earned_wins_and_promotion_never_demotes():
    program = default_program()
    gold = earned_tier(program, {365: _act(growth=9_000)})
    assert gold.code == "gold"
    assert promotion(program, current="silver", earned=gold, override=Override(), at=AT).code == "gold"
    assert promotion(program, current="diamond", earned=gold, override=Override(), at=AT) is None


def test_a_manual_floor_lifts_a_member_and_a_lock_holds_them_until_it_expires():
    program = default_program()
    normal = program.tier("normal")
    assert promotion(program, current="normal", earned=normal, override=Override(floor="gold"), at=AT).code == "gold"
    expired = Override(floor="gold", expires_at=AT - timedelta(days=1))
    assert promotion(program, current="normal", earned=normal, override=expired, at=AT) is None
    locked = Override(locked=True, expires_at=AT + timedelta(days=30))
    assert promotion(program, current="normal", earned=program.tier("diamond"), override=locked, at=AT) is None


def test_a_member_promoted_to_gold_mid_stay_earns_at_the_gold_rate_on_the_next_purchase(client, world, runtime):
    runtime.clock = lambda: AT
    with runtime.transaction() as tx:
        m = register(tx, world, "13500135000").id
    headers = world.headers(world.coffee_cashier_key)

    def buy(order_no, unit_price):
        basket = {"member": {"member_id": m}, "lines": [{"sku": "SUITE", "category": "retail", "qty": 1,
                                                         "unit_price": unit_price}]}
        quote = client.post("/v1/checkout/quote", json=basket, headers=headers).json()
        done = client.post("/v1/checkout/commit", headers=headers, json={
            **basket, "order_no": order_no, "payment": {"channel": "wechat", "amount": quote["payable"]}})
        assert done.status_code == 200, done.text
        return done.json()

    first = buy("T-1", 600_000)  # ¥6,000: growth 6,000 ≥ 2,000 → silver
    assert first["promoted_to"] == "silver"
    assert first["quote"]["earn"]["explanation"] == "基础积分 6000"  # this purchase earned at the old tier
    second = buy("T-2", 300_000)  # growth 9,000 ≥ 8,000 → gold
    assert second["promoted_to"] == "gold"
    assert second["quote"]["earn"]["explanation"] == "基础积分 3000 + 银卡1.2倍 600"
    third = buy("T-3", 10_000)
    assert third["promoted_to"] is None
    assert third["quote"]["earn"]["explanation"] == "基础积分 85 + 金卡1.5倍 42"  # after 金卡零售8.5折
    with runtime.transaction() as tx:
        history = tx.session.execute(select(TierChange.from_tier, TierChange.to_tier)
                                     .where(TierChange.member_id == m).order_by(TierChange.id)).all()
    assert [tuple(h) for h in history] == [("normal", "silver"), ("silver", "gold")]
