"""Whatever a till does — sales with points, refunds in any split — the books stay whole."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liutong.checkout import service as checkout
from liutong.checkout.models import Order, OrderLine, Refund
from liutong.checkout.schemas import CommitRequest, QuoteRequest, RefundRequest
from liutong.errors import LiutongError
from liutong.ledger import queries
from liutong.ledger import service as ledger
from liutong.ledger.verify import verify
from liutong.organisation.auth import Principal
from liutong.organisation.models import Role
from tests.conftest import key, register

TUESDAY = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
START_POINTS = 5_000
_phones = itertools.count(13_100_000_000)

lines = st.lists(st.tuples(st.integers(1, 4), st.integers(1, 30_000)), min_size=1, max_size=4)
sale = st.tuples(lines, st.sampled_from([0, 100, 250, 1_000]))
#: each refund: (which sale, per line a fraction of what is left, 0–4 quarters)
refund = st.tuples(st.integers(0, 5), st.lists(st.integers(0, 4), min_size=4, max_size=4))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sales=st.lists(sale, min_size=1, max_size=4), refunds=st.lists(refund, max_size=8))
def test_no_sequence_of_sales_and_refunds_breaks_the_books(runtime, world, sales, refunds):
    runtime.clock = lambda: TUESDAY
    till = Principal(key_id=None, role=Role.cashier, tenant_id=world.tenant_id, merchant_id=world.mall_coffee,
                     terminal_id=world.coffee_terminal, name="till")
    with runtime.transaction() as tx:
        member = register(tx, world, str(next(_phones))).id
        ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=member, issuer_entity_id=world.mall_entity,
                           points=START_POINTS, key=key(), expires_at=TUESDAY + timedelta(days=300))
    orders = []
    for basket, points in sales:
        request = {"member": {"member_id": member}, "points": points,
                   "lines": [{"sku": f"SKU-{i}", "category": "goods", "qty": qty, "unit_price": price}
                             for i, (qty, price) in enumerate(basket)]}
        try:
            with runtime.transaction() as tx:
                payable = checkout.quote(tx, principal=till, data=QuoteRequest(**request)).payable
                done = checkout.commit(tx, principal=till, actor="till", data=CommitRequest(
                    **request, order_no=key(), payment={"channel": "wechat", "amount": payable}))
            orders.append(done.order_no)
        except LiutongError:
            continue  # points beyond the bill cap or below the minimum: refused, nothing written
    for which, quarters in refunds:
        if not orders:
            break
        order_no = orders[which % len(orders)]
        with runtime.transaction() as tx:
            open_lines = tx.session.query(OrderLine).join(Order).filter(Order.order_no == order_no).all()
            wanted = [{"line_no": li.line_no, "qty": max(1, (li.qty - li.refunded_qty) * q // 4)}
                      for li, q in zip(open_lines, quarters, strict=False) if q and li.qty > li.refunded_qty]
        if wanted:
            with runtime.transaction() as tx:
                checkout.refund(tx, principal=till, data=RefundRequest(order_no=order_no, refund_no=key(),
                                                                        lines=wanted))
    # and finally everything that is left goes back
    for order_no in orders:
        with runtime.transaction() as tx:
            status = tx.session.query(Order.status).filter(Order.order_no == order_no).scalar()
        if status != "refunded":
            with runtime.transaction() as tx:
                checkout.refund(tx, principal=till, data=RefundRequest(order_no=order_no, refund_no=key()))

    with runtime.transaction() as tx:
        assert [c.name for c in verify(tx.session, world.tenant_id) if not c.ok] == []
        for order in tx.session.query(Order).filter(Order.order_no.in_(orders)):
            back = tx.session.query(Refund).filter(Refund.order_id == order.id).all()
            assert sum(r.paid_back for r in back) == order.paid
            assert sum(r.points_back for r in back) == order.points_used
            assert sum(r.points_clawed for r in back) == order.points_earned
            assert sum(r.growth_clawed for r in back) == order.growth_earned
        b = queries.balances(tx, tenant_id=world.tenant_id, member_id=member)
        # the mall's earned points were still pending, so refunds recreate exactly the start
        assert (b.points, b.points_pending, b.growth) == (START_POINTS, 0, 0)
