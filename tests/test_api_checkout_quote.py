"""A cashier quotes a basket for a member: discounts, points, what will be earned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from liutong.ledger.models import JournalEntry
from liutong.members.models import Member
from tests.conftest import key, register

TUESDAY = "2026-11-24T12:00:00+08:00"
NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
COFFEE = [{"sku": "LATTE", "category": "drinks", "qty": 2, "unit_price": 3_200},
          {"sku": "CAKE", "category": "food", "qty": 1, "unit_price": 4_100}]


def _member(runtime, world, phone="13700137000", points=0, tier=None, plate=None):
    from liutong.ledger import service as ledger

    runtime.clock = lambda: NOW
    with runtime.transaction() as tx:
        identities = [{"kind": "plate", "value": plate}] if plate else []
        m = register(tx, world, phone, identities=identities)
        if points:
            ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m.id, issuer_entity_id=world.park_entity,
                               points=points, key=key(), expires_at=NOW + timedelta(days=300))
        if tier:
            tx.session.get(Member, m.id).tier_code = tier
    return m


def _quote(client, world, body, api_key=None):
    return client.post("/v1/checkout/quote", json=body, headers=world.headers(api_key or world.coffee_cashier_key))


def test_a_gold_member_identified_by_phone_sees_her_discount_points_and_what_she_will_earn(client, world, runtime):
    _member(runtime, world, points=5_000, tier="gold")
    r = _quote(client, world, {"member": {"phone": "137-0013-7000"}, "lines": COFFEE, "points": 400, "at": TUESDAY})
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["member"]["tier_name"] == "金卡" and q["member"]["points_spendable"] == 5_000
    assert (q["gross"], q["discount"]) == (10_500, 1_575)  # 金卡零售8.5折 at a mall merchant
    # points pay at most half of the ¥89.25 left: ¥44.62, i.e. 446 points at 100 points per ¥10
    assert q["points"] == {"requested": 400, "max_usable": 446, "applied": 400, "value": 4_000,
                           "refused_because": None}
    assert q["payable"] == 10_500 - 1_575 - 4_000
    assert q["earn"]["explanation"] == "基础积分 49 + 金卡1.5倍 24"
    assert sum(line["paid"] for line in q["lines"]) == q["payable"]


def test_the_member_code_on_the_phone_and_the_car_plate_both_identify_the_member(client, world, runtime):
    m = _member(runtime, world, plate="浙A88888")
    code = client.post(f"/v1/members/{m.id}/code", headers=world.headers()).json()["code"]
    for ref in ({"member_code": code}, {"plate": "浙a·88888"}):
        r = _quote(client, world, {"member": ref, "lines": COFFEE, "at": TUESDAY})
        assert r.status_code == 200, r.text
        assert r.json()["member"]["id"] == m.id


def test_an_expired_member_code_is_refused_with_its_own_code(client, world, runtime):
    m = _member(runtime, world)
    code = client.post(f"/v1/members/{m.id}/code", headers=world.headers()).json()["code"]
    runtime.clock = lambda: NOW + timedelta(minutes=5)
    r = _quote(client, world, {"member": {"member_code": code}, "lines": COFFEE})
    assert r.status_code == 400 and r.json()["error"]["code"] == "member_code_expired"


def test_quoting_changes_nothing(client, world, runtime):
    _member(runtime, world, points=2_000)
    with runtime.transaction() as tx:
        before = tx.session.scalar(select(func.count()).select_from(JournalEntry))
    _quote(client, world, {"member": {"phone": "13700137000"}, "lines": COFFEE, "points": 1_000})
    with runtime.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(JournalEntry)) == before


def test_points_beyond_the_balance_or_the_bill_cap_are_refused_in_the_quote(client, world, runtime):
    _member(runtime, world, points=300)
    q = _quote(client, world, {"member": {"phone": "13700137000"}, "lines": COFFEE, "points": 800}).json()
    assert (q["points"]["applied"], q["points"]["refused_because"]) == (0, "beyond_balance")
    assert q["payable"] == 10_500


def test_a_guest_is_quoted_without_membership(client, world):
    q = _quote(client, world, {"lines": COFFEE}).json()
    assert q["member"] is None and q["payable"] == 10_500 and q["earn"]["points"] == 0


def test_the_till_must_be_one_the_caller_may_use(client, world, runtime):
    assert _quote(client, world, {"lines": COFFEE}, api_key=world.operator_key).json()["error"]["code"] == \
        "invalid_reference"  # an operator key names no terminal
    ok = _quote(client, world, {"terminal_id": world.coffee_terminal, "lines": COFFEE}, api_key=world.operator_key)
    assert ok.status_code == 200
    other = _quote(client, world, {"terminal_id": world.coffee_terminal, "lines": COFFEE},
                   api_key=world.noodles_manager_key)
    assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_reference"
    unknown = _quote(client, world, {"terminal_id": 999_999, "lines": COFFEE}, api_key=world.operator_key)
    assert unknown.status_code == 400


def test_malformed_baskets_are_422(client, world):
    for body in ({"lines": [{**COFFEE[0], "qty": -1}]}, {"lines": []},
                 {"member": {"phone": "13700137000", "plate": "浙A88888"}, "lines": COFFEE},
                 {"lines": COFFEE, "points": -5}):
        r = _quote(client, world, body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", body


def test_an_unknown_or_frozen_member_is_refused(client, world, runtime):
    r = _quote(client, world, {"member": {"phone": "13911112222"}, "lines": COFFEE})
    assert r.status_code == 404 and r.json()["error"]["code"] == "member_not_found"
    m = _member(runtime, world)
    client.post(f"/v1/members/{m.id}/status", json={"status": "frozen", "reason": "风控"},
                headers=world.headers(idem=key()))
    r = _quote(client, world, {"member": {"member_id": m.id}, "lines": COFFEE})
    assert r.status_code == 409 and r.json()["error"]["code"] == "member_not_active"


def test_a_line_sold_for_another_venue_earns_at_that_venues_rate_and_an_unknown_venue_is_refused(
        client, world, runtime):
    """A mall till sells a hotel package: the hotel's 2 points per yuan apply to it."""
    from tests.conftest import build_resort

    with runtime.transaction() as tx:
        build_resort(tx, world)
    _member(runtime, world)
    package = {"sku": "PKG-FAMILY", "category": "package", "qty": 1, "unit_price": 100_000, "venue": "hotel"}
    r = _quote(client, world, {"member": {"phone": "13700137000"}, "lines": [package, COFFEE[1]]})
    assert r.status_code == 200, r.text
    assert r.json()["earn"]["explanation"] == "酒店积分 2000 + 基础积分 41"
    r = _quote(client, world, {"member": {"phone": "13700137000"}, "lines": [{**package, "venue": "moon"}]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_venue"
    assert "moon" in r.json()["error"]["message_zh"]
