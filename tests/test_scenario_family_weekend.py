"""The Zhangs' weekend at the resort: park, dining, hotel, mall and car park on one membership.

Mr Zhang is a silver member close to gold. Saturday morning the family drives in and enters the
park; tickets earn weekend double points, pending until the visit is over; lunch at the park
restaurant gets the silver dining discount; at the hotel the room charge lifts him to gold
mid-stay, and it earns at the hotel's rate, waiting for the check-out. Sunday the mall's coffee
is 8.5折 for gold and part is paid with points; the check-out makes the stay's points
spendable; the car leaves on gold's free parking minutes with points paying part of the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from liutong.ledger import queries
from liutong.ledger import service as ledger
from liutong.ledger.verify import verify
from liutong.members.models import Member
from liutong.organisation import service as org
from liutong.organisation.models import Role
from liutong.organisation.schemas import ApiKeyCreate, MerchantCreate, StoreCreate, TerminalCreate, VenueCreate
from tests.conftest import key, register

SATURDAY_9AM = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
SUNDAY_5PM = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def _park_pos_and_restaurant(tx, world):
    t = world.tenant_id
    store = org.create_store(tx, tenant_id=t, key=key(), data=StoreCreate(
        code="ticket-office", name="售票处", merchant_id=world.park_tickets)).id
    ticket_pos = org.create_terminal(tx, tenant_id=t, key=key(), data=TerminalCreate(
        code="ticket-pos-1", kind="pos", store_id=store)).id
    dining_v = org.create_venue(tx, tenant_id=t, key=key(), data=VenueCreate(
        code="park-dining", name="乐园美食街", format="dining", entity_id=world.park_entity)).id
    restaurant = org.create_merchant(tx, tenant_id=t, key=key(), data=MerchantCreate(
        code="canteen", name="欢乐餐厅", mode="self_operated", entity_id=world.park_entity, venue_id=dining_v)).id
    r_store = org.create_store(tx, tenant_id=t, key=key(), data=StoreCreate(
        code="canteen-1", name="欢乐餐厅", merchant_id=restaurant)).id
    r_pos = org.create_terminal(tx, tenant_id=t, key=key(), data=TerminalCreate(
        code="canteen-pos-1", kind="pos", store_id=r_store)).id

    def terminal_key(terminal):
        return org.issue_api_key(tx, tenant_id=t, key=key(), data=ApiKeyCreate(
            name="till", role=Role.cashier, terminal_id=terminal)).key

    return terminal_key(ticket_pos), terminal_key(r_pos)


def test_a_familys_weekend_across_park_dining_hotel_mall_and_car_park(client, world, resort, runtime):
    at = {"now": SATURDAY_9AM}
    runtime.clock = lambda: at["now"]
    with runtime.transaction() as tx:
        ticket_key, canteen_key = _park_pos_and_restaurant(tx, world)
        zhang = register(tx, world, "13812345678", name="张伟",
                         identities=[{"kind": "plate", "value": "浙A·D12345", "verified": True}]).id
        tx.session.get(Member, zhang).tier_code = "silver"
        ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=zhang, issuer_entity_id=world.mall_entity,
                           points=800, key=key(), expires_at=SATURDAY_9AM + timedelta(days=200))
        ledger.move_growth(tx, tenant_id=world.tenant_id, member_id=zhang, amount=7_000, ref="history", key=key())

    def post(path, api_key, body, idem=None):
        r = client.post(path, json=body, headers=world.headers(api_key, idem=idem))
        assert r.status_code == 200, (path, r.text)
        return r.json()

    def balances():
        with runtime.transaction() as tx:
            return queries.balances(tx, tenant_id=world.tenant_id, member_id=zhang)

    # Saturday 09:00 — tickets for two adults and a child: 基础 + 周末双倍 + 银卡1.2倍, pending until the visit ends
    tickets = post("/v1/checkout/commit", ticket_key, {
        "order_no": "T-0001", "member": {"phone": "13812345678"},
        "lines": [{"sku": "ADULT-DAY", "category": "ticket", "qty": 2, "unit_price": 29_900},
                  {"sku": "CHILD-DAY", "category": "ticket", "qty": 1, "unit_price": 19_900}],
        "payment": {"channel": "wechat", "reference": "wx-T-0001", "amount": 79_700}})
    assert tickets["quote"]["earn"]["explanation"] == "基础积分 797 + 周末双倍 797 + 银卡1.2倍 159"
    assert tickets["points_pending"] is True
    entry = post("/v1/venue-events/gate-entry", resort.park_gate_key, {
        "event_no": "GATE-0001", "member": {"phone": "13812345678"}})
    assert entry["benefit_used"] is None

    # 12:30 — lunch at the park restaurant: silver members pay 9.5折 on dining
    at["now"] = SATURDAY_9AM + timedelta(hours=3, minutes=30)
    lunch = post("/v1/checkout/commit", canteen_key, {
        "order_no": "C-0001", "member": {"phone": "13812345678"},
        "lines": [{"sku": "SET-MEAL", "category": "food", "qty": 3, "unit_price": 6_800}],
        "payment": {"channel": "alipay", "amount": 19_380}})
    assert (lunch["quote"]["discount"], lunch["quote"]["benefits_applied"]) == (1_020, ["silver-dining-95"])

    # 16:00 — hotel check-in; the room is charged at the front desk's POS during the stay
    at["now"] = SATURDAY_9AM + timedelta(hours=7)
    post("/v1/venue-events/check-in", resort.front_desk_key, {
        "stay_no": "STAY-0001", "member": {"phone": "13812345678"}, "room": "0816"})
    room = post("/v1/checkout/commit", resort.hotel_pos_key, {
        "order_no": "H-0001", "member": {"phone": "13812345678"},
        "lines": [{"sku": "ROOM-FAMILY", "category": "room", "qty": 1, "unit_price": 128_800}],
        "payment": {"channel": "unionpay", "amount": 128_800}})
    assert room["quote"]["earn"]["explanation"] == "酒店积分 2576 + 周末双倍 2576 + 银卡1.2倍 515"
    assert room["promoted_to"] == "gold"  # 7,000 + 797 + 193 + 1,288 growth passes gold's 8,000
    saturday = balances()
    assert saturday.points == 800 + lunch["quote"]["earn"]["points"]  # dining vests at once
    assert saturday.points_pending == tickets["quote"]["earn"]["points"] + room["quote"]["earn"]["points"]

    # Sunday 10:00 — coffee at the mall at gold's 8.5折, part paid with points (the park's tickets
    # vested at midnight)
    at["now"] = SUNDAY_5PM - timedelta(hours=7)
    with runtime.transaction() as tx:
        ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=zhang, as_of=at["now"], key=key())
    coffee = post("/v1/checkout/commit", world.coffee_cashier_key, {
        "order_no": "M-0001", "member": {"phone": "13812345678"}, "points": 300,
        "lines": [{"sku": "LATTE", "category": "drinks", "qty": 3, "unit_price": 3_200}],
        "payment": {"channel": "wechat", "amount": 9_600 - 1_440 - 3_000}})
    assert (coffee["quote"]["discount"], coffee["quote"]["benefits_applied"]) == (1_440, ["gold-retail-85"])
    assert coffee["quote"]["earn"]["explanation"] == "基础积分 51 + 周末双倍 51 + 金卡1.5倍 25"

    # 15:00 — check-out: the stay's points become spendable
    at["now"] = SUNDAY_5PM - timedelta(hours=2)
    out = post("/v1/venue-events/check-out", resort.front_desk_key, {"stay_no": "STAY-0001"})
    assert out["points_vested"] == room["quote"]["earn"]["points"]

    # 17:00 — the car leaves after 32 hours: gold's 120 free minutes waive 120/1,920 of the ¥60
    # fee (¥3.75), and 200 points pay ¥20 of the rest (half the bill at most)
    at["now"] = SUNDAY_5PM
    exit_body = {"event_no": "P-0001", "plate": "浙AD12345", "entered_at": SATURDAY_9AM.isoformat(),
                 "exited_at": SUNDAY_5PM.isoformat(), "fee": 6_000, "points": 200}
    quote = post("/v1/venue-events/parking-exit/quote", resort.parking_gate_key, exit_body)
    assert (quote["free_minutes_used"], quote["quote"]["discount"], quote["quote"]["payable"]) == (120, 375, 3_625)
    post("/v1/venue-events/parking-exit", resort.parking_gate_key,
         {**exit_body, "payment": {"channel": "wechat", "amount": 3_625}})

    final = balances()
    earned_now = (tickets["quote"]["earn"]["points"] + lunch["quote"]["earn"]["points"]
                  + room["quote"]["earn"]["points"])
    assert final.points == 800 + earned_now - 300 - 200
    assert final.points_pending == coffee["quote"]["earn"]["points"]  # the mall's 7 days still run
    assert final.growth == 7_000 + sum(x["quote"]["earn"]["growth"] for x in (tickets, lunch, room, coffee))
    with runtime.transaction() as tx:
        assert [c.name for c in verify(tx.session, world.tenant_id) if not c.ok] == []
