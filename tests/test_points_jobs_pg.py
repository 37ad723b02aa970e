"""The nightly points runs against real concurrency on PostgreSQL: two runs of one night at once,
and purchases at the tills while the night runs."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from liutong.ledger import batch, queries
from liutong.ledger import service as ledger
from liutong.ledger.models import JournalEntry
from tests.conftest import key, register
from tests.test_concurrency_pg import _no_broken_invariants, _run_together

pytestmark = pytest.mark.postgres


def _members_with_lapsed_points(rt, world, n, first, *, lapsed=100, fresh=500):
    members = []
    with rt.transaction() as tx:
        for i in range(n):
            m = register(tx, world, str(first + i)).id
            ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.park_entity,
                               points=lapsed, key=key(), effective_at=tx.now() - timedelta(days=400),
                               expires_at=tx.now() - timedelta(days=1))
            ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.mall_entity,
                               points=fresh, key=key(), expires_at=tx.now() + timedelta(days=300))
            members.append(m)
    return members


def _walk(rt, world, as_of, chunk) -> batch.Totals:
    """One pass of a night, a transaction per chunk, as a worker or the command line runs it."""
    totals, after = batch.Totals(), 0
    while after is not None:
        with rt.transaction() as tx:
            step = batch.expire_chunk(tx, tenant_id=world.tenant_id, as_of=as_of, after=after, members=chunk)
        totals.add(step)
        after = step.after
    return totals


def _expire_entries(rt, world):
    with rt.transaction() as tx:
        return dict(tx.session.execute(
            select(JournalEntry.member_id, func.count()).where(
                JournalEntry.tenant_id == world.tenant_id, JournalEntry.kind == "expire")
            .group_by(JournalEntry.member_id)).all())


def test_two_workers_running_the_same_night_at_once_expire_each_member_once(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    members = _members_with_lapsed_points(rt, world, 40, 13400000000)
    with rt.transaction() as tx:
        as_of = tx.now()

    together = _run_together(lambda i: _walk(rt, world, as_of, chunk=3 + i), 2)
    later = _walk(rt, world, as_of, chunk=5)  # what one worker held, the other skipped: a later pass takes it

    assert later.skipped == 0
    assert sum(p.members for p in together) + later.members == 40
    assert _expire_entries(rt, world) == dict.fromkeys(members, 1)
    with rt.transaction() as tx:
        assert all(queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 500 for m in members)
    _no_broken_invariants(rt, world)


def test_a_purchase_holding_a_member_is_skipped_not_waited_for_and_expired_on_the_next_pass(
        committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    [shopper, *others] = _members_with_lapsed_points(rt, world, 4, 13400000100)
    with rt.transaction() as tx:
        as_of = tx.now()
    at_the_till, paid = threading.Event(), threading.Event()

    def purchase():
        with rt.transaction() as tx:
            ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=shopper, points=200, key=key())
            at_the_till.set()
            paid.wait(10)  # the cashier is still talking to the customer

    till = threading.Thread(target=purchase)
    till.start()
    assert at_the_till.wait(10)
    started = time.monotonic()
    first = _walk(rt, world, as_of, chunk=10)
    assert time.monotonic() - started < 5, "the night did not wait for the till"
    assert (first.members, first.skipped) == (3, 1)
    paid.set()
    till.join()

    second = _walk(rt, world, as_of, chunk=10)
    assert (second.members, second.skipped) == (1, 0)
    assert _expire_entries(rt, world) == dict.fromkeys([shopper, *others], 1)
    with rt.transaction() as tx:
        assert queries.balances(tx, tenant_id=world.tenant_id, member_id=shopper).points == 300
    _no_broken_invariants(rt, world)


def test_purchases_during_the_night_wait_at_most_for_a_chunk_and_never_deadlock(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    members = _members_with_lapsed_points(rt, world, 30, 13400000200)
    with rt.transaction() as tx:
        as_of = tx.now()
    errors: list[BaseException] = []
    spent = {m: 0 for m in members}

    def tills(i):
        if i == 0:  # the night, chunk after chunk, until nobody is left
            for _ in range(20):
                if not _walk(rt, world, as_of, chunk=4).skipped:
                    return
            return
        for n in range(40):  # a till selling to random members
            m = members[(n * 7 + i * 3) % len(members)]
            try:
                with rt.transaction() as tx:
                    tx.session.execute(text("SET LOCAL lock_timeout = '10s'"))
                    ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=m, points=5, key=key())
                spent[m] += 5
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(err)

    _run_together(tills, 3)
    assert errors == [], "no deadlock, no lock timeout, no refused sale"
    assert _expire_entries(rt, world) == dict.fromkeys(members, 1)
    with rt.transaction() as tx:
        for m in members:
            assert queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 500 - spent[m]
    _no_broken_invariants(rt, world)
