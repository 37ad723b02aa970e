"""Any sequence of recharges, payments, partial refunds, cash-outs and lapses keeps every ledger
invariant, never takes a balance below zero, and gives refunds back to the fen."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liutong.errors import (
    InsufficientBalance,
    NothingToCashOut,
    RechargeOutOfRange,
    RefundExceedsPayment,
    StoredValueCapExceeded,
)
from liutong.ledger.verify import verify
from liutong.storedvalue import queries
from liutong.storedvalue import service as sv
from tests.conftest import key, register
from tests.test_storedvalue import publish

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_phones = itertools.count(13400000000)

op = st.one_of(
    st.tuples(st.just("recharge"), st.integers(0, 1), st.integers(50, 250_000), st.integers(0, 1)),
    st.tuples(st.just("pay"), st.integers(0, 1), st.integers(1, 40_000)),
    st.tuples(st.just("refund"), st.integers(0, 50), st.integers(1, 20_000)),
    st.tuples(st.just("cash_out"), st.integers(0, 1), st.one_of(st.none(), st.integers(1, 30_000))),
    st.tuples(st.just("advance"), st.integers(1, 200)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.sampled_from(["bonus_first", "principal_first", "pro_rata"]), ops=st.lists(op, min_size=1, max_size=25))
def test_no_sequence_of_stored_value_operations_breaks_an_invariant(runtime, world, order, ops):
    now = [T0]
    runtime.clock = lambda: now[0]
    publish(runtime, world, spending_order=order,
            bonus_tiers=[{"min_amount": 10_000, "bonus": 2_000}, {"min_amount": 30_000, "rate": "0.1333"}],
            bonus_valid_months=3)
    with runtime.transaction() as tx:
        members = [register(tx, world, str(next(_phones))).id for _ in range(2)]
    issuers = [world.park_entity, world.hotel_entity]
    expected = {m: [0, 0] for m in members}  # principal, bonus as the answers say they moved
    payments: list[tuple[int, object]] = []
    refunded: dict[int, list[int]] = {}
    for step in ops:
        try:
            with runtime.transaction() as tx:
                if step[0] == "recharge":
                    _, m, amount, issuer = step
                    done = sv.recharge(tx, tenant_id=world.tenant_id, member_id=members[m], amount=amount,
                                       issuer_entity_id=issuers[issuer], channel="alipay", reference=key(), key=key())
                    expected[members[m]][0] += done.amount
                    expected[members[m]][1] += done.bonus
                elif step[0] == "pay":
                    _, m, amount = step
                    paid = sv.pay(tx, tenant_id=world.tenant_id, member_id=members[m], merchant_id=world.park_tickets,
                                  amount=amount, order_ref=key(), key=key())
                    assert paid.principal + paid.bonus == amount
                    expected[members[m]][0] -= paid.principal
                    expected[members[m]][1] -= paid.bonus
                    payments.append((members[m], paid))
                    refunded[paid.payment_id] = [0, 0, 0]
                elif step[0] == "refund":
                    if payments:
                        owner, paid = payments[step[1] % len(payments)]
                        back = sv.refund_payment(tx, tenant_id=world.tenant_id, payment_id=paid.payment_id,
                                                 amount=step[2], refund_ref=key(), key=key())
                        assert back.principal + back.bonus + back.bonus_forfeited == step[2]
                        expected[owner][0] += back.principal
                        expected[owner][1] += back.bonus
                        total = refunded[paid.payment_id]
                        total[0] += back.principal
                        total[1] += back.bonus + back.bonus_forfeited
                        total[2] += step[2]
                        assert total[0] <= paid.principal and total[1] <= paid.bonus
                        if total[2] == paid.amount:  # fully refunded: exactly what it took, part by part
                            assert (total[0], total[1]) == (paid.principal, paid.bonus)
                elif step[0] == "cash_out":
                    _, m, principal = step
                    done = sv.refund_balance(tx, tenant_id=world.tenant_id, member_id=members[m], principal=principal,
                                             channel="alipay", reference=key(), reason="退卡", key=key(), actor="t")
                    expected[members[m]][0] -= done.principal
                    expected[members[m]][1] -= done.bonus_forfeited
                else:
                    now[0] += timedelta(days=step[1])
                    for m in members:
                        lapsed = sv.expire_bonus(tx, tenant_id=world.tenant_id, member_id=m, as_of=now[0], key=key())
                        if lapsed:
                            expected[m][1] -= lapsed.bonus
        except (InsufficientBalance, RefundExceedsPayment, StoredValueCapExceeded, RechargeOutOfRange,
                NothingToCashOut):
            pass  # refused by the rules: nothing moved
        with runtime.transaction() as tx:
            broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
            assert not broken, (step, broken)
            for m in members:
                b = queries.balance(tx, tenant_id=world.tenant_id, member_id=m)
                assert b.principal >= 0 and b.bonus >= 0
                assert [b.principal, b.bonus] == expected[m], step
