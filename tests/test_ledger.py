"""Worked examples of the points ledger: lots, expiry, reversals, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from liutong.errors import (
    EntryAlreadyReversed,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidAmount,
    LotBackedAccount,
    MemberNotActive,
    NotReversible,
    UnbalancedEntry,
)
from liutong.ledger import queries
from liutong.ledger import service as ledger
from liutong.ledger.models import Account, AccountKind, OwnerType, PointsLot
from liutong.ledger.schemas import LegIn
from liutong.ledger.verify import verify
from tests.conftest import key, register

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _business_day(runtime):
    runtime.clock = lambda: T0 + timedelta(hours=1)


def _earn(tx, world, member_id, points, *, expires_in_days=365, issuer=None, at=T0, k=None):
    return ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=member_id,
                              issuer_entity_id=issuer or world.park_entity, points=points, key=k or key(),
                              effective_at=at, expires_at=at + timedelta(days=expires_in_days))


def _spend(tx, world, member_id, points, k=None):
    return ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=member_id, points=points, key=k or key())


def _balance(tx, world, member_id):
    return queries.balances(tx, tenant_id=world.tenant_id, member_id=member_id)


def _assert_invariants(tx, world):
    broken = [c for c in verify(tx.session, world.tenant_id) if not c.ok]
    assert not broken, [(c.name, c.violations) for c in broken]


def test_points_are_spent_from_the_lot_that_expires_first(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000001").id
        late = _earn(tx, world, m, 500, expires_in_days=300)
        soon = _earn(tx, world, m, 300, expires_in_days=30, issuer=world.hotel_entity)
        spent = _spend(tx, world, m, 400)
        assert [(c.lot_id, c.amount) for c in spent.lots] == [(soon.lots[0].lot_id, -300), (late.lots[0].lot_id, -100)]
        # each issuer is credited with what was drawn from its own lots
        redeemed = {p.account_id: p.amount for p in spent.postings if p.kind == "points_redeemed"}
        assert sorted(redeemed.values()) == [100, 300]
        assert _balance(tx, world, m).points == 400
        _assert_invariants(tx, world)


def test_lots_with_the_same_expiry_are_spent_oldest_first_then_by_id(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000002").id
        expiry = T0 + timedelta(days=100)
        a = ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.park_entity,
                               points=10, key=key(), effective_at=T0 + timedelta(days=2), expires_at=expiry)
        b = ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.park_entity,
                               points=10, key=key(), effective_at=T0, expires_at=expiry)
        spent = _spend(tx, world, m, 15)
        assert [c.lot_id for c in spent.lots] == [b.lots[0].lot_id, a.lots[0].lot_id]


def test_expired_points_are_posted_to_breakage_and_cannot_be_spent(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000003").id
        _earn(tx, world, m, 200, expires_in_days=10)
        _earn(tx, world, m, 50, expires_in_days=400)
    runtime.clock = lambda: T0 + timedelta(days=11)
    # before the expiry job runs, the lapsed lot is already not spendable
    with pytest.raises(InsufficientBalance), runtime.transaction() as tx:
        _spend(tx, world, m, 100)
    with runtime.transaction() as tx:
        posted = ledger.expire_due_points(tx, tenant_id=world.tenant_id, as_of=T0 + timedelta(days=11))
        assert posted == 1
        assert _balance(tx, world, m).points == 50
        lots = queries.lots(tx, tenant_id=world.tenant_id, member_id=m, open_only=False)
        assert sorted((lot.status, lot.remaining) for lot in lots) == [("active", 50), ("expired", 0)]
        # running the job again posts nothing twice
        assert ledger.expire_due_points(tx, tenant_id=world.tenant_id, as_of=T0 + timedelta(days=11)) == 0
        _assert_invariants(tx, world)


def test_pending_points_vest_after_the_refund_window(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000004").id
        ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.hotel_entity,
                           points=800, key=key(), effective_at=T0, vests_at=T0 + timedelta(days=3),
                           expires_at=T0 + timedelta(days=365))
        b = _balance(tx, world, m)
        assert (b.points, b.points_pending) == (0, 800)
    with pytest.raises(InsufficientBalance), runtime.transaction() as tx:
        _spend(tx, world, m, 1)
    with runtime.transaction() as tx:
        assert ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=T0 + timedelta(days=2), key=key()) is None
        ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=T0 + timedelta(days=3), key=key())
        b = _balance(tx, world, m)
        assert (b.points, b.points_pending) == (800, 0)
        _spend(tx, world, m, 800)
        _assert_invariants(tx, world)


def test_reversing_a_spend_restores_the_same_lots_with_their_expiry(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000005").id
        lot = _earn(tx, world, m, 1000).lots[0].lot_id
        spend = _spend(tx, world, m, 600)
        rev = ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=spend.entry_id, key=key())
        assert rev.reverses_id == spend.entry_id
        assert [(c.lot_id, c.amount) for c in rev.lots] == [(lot, 600)]
        assert _balance(tx, world, m).points == 1000
    with pytest.raises(EntryAlreadyReversed), runtime.transaction() as tx:
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=spend.entry_id, key=key())
    with runtime.transaction() as tx:
        _assert_invariants(tx, world)


def test_points_restored_into_a_lot_that_has_expired_come_back_expired(runtime, world):
    runtime.clock = lambda: T0 + timedelta(days=1)
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000006").id
        _earn(tx, world, m, 300, expires_in_days=5)
        spend = _spend(tx, world, m, 300)
    runtime.clock = lambda: T0 + timedelta(days=30)
    with runtime.transaction() as tx:
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=spend.entry_id, key=key())
        assert _balance(tx, world, m).points == 0
        (lot,) = queries.lots(tx, tenant_id=world.tenant_id, member_id=m, open_only=False)
        assert (lot.status, lot.remaining) == ("expired", 0)
        _assert_invariants(tx, world)


def test_an_earn_is_reversed_only_while_its_lot_is_untouched(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000007").id
        whole = _earn(tx, world, m, 100)
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=whole.entry_id, key=key())
        assert _balance(tx, world, m).points == 0
        used = _earn(tx, world, m, 100)
        _spend(tx, world, m, 1)
    with pytest.raises(NotReversible), runtime.transaction() as tx:
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=used.entry_id, key=key())
    with runtime.transaction() as tx:
        _assert_invariants(tx, world)


def test_a_replayed_key_returns_the_first_result_and_posts_nothing(runtime, world):
    k = key()
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000008").id
        first = _earn(tx, world, m, 100, k=k)
    with runtime.transaction() as tx:
        again = _earn(tx, world, m, 100, k=k)
        assert again == first
        assert _balance(tx, world, m).points == 100


def test_the_same_key_with_another_payload_is_a_conflict(runtime, world):
    k = key()
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000009").id
        _earn(tx, world, m, 100, k=k)
    with pytest.raises(IdempotencyConflict), runtime.transaction() as tx:
        _earn(tx, world, m, 101, k=k)
    with pytest.raises(IdempotencyConflict), runtime.transaction() as tx:
        _spend(tx, world, m, 100, k=k)  # same key, another operation


def test_a_key_that_failed_for_insufficient_balance_keeps_failing_after_a_top_up(runtime, world):
    k = key()
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000010").id
        _earn(tx, world, m, 50)
    with pytest.raises(InsufficientBalance) as first, runtime.transaction() as tx:
        _spend(tx, world, m, 80, k=k)
    with runtime.transaction() as tx:
        _earn(tx, world, m, 500)
    with pytest.raises(InsufficientBalance) as again, runtime.transaction() as tx:
        _spend(tx, world, m, 80, k=k)
    assert again.value.data == first.value.data == {"available": 50, "requested": 80}
    with runtime.transaction() as tx:
        assert _balance(tx, world, m).points == 550


def test_zero_or_negative_amounts_are_refused(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000011").id
    for points in (0, -5):
        with pytest.raises(InvalidAmount), runtime.transaction() as tx:
            _earn(tx, world, m, points)
        with pytest.raises(InvalidAmount), runtime.transaction() as tx:
            _spend(tx, world, m, points)


def _growth_accounts(tx, world, *member_ids):
    """Member accounts with a cached balance that generic entries may move (stored value may not:
    only its own service moves it, together with its lots)."""
    return [tx.session.scalar(select(Account.id).where(
        Account.tenant_id == world.tenant_id, Account.owner_type == OwnerType.member.value,
        Account.owner_id == mid, Account.kind == AccountKind.growth.value)) for mid in member_ids]


def test_an_unbalanced_entry_is_refused_and_changes_nothing(runtime, world):
    with runtime.transaction() as tx:
        a, b = (register(tx, world, p).id for p in ("13900000012", "13900000013"))
        acc_a, acc_b = _growth_accounts(tx, world, a, b)
        issued = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.system, owner_id=0,
                                   kind=AccountKind.growth_issued)
        ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="adjust",
                          legs=[LegIn(account_id=acc_a, amount=10000), LegIn(account_id=issued, amount=-10000)])
    with pytest.raises(UnbalancedEntry), runtime.transaction() as tx:
        ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="adjust",
                          legs=[LegIn(account_id=acc_a, amount=-100), LegIn(account_id=acc_b, amount=99)])
    with pytest.raises(InsufficientBalance), runtime.transaction() as tx:
        ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="adjust",
                          legs=[LegIn(account_id=acc_b, amount=-1), LegIn(account_id=acc_a, amount=1)])
    with runtime.transaction() as tx:
        assert _balance(tx, world, a).growth == 10000
        assert _balance(tx, world, b).growth == 0
        _assert_invariants(tx, world)


def test_points_accounts_move_only_through_lot_operations(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000014").id
        points = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.member, owner_id=m,
                                   kind=AccountKind.points)
        issued = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.entity,
                                   owner_id=world.park_entity, kind=AccountKind.points_issued)
    with pytest.raises(LotBackedAccount), runtime.transaction() as tx:
        ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="adjust",
                          legs=[LegIn(account_id=points, amount=5), LegIn(account_id=issued, amount=-5)])


def test_a_frozen_member_cannot_spend(runtime, world):
    from liutong.members import service as members

    with runtime.transaction() as tx:
        m = register(tx, world, "13900000015").id
        _earn(tx, world, m, 100)
        members.change_status(tx, tenant_id=world.tenant_id, member_id=m, status="frozen", reason="风控", key=key(), actor="t")
    with pytest.raises(MemberNotActive), runtime.transaction() as tx:
        _spend(tx, world, m, 10)


def test_another_tenants_entity_cannot_issue_points(runtime, world):
    from liutong.errors import InvalidReference
    from tests.conftest import build_world

    with runtime.transaction() as tx:
        other = build_world(tx)
        m = register(tx, world, "13900000016").id
    with pytest.raises(InvalidReference), runtime.transaction() as tx:
        _earn(tx, world, m, 100, issuer=other.park_entity)


def test_verify_reports_a_tampered_balance_and_a_tampered_lot(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000017").id
        _earn(tx, world, m, 100)
        _assert_invariants(tx, world)
        tx.session.execute(update(Account).where(Account.owner_id == m, Account.owner_type == "member",
                                                 Account.kind == "points", Account.tenant_id == world.tenant_id)
                           .values(balance=Account.balance + 7))
        tx.session.execute(update(PointsLot).where(PointsLot.member_id == m, PointsLot.tenant_id == world.tenant_id)
                           .values(remaining=PointsLot.remaining - 1))
        broken = {c.name for c in verify(tx.session, world.tenant_id) if not c.ok}
        assert {"cached_balances", "lots_match_points", "lot_movements", "issuer_liability"} <= broken


def test_postgres_itself_refuses_an_unbalanced_entry(runtime, world):
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the deferred balance trigger exists on PostgreSQL only")
    from sqlalchemy.exc import DBAPIError

    with runtime.transaction() as tx:
        m = register(tx, world, "13900000018").id
        entry = _earn(tx, world, m, 100)
    with pytest.raises(DBAPIError, match="does not balance"), runtime.transaction() as tx:
        tx.session.execute(text("UPDATE ledger_postings SET amount = amount + 1 WHERE entry_id = :e AND amount > 0"),
                           {"e": entry.entry_id})
        tx.session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))


def test_reversing_an_earn_after_its_points_vested_claws_back_from_the_spendable_balance(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000019").id
        earn = ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=m, issuer_entity_id=world.hotel_entity,
                                  points=300, key=key(), vests_at=T0 + timedelta(days=2),
                                  expires_at=T0 + timedelta(days=365))
        ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=T0 + timedelta(days=2), key=key())
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=earn.entry_id, key=key())
        b = _balance(tx, world, m)
        assert (b.points, b.points_pending) == (0, 0)
        _assert_invariants(tx, world)


def test_a_transfer_between_two_members_is_reversed_leg_by_leg(runtime, world):
    with runtime.transaction() as tx:
        a, b = (register(tx, world, p).id for p in ("13900000020", "13900000021"))
        acc_a, acc_b = _growth_accounts(tx, world, a, b)
        issued = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.system, owner_id=0,
                                   kind=AccountKind.growth_issued)
        ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="growth",
                          legs=[LegIn(account_id=acc_a, amount=5000), LegIn(account_id=issued, amount=-5000)])
        move = ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="transfer",
                                 legs=[LegIn(account_id=acc_a, amount=-2000), LegIn(account_id=acc_b, amount=2000)])
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=move.entry_id, key=key())
        assert (_balance(tx, world, a).growth, _balance(tx, world, b).growth) == (5000, 0)
        _assert_invariants(tx, world)


def test_points_of_a_frozen_member_still_expire_on_schedule(runtime, world):
    from liutong.members import service as members

    with runtime.transaction() as tx:
        m = register(tx, world, "13900000022").id
        _earn(tx, world, m, 70, expires_in_days=3)
        members.change_status(tx, tenant_id=world.tenant_id, member_id=m, status="frozen", reason="风控", key=key(), actor="t")
    with runtime.transaction() as tx:
        assert ledger.expire_due_points(tx, tenant_id=world.tenant_id, as_of=T0 + timedelta(days=4)) == 1
        assert _balance(tx, world, m).points == 0
        _assert_invariants(tx, world)


def test_postgres_refuses_an_entry_inserted_without_balancing_postings(runtime, world):
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the deferred balance trigger exists on PostgreSQL only")
    from sqlalchemy.exc import DBAPIError

    with runtime.transaction() as tx:
        m = register(tx, world, "13900000023").id
        points = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.member, owner_id=m,
                                   kind=AccountKind.points)
    with pytest.raises(DBAPIError, match="does not balance"), runtime.transaction() as tx:
        entry = tx.session.execute(text(
            "INSERT INTO ledger_entries (tenant_id, idempotency_key, kind, effective_at, recorded_at) "
            "VALUES (:t, 'forged', 'earn', now(), now()) RETURNING id"), {"t": world.tenant_id}).scalar_one()
        tx.session.execute(text("INSERT INTO ledger_postings (tenant_id, entry_id, account_id, asset, amount) "
                                "VALUES (:t, :e, :a, 'POINTS', 1000)"), {"t": world.tenant_id, "e": entry, "a": points})
        tx.session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))


def test_a_key_replayed_inside_the_same_unit_of_work_returns_the_first_answer(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000024").id
        k = key()
        first = _earn(tx, world, m, 40, k=k)
        assert _earn(tx, world, m, 40, k=k) == first
        assert _balance(tx, world, m).points == 40


def test_a_spend_given_back_in_parts_returns_exactly_what_it_drew_from_each_lot(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000025").id
        a = _earn(tx, world, m, 333, expires_in_days=30).lots[0].lot_id
        b = _earn(tx, world, m, 1_000, expires_in_days=300, issuer=world.hotel_entity).lots[0].lot_id
        spend = _spend(tx, world, m, 1_000)  # 333 from a, 667 from b
        for part in (100, 1, 499):
            ledger.restore_points(tx, tenant_id=world.tenant_id, spend_entry_id=spend.entry_id, points=part, key=key())
        rest = ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=spend.entry_id, key=key())
        assert sum(c.amount for c in rest.lots) == 400
        lots = {lot.id: lot.remaining for lot in queries.lots(tx, tenant_id=world.tenant_id, member_id=m)}
        assert lots == {a: 333, b: 1_000}
        _assert_invariants(tx, world)
    with pytest.raises(EntryAlreadyReversed), runtime.transaction() as tx:
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=spend.entry_id, key=key())
    with pytest.raises(NotReversible), runtime.transaction() as tx:
        ledger.restore_points(tx, tenant_id=world.tenant_id, spend_entry_id=spend.entry_id, points=1, key=key())


def test_points_clawed_back_after_they_were_spent_come_from_the_members_other_lots(runtime, world):
    with runtime.transaction() as tx:
        m = register(tx, world, "13900000026").id
        earn = _earn(tx, world, m, 500)
        _spend(tx, world, m, 450)  # the purchase's points are mostly gone
        _earn(tx, world, m, 200, expires_in_days=100, issuer=world.mall_entity)
        back = ledger.claw_back_points(tx, tenant_id=world.tenant_id, earn_entry_id=earn.entry_id, points=300,
                                       key=key())
        assert sum(-c.amount for c in back.lots) == 250  # 50 left in the lot + 200 from the other lot
        assert _balance(tx, world, m).points == 0
        _assert_invariants(tx, world)
