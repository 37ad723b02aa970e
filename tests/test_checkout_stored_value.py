"""A member pays with stored value at the till; a refund gives it back the way it came."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from liutong.ledger.verify import verify
from liutong.storedvalue import queries as sv_queries
from liutong.storedvalue import service as stored_value
from tests.conftest import key, register

NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # a Tuesday
BASKET = [{"sku": "ROOM-NIGHT", "category": "room", "qty": 2, "unit_price": 3_200},
          {"sku": "BREAKFAST", "category": "food", "qty": 1, "unit_price": 4_100}]


def _member_with_stored_value(runtime, world, amount=10_000, phone="13300133000"):
    runtime.clock = lambda: NOW
    with runtime.transaction() as tx:
        m = register(tx, world, phone)
        stored_value.recharge(tx, tenant_id=world.tenant_id, member_id=m.id, issuer_entity_id=world.mall_entity,
                              amount=amount, channel="wechat", reference=f"wx-{phone}", key=key())
    return m.id


def _balance(runtime, world, member_id):
    with runtime.transaction() as tx:
        return sv_queries.balance(tx, tenant_id=world.tenant_id, member_id=member_id)


@pytest.fixture
def hotel_till(resort) -> str:
    """The hotel's own till: stored value is accepted inside the issuing group."""
    return resort.hotel_pos_key


def _post(client, world, path, body, api_key):
    return client.post(path, json=body, headers=world.headers(api_key))


def test_stored_value_pays_part_of_the_bill_and_the_channel_the_rest(client, world, runtime, hotel_till):
    m = _member_with_stored_value(runtime, world)  # 充100送20: ¥100 principal, ¥20 bonus
    body = {"member": {"member_id": m}, "lines": BASKET, "stored_value": 6_000}
    q = _post(client, world, "/v1/checkout/quote", body, hotel_till).json()
    assert q["stored_value"]["available"] == 12_000
    assert (q["stored_value"]["applied"], q["payable"]) == (6_000, 10_500 - 6_000)
    assert q["stored_value"]["principal"] + q["stored_value"]["bonus"] == 6_000
    done = _post(client, world, "/v1/checkout/commit", {
        **body, "order_no": "SV-1", "payment": {"channel": "wechat", "amount": 4_500}}, hotel_till)
    assert done.status_code == 200, done.text
    assert done.json()["quote"]["earn"]["points"] == 210  # stored value earns like money: 2 per yuan here
    left = _balance(runtime, world, m)
    assert left.principal + left.bonus_spendable == 6_000


def test_a_line_refund_gives_back_its_share_of_stored_value_and_of_money(client, world, runtime, hotel_till):
    m = _member_with_stored_value(runtime, world)
    body = {"member": {"member_id": m}, "lines": BASKET, "stored_value": 6_000, "order_no": "SV-2",
            "payment": {"channel": "wechat", "amount": 4_500}}
    assert _post(client, world, "/v1/checkout/commit", body, hotel_till).status_code == 200
    nights = _post(client, world, "/v1/checkout/refund",
                   {"order_no": "SV-2", "refund_no": "SVR-1", "lines": [{"line_no": 1, "qty": 2}]}, hotel_till).json()
    breakfast = _post(client, world, "/v1/checkout/refund", {"order_no": "SV-2", "refund_no": "SVR-2"}, hotel_till).json()
    # the room nights paid 6,400 of 10,500: 3,657 of the stored value by largest remainder, the rest in money
    assert (nights["stored_value_back"], nights["paid_back"]) == (3_657, 6_400 - 3_657)
    assert nights["stored_value_back"] + breakfast["stored_value_back"] == 6_000
    assert nights["paid_back"] + breakfast["paid_back"] == 4_500
    left = _balance(runtime, world, m)
    assert left.principal + left.bonus_spendable == 12_000
    with runtime.transaction() as tx:
        assert [c.name for c in verify(tx.session, world.tenant_id) if not c.ok] == []


def test_stored_value_beyond_the_balance_or_the_bill_is_refused_with_its_code(client, world, runtime, hotel_till):
    m = _member_with_stored_value(runtime, world, amount=5_000)
    over_balance = {"member": {"member_id": m}, "lines": BASKET, "stored_value": 9_000, "order_no": "SV-3",
                    "payment": {"channel": "wechat", "amount": 1_500}}
    r = _post(client, world, "/v1/checkout/commit", over_balance, hotel_till)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_balance"
    over_bill = {**over_balance, "stored_value": 20_000, "order_no": "SV-4", "payment": {"channel": "cash", "amount": 0}}
    r = _post(client, world, "/v1/checkout/commit", over_bill, hotel_till)
    assert r.status_code == 409 and r.json()["error"]["code"] == "stored_value_beyond_bill"
    guest = _post(client, world, "/v1/checkout/quote", {"lines": BASKET, "stored_value": 100}, hotel_till).json()
    assert guest["stored_value"]["refused_because"] == "no_member"
    assert _balance(runtime, world, m).principal == 5_000  # nothing moved


def test_a_third_party_shop_does_not_take_stored_value_unless_the_operator_allows_it(client, world, runtime):
    m = _member_with_stored_value(runtime, world)
    r = _post(client, world, "/v1/checkout/commit", {
        "member": {"member_id": m}, "lines": BASKET, "stored_value": 1_000, "order_no": "SV-5",
        "payment": {"channel": "wechat", "amount": 9_500}}, world.coffee_cashier_key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "stored_value_not_accepted"
