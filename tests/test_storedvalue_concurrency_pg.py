"""Stored value under concurrency, on PostgreSQL with real threads and real commits."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from liutong.errors import InsufficientBalance, RefundExceedsPayment, StoredValueCapExceeded
from liutong.ledger import service as ledger
from liutong.ledger.verify import verify
from liutong.storedvalue import queries
from liutong.storedvalue import service as sv
from tests.conftest import key, register

pytestmark = pytest.mark.postgres
N = 8


def _together(fn, n=N):
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result() for f in [pool.submit(go, i) for i in range(n)]]


def _member(rt, world, phone, *recharges):
    with rt.transaction() as tx:
        m = register(tx, world, phone).id
        for amount, issuer in recharges:
            sv.recharge(tx, tenant_id=world.tenant_id, member_id=m, amount=amount, issuer_entity_id=issuer,
                        channel="wechat", reference=key(), key=key())
    return m


def _held(rt, world, m):
    with rt.transaction() as tx:
        b = queries.balance(tx, tenant_id=world.tenant_id, member_id=m)
    return b.principal, b.bonus


def _no_broken_invariants(rt, world):
    with rt.transaction() as tx:
        broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
    assert not broken


def _pay(rt, world, m, amount):
    with rt.transaction() as tx:
        return sv.pay(tx, tenant_id=world.tenant_id, member_id=m, merchant_id=world.park_tickets, amount=amount,
                      order_ref=key(), key=key())


def test_concurrent_payments_of_a_members_whole_balance_never_overspend(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    m = _member(rt, world, "13200000001", (10_000, world.park_entity))  # ¥100 + ¥20 bonus

    def spend_everything(_):
        try:
            _pay(rt, world, m, 12_000)
            return "ok"
        except InsufficientBalance:
            return "insufficient"

    assert sorted(_together(spend_everything)) == ["insufficient"] * (N - 1) + ["ok"]
    assert _held(rt, world, m) == (0, 0)
    _no_broken_invariants(rt, world)


def test_a_storm_of_payments_and_refunds_keeps_the_balance_exact_and_never_negative(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    m = _member(rt, world, "13200000002", (10_000, world.park_entity), (30_000, world.hotel_entity))
    start = _held(rt, world, m)
    moved = []
    lock = threading.Lock()

    def shop(i):
        rng = random.Random(i)
        for _ in range(6):
            try:
                paid = _pay(rt, world, m, rng.randint(500, 4_000))
            except InsufficientBalance:
                continue
            with lock:
                moved.append((-paid.principal, -paid.bonus))
            if rng.random() < 0.5:
                with rt.transaction() as tx:
                    back = sv.refund_payment(tx, tenant_id=world.tenant_id, payment_id=paid.payment_id,
                                             amount=rng.randint(1, paid.amount), refund_ref=key(), key=key())
                with lock:
                    moved.append((back.principal, back.bonus))

    _together(shop)
    principal, bonus = _held(rt, world, m)
    assert principal >= 0 and bonus >= 0
    assert (principal, bonus) == (start[0] + sum(p for p, _ in moved), start[1] + sum(b for _, b in moved))
    _no_broken_invariants(rt, world)


def test_concurrent_recharges_never_take_a_member_over_the_cap(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    m = _member(rt, world, "13200000003")

    def top_up(_):
        try:
            with rt.transaction() as tx:
                sv.recharge(tx, tenant_id=world.tenant_id, member_id=m, amount=100_000,
                            issuer_entity_id=world.park_entity, channel="wechat", reference=key(), key=key())
            return "ok"
        except StoredValueCapExceeded:
            return "capped"

    assert sorted(_together(top_up)) == ["capped"] * (N - 5) + ["ok"] * 5
    assert _held(rt, world, m)[0] == 500_000
    _no_broken_invariants(rt, world)


def test_concurrent_refunds_of_one_payment_never_give_back_more_than_it_took(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    m = _member(rt, world, "13200000004", (10_000, world.park_entity))
    paid = _pay(rt, world, m, 8_000)

    def give_back(_):
        try:
            with rt.transaction() as tx:
                sv.refund_payment(tx, tenant_id=world.tenant_id, payment_id=paid.payment_id, amount=2_000,
                                  refund_ref=key(), key=key())
            return "ok"
        except RefundExceedsPayment:
            return "exceeds"

    assert sorted(_together(give_back)) == ["exceeds"] * (N - 4) + ["ok"] * 4
    assert _held(rt, world, m) == (10_000, 2_000)
    _no_broken_invariants(rt, world)


def test_a_checkout_paying_with_points_and_stored_value_never_deadlocks_another(committed_runtime, pg_world):
    """Both orders of the two tenders in one transaction: every writer locks all of a member's
    accounts in one statement, in one order, so they queue instead of deadlocking."""
    rt, world = committed_runtime, pg_world
    m = _member(rt, world, "13200000005", (200_000, world.park_entity))
    with rt.transaction() as tx:
        ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.park_entity,
                           points=100_000, key=key(), expires_at=tx.now() + timedelta(days=365))
    deadlocks = []

    def mixed(i):
        for _ in range(10):
            try:
                with rt.transaction() as tx:
                    tx.session.execute(text("SET LOCAL lock_timeout = '10s'"))
                    steps = [
                        lambda: sv.pay(tx, tenant_id=world.tenant_id, member_id=m, merchant_id=world.park_tickets,
                                       amount=100, order_ref=key(), key=key()),
                        lambda: ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=m, points=10, key=key()),
                    ]
                    for step in steps if i % 2 else steps[::-1]:
                        step()
            except OperationalError as exc:
                if "deadlock" in str(exc).lower():
                    deadlocks.append(exc)
                else:
                    raise

    _together(mixed)
    assert deadlocks == []
    principal, bonus = _held(rt, world, m)
    assert principal + bonus == 202_000 - N * 10 * 100
    _no_broken_invariants(rt, world)
