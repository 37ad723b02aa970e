"""Properties: whatever the activity, a review respects floors, locks and paid upgrades; and the
activity rollup always says what the orders and refunds say."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from liutong.checkout import service as checkout
from liutong.checkout.models import Order, Refund
from liutong.checkout.schemas import CommitRequest, QuoteRequest, RefundRequest
from liutong.errors import RefundExceedsOrder
from liutong.members.models import ActivityDay
from liutong.organisation.auth import Principal
from liutong.organisation.models import Role
from liutong.program.defaults import default_program
from liutong.program.rules import ProgramDocument
from liutong.program.tiers import Activity, Override, review
from tests.conftest import register
from tests.tier_programs import SHANGHAI

AT = datetime(2027, 1, 1, tzinfo=SHANGHAI)
CODES = ["t0", "t1", "t2", "t3", "t4"]


@st.composite
def ladders(draw) -> ProgramDocument:
    n = draw(st.integers(2, 5))
    combine = draw(st.sampled_from(["all", "any"]))
    window = draw(st.sampled_from([30, 90, 365]))
    tiers = [{"code": "t0", "name": "t0", "rank": 0}]
    spend = visits = 0
    for rank in range(1, n):
        spend += draw(st.integers(1, 2_000_000))
        visits += draw(st.integers(1, 40))
        qualify = {"combine": combine, "window_days": window, "spend_fen": spend, "visits": visits}
        tier = {"code": CODES[rank], "name": CODES[rank], "rank": rank, "qualify": qualify}
        if draw(st.booleans()):
            share = draw(st.floats(0, 1))
            tier["retain"] = {**qualify, "spend_fen": int(spend * share), "visits": int(visits * share)}
        tiers.append(tier)
    document = default_program().model_dump(mode="json")
    document.update(tiers=tiers, benefits=[], tier_review={"every": "year", "one_step": draw(st.booleans())})
    document["earn"]["campaigns"] = []
    return ProgramDocument.model_validate(document)


codes = st.sampled_from(CODES[:5]) | st.none()
expiries = st.none() | st.sampled_from([AT - timedelta(days=1), AT, AT + timedelta(days=1)])


@settings(max_examples=300, deadline=None)
@given(program=ladders(), current=codes, floor=codes, locked=st.booleans(), expires=expiries, paid=codes,
       spend=st.integers(0, 10_000_000), visits=st.integers(0, 200))
def test_a_review_never_goes_below_a_floor_and_never_moves_a_locked_member(program, current, floor, locked, expires,
                                                                          paid, spend, visits):
    known = {t.code for t in program.tiers}
    current, floor, paid = (c if c in known else None for c in (current, floor, paid))
    override = Override(floor=floor, locked=locked, expires_at=expires)
    activity = Activity(spend_fen=spend, visits=visits, growth=0, points_earned=0)
    verdict = review(program, current=current, activity_for=dict.fromkeys((30, 90, 365), activity),
                     override=override, paid_floor=paid, at=AT)
    rank = program.tier
    live = override.present and override.active(AT)
    assert verdict.clear_override == (override.present and not override.active(AT))
    if live and locked:
        assert verdict.tier == rank(current)
        return
    floors = [rank(paid).rank] if paid else []
    if live and floor:
        floors.append(rank(floor).rank)
    assert verdict.tier.rank >= max(floors, default=0)
    assert verdict.tier.rank <= max([rank(current).rank, *floors])  # a review never promotes by activity
    if program.tier_review.one_step and not floors:
        assert verdict.tier.rank >= rank(current).rank - 1


# --- the rollup against the orders -------------------------------------------------------------

T0 = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: sales either side of midnight
_phones = itertools.count(13500000000)

step = st.one_of(
    st.tuples(st.just("buy"), st.integers(0, 1), st.integers(1, 4), st.integers(100, 90_000)),
    st.tuples(st.just("refund"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("wait"), st.integers(10, 60 * 30)),  # minutes
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_the_rollup_equals_what_orders_and_refunds_say(runtime, world, steps):
    now = [T0]
    runtime.clock = lambda: now[0]
    who = Principal(key_id=None, role=Role.operator_admin, tenant_id=world.tenant_id, name="test")
    with runtime.transaction() as tx:
        members = [register(tx, world, str(next(_phones))).id for _ in range(2)]
    orders: list[str] = []
    for n, s in enumerate(steps):
        if s[0] == "wait":
            now[0] += timedelta(minutes=s[1])
        elif s[0] == "buy":
            _, m, qty, price = s
            cart = {"terminal_id": world.coffee_terminal, "member": {"member_id": members[m]},
                    "lines": [{"sku": "LATTE", "category": "drinks", "qty": qty, "unit_price": price}]}
            with runtime.transaction() as tx:
                payable = checkout.quote(tx, principal=who, data=QuoteRequest.model_validate(cart)).payable
                order_no = f"P-{members[0]}-{n}"
                checkout.commit(tx, principal=who, actor="test", data=CommitRequest.model_validate(
                    {**cart, "order_no": order_no, "payment": {"channel": "cash", "amount": payable}}))
            orders.append(order_no)
        elif orders:
            _, pick, whole = s
            order_no = orders[pick % len(orders)]
            lines = None if whole else [{"line_no": 1, "qty": 1}]
            try:
                with runtime.transaction() as tx:
                    checkout.refund(tx, principal=who, data=RefundRequest.model_validate(
                        {"order_no": order_no, "refund_no": f"R-{members[0]}-{n}", "lines": lines}))
            except RefundExceedsOrder:
                pass
    with runtime.transaction() as tx:
        said: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for o in tx.session.scalars(select(Order).where(Order.member_id.in_(members))):
            day = said[(o.member_id, o.occurred_at.astimezone(SHANGHAI).date())]
            day[0] += o.paid
            day[1] += o.points_earned
            day[2] += 1
            day[3] = 1
            for r in tx.session.scalars(select(Refund).where(Refund.order_id == o.id)):
                day[0] -= r.paid_back
                day[1] -= r.points_clawed
        rolled = {(r.member_id, r.day): [r.spend_fen, r.points_earned, r.purchases, r.visited]
                  for r in tx.session.scalars(select(ActivityDay).where(ActivityDay.member_id.in_(members)))}
    assert rolled == dict(said)
