"""Random sequences of earn / spend / expire / vest / reverse never break a ledger invariant."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liutong.errors import EntryAlreadyReversed, InsufficientBalance, NotReversible
from liutong.ledger import queries
from liutong.ledger import service as ledger
from liutong.ledger.verify import verify
from tests.conftest import key, register

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_phones = itertools.count(13700000000)

op = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 2), st.integers(1, 500), st.integers(0, 1), st.integers(1, 60),
              st.booleans()),
    st.tuples(st.just("spend"), st.integers(0, 2), st.integers(1, 400)),
    st.tuples(st.just("advance"), st.integers(1, 20)),
    st.tuples(st.just("reverse"), st.integers(0, 50)),
    st.tuples(st.just("restore"), st.integers(0, 50), st.integers(1, 300)),
    st.tuples(st.just("claw_back"), st.integers(0, 50), st.integers(1, 600)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_no_sequence_of_ledger_operations_breaks_an_invariant(runtime, world, ops):
    now = [T0]
    runtime.clock = lambda: now[0]
    with runtime.transaction() as tx:
        members = [register(tx, world, str(next(_phones))).id for _ in range(3)]
    issuers = [world.park_entity, world.hotel_entity]
    entries: list[int] = []
    spends: list[int] = []
    earns: list[int] = []
    for step in ops:
        try:
            with runtime.transaction() as tx:
                if step[0] == "earn":
                    _, m, points, issuer, days, pending = step
                    result = ledger.earn_points(
                        tx, tenant_id=world.tenant_id, member_id=members[m], issuer_entity_id=issuers[issuer],
                        points=points, key=key(), expires_at=now[0] + timedelta(days=days),
                        vests_at=now[0] + timedelta(days=2) if pending else None)
                    entries.append(result.entry_id)
                    earns.append(result.entry_id)
                elif step[0] == "spend":
                    _, m, points = step
                    spent = ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=members[m],
                                                points=points, key=key()).entry_id
                    entries.append(spent)
                    spends.append(spent)
                elif step[0] == "restore":
                    if spends:
                        ledger.restore_points(tx, tenant_id=world.tenant_id, spend_entry_id=spends[step[1] % len(spends)],
                                              points=step[2], key=key())
                elif step[0] == "claw_back":
                    if earns:
                        ledger.claw_back_points(tx, tenant_id=world.tenant_id, earn_entry_id=earns[step[1] % len(earns)],
                                                points=step[2], key=key())
                elif step[0] == "advance":
                    now[0] += timedelta(days=step[1])
                    for m in members:
                        ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=now[0], key=key())
                    ledger.expire_due_points(tx, tenant_id=world.tenant_id, as_of=now[0])
                elif entries:
                    target = entries[step[1] % len(entries)]
                    ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=target, key=key())
        except (InsufficientBalance, NotReversible, EntryAlreadyReversed):
            pass  # refused by the rules: nothing was posted
        with runtime.transaction() as tx:
            broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
            assert not broken, (step, broken)
    with runtime.transaction() as tx:
        for m in members:
            b = queries.balances(tx, tenant_id=world.tenant_id, member_id=m)
            assert b.points >= 0 and b.points_pending >= 0
            open_lots = queries.lots(tx, tenant_id=world.tenant_id, member_id=m)
            assert sum(lot.remaining for lot in open_lots) == b.points + b.points_pending


batch_op = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 4), st.integers(1, 500), st.integers(0, 2), st.integers(0, 30),
              st.booleans()),
    st.tuples(st.just("spend"), st.integers(0, 4), st.integers(1, 400)),
    st.tuples(st.just("restore"), st.integers(0, 50), st.integers(1, 300)),
    st.tuples(st.just("claw_back"), st.integers(0, 50), st.integers(1, 600)),
    st.tuples(st.just("night"), st.integers(1, 10), st.integers(1, 3)),
    st.tuples(st.just("rerun"), st.integers(1, 3)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(batch_op, min_size=1, max_size=25))
def test_no_sequence_of_earns_spends_and_nightly_runs_in_chunks_breaks_an_invariant(runtime, world, ops):
    """The nightly runs (set-wise, in chunks of one to three members) between purchases, refunds and
    reruns of the same night: every invariant holds after every step, and a rerun posts nothing."""
    from liutong.ledger import batch

    now = [T0]
    runtime.clock = lambda: now[0]
    with runtime.transaction() as tx:
        members = [register(tx, world, str(next(_phones))).id for _ in range(5)]
    issuers = [world.park_entity, world.hotel_entity, world.mall_entity]
    spends: list[int] = []
    earns: list[int] = []
    night: list = []  # the last night's as_of, while nothing happened since
    for step in ops:
        if step[0] not in ("night", "rerun"):
            night.clear()
        try:
            with runtime.transaction() as tx:
                if step[0] == "earn":
                    _, m, points, issuer, days, pending = step
                    earns.append(ledger.earn_points(
                        tx, tenant_id=world.tenant_id, member_id=members[m], issuer_entity_id=issuers[issuer],
                        points=points, key=key(), expires_at=now[0] + timedelta(days=days),
                        vests_at=now[0] + timedelta(days=3) if pending else None).entry_id)
                elif step[0] == "spend":
                    spends.append(ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=members[step[1]],
                                                      points=step[2], key=key()).entry_id)
                elif step[0] == "restore" and spends:
                    ledger.restore_points(tx, tenant_id=world.tenant_id, spend_entry_id=spends[step[1] % len(spends)],
                                          points=step[2], key=key())
                elif step[0] == "claw_back" and earns:
                    ledger.claw_back_points(tx, tenant_id=world.tenant_id, earn_entry_id=earns[step[1] % len(earns)],
                                            points=step[2], key=key())
                elif step[0] == "night":
                    now[0] += timedelta(days=step[1])
                    batch.vest_due(tx, tenant_id=world.tenant_id, as_of=now[0], members=step[2])
                    batch.expire_due(tx, tenant_id=world.tenant_id, as_of=now[0], members=step[2])
                    night[:] = [now[0]]
                elif step[0] == "rerun" and night:
                    assert batch.vest_due(tx, tenant_id=world.tenant_id, as_of=night[0], members=step[1]).members == 0
                    assert batch.expire_due(tx, tenant_id=world.tenant_id, as_of=night[0], members=step[1]).members == 0
        except (InsufficientBalance, NotReversible, EntryAlreadyReversed):
            pass  # refused by the rules: nothing was posted
        with runtime.transaction() as tx:
            broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
            assert not broken, (step, broken)
