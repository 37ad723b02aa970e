"""A cashier commits sales and refunds them; the ledger follows, to the point and the fen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from liutong.checkout.models import Order
from liutong.ledger import queries
from liutong.ledger import service as ledger
from liutong.ledger.verify import verify
from tests.conftest import key, register

NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # a Tuesday, noon in Shanghai
BASKET = [{"sku": "LATTE", "category": "drinks", "qty": 2, "unit_price": 3_200},
          {"sku": "CAKE", "category": "food", "qty": 1, "unit_price": 4_100}]


def _member(runtime, world, phone="13600136000", points=0):
    runtime.clock = lambda: NOW
    with runtime.transaction() as tx:
        m = register(tx, world, phone)
        if points:
            ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m.id, issuer_entity_id=world.park_entity,
                               points=points, key=key(), expires_at=NOW + timedelta(days=300))
    return m.id


def _commit(client, world, *, order_no, payable, points=0, member_phone="13600136000", lines=BASKET):
    body = {"order_no": order_no, "member": {"phone": member_phone}, "lines": lines, "points": points,
            "payment": {"channel": "wechat", "reference": f"wx-{order_no}", "amount": payable}}
    return client.post("/v1/checkout/commit", json=body, headers=world.headers(world.coffee_cashier_key))


def _refund(client, world, *, order_no, refund_no, lines=None):
    body = {"order_no": order_no, "refund_no": refund_no, **({"lines": lines} if lines else {})}
    return client.post("/v1/checkout/refund", json=body, headers=world.headers(world.coffee_cashier_key))


def _balances(runtime, world, member_id):
    with runtime.transaction() as tx:
        return queries.balances(tx, tenant_id=world.tenant_id, member_id=member_id)


def _invariants(runtime, world):
    with runtime.transaction() as tx:
        broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
    assert not broken


def test_a_member_pays_part_with_points_and_earns_pending_points_on_the_rest(client, world, runtime):
    m = _member(runtime, world, points=2_000)
    r = _commit(client, world, order_no="POS-0001", points=500, payable=10_500 - 5_000)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["quote"]["earn"]["explanation"] == "基础积分 55"
    assert done["points_pending"] is True  # the mall's refund window: 7 days
    b = _balances(runtime, world, m)
    assert (b.points, b.points_pending, b.growth) == (1_500, 55, 55)
    _invariants(runtime, world)


def test_the_same_order_number_replayed_posts_nothing_and_another_payload_is_refused(client, world, runtime):
    m = _member(runtime, world, points=2_000)
    first = _commit(client, world, order_no="POS-0002", points=500, payable=5_500).json()
    again = _commit(client, world, order_no="POS-0002", points=500, payable=5_500)
    assert again.status_code == 200 and again.json() == first
    other = _commit(client, world, order_no="POS-0002", points=600, payable=4_500)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert _balances(runtime, world, m).points == 1_500


def test_a_payment_that_does_not_match_the_bill_is_refused_and_nothing_is_stored(client, world, runtime):
    m = _member(runtime, world, points=2_000)
    r = _commit(client, world, order_no="POS-0003", points=500, payable=5_400)
    assert r.status_code == 409 and r.json()["error"]["code"] == "payment_mismatch"
    capped = _commit(client, world, order_no="POS-0003b", points=1_000, payable=500)
    assert capped.status_code == 409 and capped.json()["error"]["code"] == "points_beyond_bill_cap"
    poor = _commit(client, world, order_no="POS-0003c", points=3_000, payable=0)
    assert poor.json()["error"]["code"] in ("insufficient_balance", "points_beyond_bill_cap")
    with runtime.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(Order).where(Order.tenant_id == world.tenant_id)) == 0
    assert _balances(runtime, world, m).points == 2_000


def test_partial_refunds_that_add_up_to_the_whole_give_back_exactly_what_the_sale_moved(client, world, runtime):
    m = _member(runtime, world, points=2_000)
    lines = [{"sku": f"ITEM-{i}", "category": "retail", "qty": 3, "unit_price": 1_999 + i} for i in range(3)]
    gross = sum(li["qty"] * li["unit_price"] for li in lines)
    r = _commit(client, world, order_no="POS-0004", points=700, payable=gross - 7_000, lines=lines)
    assert r.status_code == 200, r.text
    before = _balances(runtime, world, m)
    paid_back = points_back = 0
    for n, (line_no, qty) in enumerate([(1, 1), (2, 2), (1, 2), (3, 1), (2, 1), (3, 2)]):
        out = _refund(client, world, order_no="POS-0004", refund_no=f"RF-4-{n}", lines=[{"line_no": line_no, "qty": qty}])
        assert out.status_code == 200, out.text
        paid_back += out.json()["paid_back"]
        points_back += out.json()["points_back"]
    assert out.json()["order_status"] == "refunded"
    assert (paid_back, points_back) == (gross - 7_000, 700)
    after = _balances(runtime, world, m)
    assert (after.points, after.points_pending, after.growth) == (2_000, 0, 0)
    assert before.points_pending > 0
    _invariants(runtime, world)
    again = _refund(client, world, order_no="POS-0004", refund_no="RF-4-more", lines=[{"line_no": 1, "qty": 1}])
    assert again.status_code == 409 and again.json()["error"]["code"] == "refund_exceeds_order"


def test_a_partial_refund_after_the_earned_points_were_spent_takes_them_from_other_lots(client, world, runtime):
    m = _member(runtime, world, points=0)
    r = _commit(client, world, order_no="POS-0005", payable=10_500)
    assert r.status_code == 200
    runtime.clock = lambda: NOW + timedelta(days=8)
    with runtime.transaction() as tx:
        ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=NOW + timedelta(days=8), key=key())
        ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=m, points=100, key=key())  # all 105 nearly gone
        ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.park_entity,
                           points=50, key=key(), expires_at=NOW + timedelta(days=200))
    out = _refund(client, world, order_no="POS-0005", refund_no="RF-5", lines=[{"line_no": 1, "qty": 2}]).json()
    # the lattes earned 64 of the 105 points: 5 are left in their lot, the other 50 points lot gives the rest
    assert out["points_clawed"] == 55 and out["paid_back"] == 6_400
    assert _balances(runtime, world, m).points == 0
    _invariants(runtime, world)


@pytest.mark.parametrize(("policy", "clawed", "unrecovered", "deducted", "left"), [
    ("other_lots", 55, 9, 0, 0),            # 5 from the sale's own lot, 50 from the other lot
    ("deduct_from_refund", 5, 59, 590, 50),  # 59 spent points at 100 = ¥10 keep ¥5.90 of the refund
    ("forgive", 5, 59, 0, 50),
])
def test_the_refund_policy_decides_what_happens_to_earned_points_already_spent(
        client, world, runtime, policy, clawed, unrecovered, deducted, left):
    from liutong.program import service as program_service
    from liutong.program.defaults import default_program
    from liutong.program.schemas import ProgramPublish

    doc = default_program().model_dump(mode="json")
    doc["refund"] = {"spent_points": policy}
    runtime.clock = lambda: NOW
    with runtime.transaction() as tx:
        program_service.publish(tx, tenant_id=world.tenant_id, key=key(), actor="test",
                                data=ProgramPublish(document=doc, note=f"退款政策 {policy}"))
    m = _member(runtime, world, points=0)
    assert _commit(client, world, order_no="POS-0006", payable=10_500).status_code == 200
    runtime.clock = lambda: NOW + timedelta(days=8)
    with runtime.transaction() as tx:
        ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=NOW + timedelta(days=8), key=key())
        ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=m, points=100, key=key())
        ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.park_entity,
                           points=50, key=key(), expires_at=NOW + timedelta(days=200))
    out = _refund(client, world, order_no="POS-0006", refund_no="RF-6", lines=[{"line_no": 1, "qty": 2}]).json()
    assert (out["points_clawed"], out["points_unrecovered"], out["deducted"]) == (clawed, unrecovered, deducted)
    assert out["paid_back"] == 6_400 - deducted
    assert _balances(runtime, world, m).points == left
    _invariants(runtime, world)


def test_a_refund_is_idempotent_on_its_number(client, world, runtime):
    _member(runtime, world, points=0)
    _commit(client, world, order_no="POS-0006", payable=10_500)
    first = _refund(client, world, order_no="POS-0006", refund_no="RF-6").json()
    assert first["order_status"] == "refunded" and first["paid_back"] == 10_500
    assert _refund(client, world, order_no="POS-0006", refund_no="RF-6").json() == first


def test_another_merchants_order_cannot_be_refunded(client, world, runtime):
    _member(runtime, world)
    _commit(client, world, order_no="POS-0007", payable=10_500)
    r = client.post("/v1/checkout/refund", json={"order_no": "POS-0007", "refund_no": "RF-7"},
                    headers=world.headers(world.noodles_manager_key))
    assert r.status_code == 404


def test_a_sale_and_its_refund_leave_events_in_the_outbox_of_the_same_transaction(client, world, runtime):
    from liutong.jobs.models import OutboxEvent

    _member(runtime, world)
    _commit(client, world, order_no="POS-0008", payable=10_500)
    _commit(client, world, order_no="POS-0008", payable=10_500)  # a replay writes nothing more
    bad = _commit(client, world, order_no="POS-0009", payable=1)  # refused: nothing at all
    assert bad.status_code == 409
    _refund(client, world, order_no="POS-0008", refund_no="RF-8")
    with runtime.transaction() as tx:
        topics = tx.session.scalars(select(OutboxEvent.topic).where(OutboxEvent.tenant_id == world.tenant_id)
                                    .order_by(OutboxEvent.id)).all()
    assert topics == ["purchase", "points_earned", "refund"]
