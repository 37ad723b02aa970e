"""Gates, front desks and car parks report what members do; the same engine answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from liutong.checkout.models import Order
from liutong.ledger import queries
from liutong.ledger import service as ledger
from liutong.ledger.verify import verify
from liutong.members.models import Member
from liutong.program.models import BenefitUse
from tests.conftest import key, register

TUESDAY_NOON = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
PLATE = "浙A12345"


def _member(runtime, world, *, tier=None, points=0, phone="13900139000"):
    runtime.clock = lambda: TUESDAY_NOON
    with runtime.transaction() as tx:
        m = register(tx, world, phone, identities=[{"kind": "plate", "value": PLATE, "verified": True}])
        if tier:
            tx.session.get(Member, m.id).tier_code = tier
        if points:
            ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m.id, issuer_entity_id=world.park_entity,
                               points=points, key=key(), expires_at=TUESDAY_NOON + timedelta(days=300))
    return m.id


def _balances(runtime, world, member_id):
    with runtime.transaction() as tx:
        return queries.balances(tx, tenant_id=world.tenant_id, member_id=member_id)


def _verified(runtime, world):
    with runtime.transaction() as tx:
        assert [c.name for c in verify(tx.session, world.tenant_id) if not c.ok] == []


# --- the park gate ---------------------------------------------------------------------------


def _enter(client, world, resort, event_no, member_id, benefit=None, api_key=None):
    return client.post("/v1/venue-events/gate-entry", headers=world.headers(api_key or resort.park_gate_key), json={
        "event_no": event_no, "member": {"member_id": member_id}, **({"use_benefit": benefit} if benefit else {})})


def test_a_diamond_member_uses_four_fast_lane_passes_a_month_and_no_more(client, world, resort, runtime):
    m = _member(runtime, world, tier="diamond")
    lefts = [_enter(client, world, resort, f"G-{i}", m, "diamond-fast-lane").json().get("benefit_left")
             for i in range(4)]
    assert lefts == [3, 2, 1, 0]
    fifth = _enter(client, world, resort, "G-5", m, "diamond-fast-lane")
    assert fifth.status_code == 409 and fifth.json()["error"]["code"] == "benefit_quota_used"
    plain = _enter(client, world, resort, "G-6", m)
    assert plain.status_code == 200 and plain.json()["benefit_used"] is None


def test_a_gate_entry_replayed_is_recorded_once(client, world, resort, runtime):
    m = _member(runtime, world, tier="diamond")
    first = _enter(client, world, resort, "G-1", m, "diamond-fast-lane")
    again = _enter(client, world, resort, "G-1", m, "diamond-fast-lane")
    assert again.json() == first.json()
    with runtime.transaction() as tx:
        assert tx.session.query(BenefitUse).filter_by(member_id=m).count() == 1


def test_a_silver_member_has_no_fast_lane(client, world, resort, runtime):
    m = _member(runtime, world, tier="silver")
    r = _enter(client, world, resort, "G-1", m, "diamond-fast-lane")
    assert r.status_code == 409 and r.json()["error"]["code"] == "benefit_not_held"


def test_a_front_desk_cannot_report_a_gate_entry(client, world, resort, runtime):
    m = _member(runtime, world)
    r = _enter(client, world, resort, "G-1", m, api_key=resort.front_desk_key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "wrong_terminal_kind"


# --- the hotel -------------------------------------------------------------------------------


def _hotel_sale(client, world, resort, order_no, amount):
    return client.post("/v1/checkout/commit", headers=world.headers(resort.hotel_pos_key), json={
        "order_no": order_no, "member": {"phone": "13900139000"},
        "lines": [{"sku": "ROOM-KING", "category": "room", "qty": 1, "unit_price": amount}],
        "payment": {"channel": "unionpay", "reference": f"up-{order_no}", "amount": amount}})


def test_points_earned_during_a_stay_become_spendable_at_check_out(client, world, resort, runtime):
    m = _member(runtime, world)
    desk = world.headers(resort.front_desk_key)
    r = client.post("/v1/venue-events/check-in", headers=desk,
                    json={"stay_no": "S-2001", "member": {"member_id": m}, "room": "1208"})
    assert r.status_code == 200, r.text
    sale = _hotel_sale(client, world, resort, "H-1", 88_800)
    assert sale.json()["points_pending"] is True
    assert (_balances(runtime, world, m).points, _balances(runtime, world, m).points_pending) == (0, 1_776)  # 2/yuan

    runtime.clock = lambda: TUESDAY_NOON + timedelta(days=2)
    out = client.post("/v1/venue-events/check-out", headers=desk, json={"stay_no": "S-2001"})
    assert out.status_code == 200, out.text
    assert out.json()["points_vested"] == 1_776
    b = _balances(runtime, world, m)
    assert (b.points, b.points_pending) == (1_776, 0)
    again = client.post("/v1/venue-events/check-out", headers=desk, json={"stay_no": "S-2001"})
    assert again.json() == out.json()  # the same check-out, replayed
    other = client.post("/v1/venue-events/check-out", headers=desk, json={"stay_no": "S-9999"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "stay_not_open"
    _verified(runtime, world)


def test_a_check_out_leaves_points_from_other_venues_pending(client, world, resort, runtime):
    m = _member(runtime, world)
    client.post("/v1/checkout/commit", headers=world.headers(world.coffee_cashier_key), json={
        "order_no": "MALL-1", "member": {"member_id": m},
        "lines": [{"sku": "LATTE", "category": "drinks", "qty": 1, "unit_price": 3_000}],
        "payment": {"channel": "wechat", "amount": 3_000}})
    desk = world.headers(resort.front_desk_key)
    client.post("/v1/venue-events/check-in", headers=desk, json={"stay_no": "S-1", "member": {"member_id": m}})
    out = client.post("/v1/venue-events/check-out", headers=desk, json={"stay_no": "S-1"})
    assert out.json()["points_vested"] == 0
    assert _balances(runtime, world, m).points_pending == 30  # the mall's 7 days still run


# --- the car park ----------------------------------------------------------------------------


def _exit(client, world, resort, event_no, *, minutes, fee, points=0, paid=None, quote_only=False):
    exited = TUESDAY_NOON + timedelta(hours=3)
    body = {"event_no": event_no, "plate": "浙a·12345", "entered_at": (exited - timedelta(minutes=minutes)).isoformat(),
            "exited_at": exited.isoformat(), "fee": fee, "points": points}
    if quote_only:
        return client.post("/v1/venue-events/parking-exit/quote", json=body,
                           headers=world.headers(resort.parking_gate_key))
    body["payment"] = {"channel": "wechat", "reference": f"wx-{event_no}", "amount": paid}
    return client.post("/v1/venue-events/parking-exit", json=body, headers=world.headers(resort.parking_gate_key))


def test_a_gold_member_leaves_the_car_park_with_free_minutes_and_pays_the_rest_partly_with_points(
        client, world, resort, runtime):
    m = _member(runtime, world, tier="gold", points=1_000)
    quote = _exit(client, world, resort, "P-1", minutes=300, fee=4_000, points=100, quote_only=True)
    assert quote.status_code == 200, quote.text
    q = quote.json()
    # 120 of 300 minutes are free: ¥16 of ¥40 waived; 100 points pay ¥10 of the ¥24 left
    assert (q["free_minutes_used"], q["free_minutes_left"]) == (120, 0)
    assert (q["quote"]["discount"], q["quote"]["points"]["value"], q["quote"]["payable"]) == (1_600, 1_000, 1_400)
    assert q["quote"]["earn"]["points"] == 0  # parking fees earn nothing

    done = _exit(client, world, resort, "P-1", minutes=300, fee=4_000, points=100, paid=1_400)
    assert done.status_code == 200, done.text
    assert _balances(runtime, world, m).points == 900
    with runtime.transaction() as tx:
        use = tx.session.query(BenefitUse).filter_by(member_id=m).one()
        assert (use.benefit_code, use.quantity, use.value) == ("gold-parking", 120, 1_600)
        order = tx.session.query(Order).filter_by(order_no="P-1").one()
        assert (order.gross, order.discount, order.points_used, order.paid) == (4_000, 1_600, 100, 1_400)

    # the month's minutes are spent: the next exit pays in full
    second = _exit(client, world, resort, "P-2", minutes=60, fee=1_000, paid=1_000)
    assert second.status_code == 200, second.text
    assert (second.json()["free_minutes_used"], second.json()["quote"]["payable"]) == (0, 1_000)
    _verified(runtime, world)


def test_a_short_stay_is_free_and_uses_only_the_minutes_it_took(client, world, resort, runtime):
    m = _member(runtime, world, tier="gold")
    done = _exit(client, world, resort, "P-1", minutes=45, fee=500, paid=0)
    assert done.status_code == 200, done.text
    assert (done.json()["free_minutes_used"], done.json()["free_minutes_left"]) == (45, 75)
    with runtime.transaction() as tx:
        assert tx.session.query(BenefitUse).filter_by(member_id=m).one().quantity == 45


def test_a_visitors_car_pays_the_fee_as_it_is(client, world, resort, runtime):
    body = {"event_no": "P-9", "plate": "沪B77777", "entered_at": TUESDAY_NOON.isoformat(),
            "exited_at": (TUESDAY_NOON + timedelta(minutes=90)).isoformat(), "fee": 1_000,
            "payment": {"channel": "alipay", "amount": 1_000}}
    r = client.post("/v1/venue-events/parking-exit", json=body, headers=world.headers(resort.parking_gate_key))
    assert r.status_code == 200, r.text
    assert r.json()["member_id"] is None and r.json()["quote"]["payable"] == 1_000


def test_an_exit_paid_short_is_refused_and_changes_nothing(client, world, resort, runtime):
    m = _member(runtime, world, tier="gold")
    r = _exit(client, world, resort, "P-1", minutes=300, fee=4_000, paid=100)
    assert r.status_code == 409 and r.json()["error"]["code"] == "payment_mismatch"
    with runtime.transaction() as tx:
        assert tx.session.query(BenefitUse).filter_by(member_id=m).count() == 0


def test_an_exit_before_its_entry_is_malformed(client, world, resort, runtime):
    body = {"event_no": "P-1", "plate": PLATE, "entered_at": TUESDAY_NOON.isoformat(),
            "exited_at": (TUESDAY_NOON - timedelta(minutes=1)).isoformat(), "fee": 0}
    r = client.post("/v1/venue-events/parking-exit/quote", json=body, headers=world.headers(resort.parking_gate_key))
    assert r.status_code == 422


def test_a_member_with_ten_thousand_growth_gets_one_free_room_upgrade_a_year(client, world, resort, runtime):
    m = _member(runtime, world)
    with runtime.transaction() as tx:
        ledger.move_growth(tx, tenant_id=world.tenant_id, member_id=m, amount=10_000, ref="history", key=key())
    body = {"use_no": "UPG-1", "member": {"member_id": m}, "benefit": "growth-10000-upgrade", "value": 30_000}
    first = client.post("/v1/benefits/use", json=body, headers=world.headers(resort.front_desk_key))
    assert first.status_code == 200, first.text
    assert first.json()["quota_left"] == 0
    again = client.post("/v1/benefits/use", json={**body, "use_no": "UPG-2"},
                        headers=world.headers(resort.front_desk_key))
    assert again.status_code == 409 and again.json()["error"]["code"] == "benefit_quota_used"
    runtime.clock = lambda: TUESDAY_NOON + timedelta(days=60)  # a new year in Shanghai
    assert client.post("/v1/benefits/use", json={**body, "use_no": "UPG-3"},
                       headers=world.headers(resort.front_desk_key)).status_code == 200
    with runtime.transaction() as tx:
        assert sum(u.value for u in tx.session.query(BenefitUse).filter_by(member_id=m)) == 60_000
