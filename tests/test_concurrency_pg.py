"""Concurrency on PostgreSQL with real threads and real commits."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from liutong.errors import InsufficientBalance, LiutongError
from liutong.kit.idempotency import IdempotencyKey
from liutong.ledger import queries
from liutong.ledger import service as ledger
from liutong.ledger.models import Account, AccountKind, JournalEntry, OwnerType
from liutong.ledger.schemas import LegIn
from liutong.ledger.verify import verify
from tests.conftest import key, register

pytestmark = pytest.mark.postgres
N = 8


def _member_with_points(rt, world, phone, points):
    with rt.transaction() as tx:
        m = register(tx, world, phone).id
        if points:
            ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.park_entity,
                               points=points, key=key(), expires_at=tx.now() + timedelta(days=365))
    return m


def _run_together(fn, n):
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result() for f in [pool.submit(go, i) for i in range(n)]]


def _no_broken_invariants(rt, world):
    with rt.transaction() as tx:
        broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
    assert not broken


def test_concurrent_spends_of_a_full_balance_let_exactly_one_through(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    m = _member_with_points(rt, world, "13600000001", 1000)

    def spend(_):
        try:
            with rt.transaction() as tx:
                ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=m, points=1000, key=key())
            return "ok"
        except InsufficientBalance:
            return "insufficient"

    outcomes = _run_together(spend, N)
    assert sorted(outcomes) == ["insufficient"] * (N - 1) + ["ok"]
    with rt.transaction() as tx:
        assert queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 0
    _no_broken_invariants(rt, world)


def test_a_naive_read_then_write_loses_updates_that_the_ledger_does_not(committed_runtime, pg_world):
    """Shows why balances are only changed under the row lock: the naive way loses money."""
    rt, world = committed_runtime, pg_world
    m = _member_with_points(rt, world, "13600000002", 10_000)
    with rt.transaction() as tx:
        acc = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.member, owner_id=m,
                                kind=AccountKind.growth)

    def naive(_):
        with rt.transaction() as tx:
            balance = tx.session.scalar(select(Account.balance).where(Account.id == acc))
            tx.session.execute(text("SELECT pg_sleep(0.05)"))
            tx.session.execute(text("UPDATE ledger_accounts SET balance = :b WHERE id = :i"), {"b": balance + 1, "i": acc})

    _run_together(naive, N)
    with rt.transaction() as tx:
        naive_result = tx.session.scalar(select(Account.balance).where(Account.id == acc))
        tx.session.execute(text("UPDATE ledger_accounts SET balance = 0 WHERE id = :i"), {"i": acc})
    assert naive_result < N  # updates were lost

    def real(_):
        with rt.transaction() as tx:
            ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=m, points=10, key=key())

    _run_together(real, N)
    with rt.transaction() as tx:
        assert queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 10_000 - 10 * N
    _no_broken_invariants(rt, world)


def test_opposite_direction_multi_account_entries_never_deadlock(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    members = [_member_with_points(rt, world, f"136000001{i:02d}", 1) for i in range(4)]
    with rt.transaction() as tx:
        accounts = [ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.member, owner_id=m,
                                      kind=AccountKind.growth) for m in members]
        issued = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.system, owner_id=0,
                                   kind=AccountKind.growth_issued)
        ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="growth",
                          legs=[LegIn(account_id=a, amount=1_000_000) for a in accounts]
                          + [LegIn(account_id=issued, amount=-4_000_000)])
    deadlocks = []

    def shuffle_money(i):
        rng = random.Random(i)
        for _ in range(25):
            order = accounts[:] if i % 2 else accounts[::-1]  # half the threads go the other way round
            rng.shuffle(order) if i % 3 == 0 else None
            legs = [LegIn(account_id=order[0], amount=-300), LegIn(account_id=order[1], amount=100),
                    LegIn(account_id=order[2], amount=100), LegIn(account_id=order[3], amount=100)]
            try:
                with rt.transaction() as tx:
                    tx.session.execute(text("SET LOCAL lock_timeout = '10s'"))
                    ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="transfer", legs=legs)
            except OperationalError as exc:
                if "deadlock" in str(exc).lower():
                    deadlocks.append(exc)
                else:
                    raise

    _run_together(shuffle_money, N)
    assert deadlocks == []
    with rt.transaction() as tx:
        total = sum(queries.balances(tx, tenant_id=world.tenant_id, member_id=m).growth for m in members)
    assert total == 4_000_000
    _no_broken_invariants(rt, world)


def test_one_key_replayed_sequentially_and_concurrently_posts_one_entry(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    m = _member_with_points(rt, world, "13600000003", 500)
    k = key()

    def earn(_):
        with rt.transaction() as tx:
            return ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.mall_entity,
                                      points=88, key=k, expires_at=None).model_dump()

    concurrent = _run_together(earn, N)
    sequential = [earn(0) for _ in range(3)]
    assert all(r == concurrent[0] for r in concurrent + sequential)
    with rt.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(JournalEntry).where(
            JournalEntry.tenant_id == world.tenant_id, JournalEntry.idempotency_key == k)) == 1
        assert tx.session.scalar(select(func.count()).select_from(IdempotencyKey).where(
            IdempotencyKey.tenant_id == world.tenant_id, IdempotencyKey.key == k)) == 1
        assert queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 588


def test_a_sticky_failure_is_the_same_for_every_concurrent_retry(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    m = _member_with_points(rt, world, "13600000004", 10)
    k = key()

    def spend(_):
        try:
            with rt.transaction() as tx:
                ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=m, points=50, key=k)
            return "ok"
        except LiutongError as err:
            return (err.code, tuple(sorted(err.data.items())))

    outcomes = _run_together(spend, 4)
    assert len(set(outcomes)) == 1 and outcomes[0][0] == "insufficient_balance"


def test_one_order_number_committed_from_several_tills_at_once_is_one_sale(committed_runtime, pg_world):
    from liutong.checkout import service as checkout
    from liutong.checkout.models import Order
    from liutong.checkout.schemas import CommitRequest
    from liutong.organisation.auth import Principal
    from liutong.organisation.models import Role

    rt, world = committed_runtime, pg_world
    m = _member_with_points(rt, world, "13600000005", 0)
    who = Principal(key_id=None, role=Role.operator_admin, tenant_id=world.tenant_id, name="test")
    body = CommitRequest(order_no=f"POS-{key()}", terminal_id=world.coffee_terminal, member={"member_id": m},
                         lines=[{"sku": "LATTE", "category": "drinks", "qty": 1, "unit_price": 3_200}],
                         payment={"channel": "wechat", "amount": 3_200})

    def commit(_):
        with rt.transaction() as tx:
            return checkout.commit(tx, principal=who, data=body, actor="test").model_dump()

    results = _run_together(commit, N)
    assert all(r == results[0] for r in results)
    with rt.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(Order).where(
            Order.tenant_id == world.tenant_id, Order.order_no == body.order_no)) == 1
        assert queries.balances(tx, tenant_id=world.tenant_id, member_id=m).growth == 32
    _no_broken_invariants(rt, world)
