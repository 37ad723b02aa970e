"""Stored value as a group's members and cashiers live it: 充100送20, a ¥5,000 cap, spending
orders, refunds that add back to the fen, cash-outs that forfeit bonus, lapses and statements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select, update

from liutong.errors import (
    CashOutNotAllowed,
    IdempotencyConflict,
    InsufficientBalance,
    MemberNotActive,
    NothingToCashOut,
    NotReversible,
    PaymentAlreadyRecharged,
    RechargeOutOfRange,
    RefundExceedsPayment,
    StoredValueAccount,
    StoredValueCapExceeded,
    StoredValueNotAccepted,
)
from liutong.ledger import service as ledger
from liutong.ledger.models import AccountKind, JournalEntry, OwnerType
from liutong.ledger.schemas import LegIn
from liutong.ledger.verify import verify
from liutong.program import service as program_service
from liutong.program.rules import ProgramDocument
from liutong.program.schemas import ProgramPublish
from liutong.storedvalue import queries
from liutong.storedvalue import service as sv
from liutong.storedvalue.models import StoredValueLot, StoredValuePayment
from tests.conftest import key, register

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def clock(runtime):
    now = [T0]
    runtime.clock = lambda: now[0]
    return now


@pytest.fixture
def member(runtime, world, clock):
    with runtime.transaction() as tx:
        return register(tx, world, "13500135000").id


def publish(runtime, world, **stored_value):
    """A new program version whose stored-value section differs as given (one level deep)."""
    with runtime.transaction() as tx:
        document = program_service.current(tx, tenant_id=world.tenant_id).document.model_dump(mode="json")
        for field, value in stored_value.items():
            if isinstance(value, dict):
                document["stored_value"][field].update(value)
            else:
                document["stored_value"][field] = value
        program_service.publish(tx, tenant_id=world.tenant_id, key=key(), actor="test", data=ProgramPublish(
            document=ProgramDocument.model_validate(document), note="储值规则调整"))


def recharge(tx, world, member_id, amount, *, issuer=None, reference=None, k=None):
    return sv.recharge(tx, tenant_id=world.tenant_id, member_id=member_id, amount=amount,
                       issuer_entity_id=issuer or world.park_entity, channel="wechat",
                       reference=reference or f"wx-{key()}", key=k or key())


def pay(tx, world, member_id, amount, *, merchant=None, k=None):
    return sv.pay(tx, tenant_id=world.tenant_id, member_id=member_id, merchant_id=merchant or world.park_tickets,
                  amount=amount, order_ref=f"POS-{key()}", key=k or key())


def refund(tx, world, payment_id, amount, *, k=None):
    return sv.refund_payment(tx, tenant_id=world.tenant_id, payment_id=payment_id, amount=amount,
                             refund_ref=f"RF-{key()}", key=k or key())


def cash_out(tx, world, member_id, principal=None, *, k=None):
    return sv.refund_balance(tx, tenant_id=world.tenant_id, member_id=member_id, principal=principal,
                             channel="wechat", reference=f"wxr-{key()}", reason="会员申请退卡", key=k or key(),
                             actor="test")


def held(tx, world, member_id):
    b = queries.balance(tx, tenant_id=world.tenant_id, member_id=member_id)
    return b.principal, b.bonus


def assert_invariants(tx, world):
    broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
    assert not broken


# --- recharging --------------------------------------------------------------------------------------


def test_recharging_100_gives_20_bonus(runtime, world, member):
    with runtime.transaction() as tx:
        done = recharge(tx, world, member, 10_000)
        assert (done.amount, done.bonus, done.bonus_rule) == (10_000, 2_000, "充100送20")
        assert done.bonus_expires_at == T0 + relativedelta(months=12)
        assert (done.principal_after, done.bonus_after) == (10_000, 2_000)
        assert held(tx, world, member) == (10_000, 2_000)
        assert_invariants(tx, world)


def test_a_recharge_below_the_threshold_gets_no_bonus_and_tiers_do_not_repeat(runtime, world, member):
    with runtime.transaction() as tx:
        assert recharge(tx, world, member, 9_999).bonus == 0
        assert recharge(tx, world, member, 30_000).bonus == 2_000
        assert held(tx, world, member) == (39_999, 2_000)


def test_a_member_cannot_hold_more_than_5000_yuan_of_principal(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 400_000)
    k = key()
    with pytest.raises(StoredValueCapExceeded) as refused, runtime.transaction() as tx:
        recharge(tx, world, member, 100_001, reference="wx-over", k=k)
    assert refused.value.data == {"max_principal": 500_000, "held": 400_000, "room": 100_000}
    with runtime.transaction() as tx:
        recharge(tx, world, member, 100_000)
        assert held(tx, world, member) == (500_000, 4_000)  # the bonus does not count towards the cap
        pay(tx, world, member, 200_000)
    with pytest.raises(StoredValueCapExceeded), runtime.transaction() as tx:
        # the refused key keeps failing, even with room now
        recharge(tx, world, member, 100_001, reference="wx-over", k=k)


def test_a_recharge_outside_the_per_recharge_limits_is_refused(runtime, world, member):
    with pytest.raises(RechargeOutOfRange), runtime.transaction() as tx:
        recharge(tx, world, member, 99)
    publish(runtime, world, limits={"min_recharge": 5_000})
    with pytest.raises(RechargeOutOfRange) as refused, runtime.transaction() as tx:
        recharge(tx, world, member, 4_999)
    assert refused.value.data == {"min_recharge": 5_000, "max_recharge": 500_000}
    with runtime.transaction() as tx:
        assert held(tx, world, member) == (0, 0)


def test_one_payment_reference_recharges_once(runtime, world, member):
    k = key()
    with runtime.transaction() as tx:
        first = recharge(tx, world, member, 10_000, reference="wx-4200001", k=k)
        again = recharge(tx, world, member, 10_000, reference="wx-4200001", k=k)
        assert again == first
    with pytest.raises(PaymentAlreadyRecharged), runtime.transaction() as tx:
        recharge(tx, world, member, 10_000, reference="wx-4200001")  # the callback again, under a new key
    with runtime.transaction() as tx:
        assert held(tx, world, member) == (10_000, 2_000)
        assert_invariants(tx, world)


def test_an_issuer_of_another_tenant_cannot_issue_stored_value(runtime, world, member):
    from liutong.errors import InvalidReference
    from tests.conftest import build_world

    with runtime.transaction() as tx:
        other = build_world(tx)
    with pytest.raises(InvalidReference), runtime.transaction() as tx:
        recharge(tx, world, member, 10_000, issuer=other.park_entity)


# --- paying ----------------------------------------------------------------------------------------


def test_by_default_principal_and_bonus_are_spent_in_proportion_to_the_fen(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 3_501)
        assert (paid.principal, paid.bonus, paid.spending_order) == (2_918, 583, "pro_rata")
        assert (paid.principal_after, paid.bonus_after) == (7_082, 1_417)
        assert_invariants(tx, world)


def test_bonus_is_spent_first_when_the_program_says_so(runtime, world, member):
    publish(runtime, world, spending_order="bonus_first")
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 2_500)
        assert (paid.principal, paid.bonus) == (500, 2_000)
        assert held(tx, world, member) == (9_500, 0)


def test_principal_is_spent_first_when_the_program_says_so(runtime, world, member):
    publish(runtime, world, spending_order="principal_first")
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 10_500)
        assert (paid.principal, paid.bonus) == (10_000, 500)
        assert held(tx, world, member) == (0, 1_500)


def test_a_payment_larger_than_the_balance_is_refused_and_the_key_keeps_failing(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
    k = key()
    with pytest.raises(InsufficientBalance) as refused, runtime.transaction() as tx:
        sv.pay(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets, amount=12_001,
               order_ref="same", key=k)
    assert refused.value.data == {"available": 12_000, "requested": 12_001}
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
    with pytest.raises(InsufficientBalance), runtime.transaction() as tx:
        sv.pay(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets, amount=12_001,
               order_ref="same", key=k)
    with runtime.transaction() as tx:
        assert held(tx, world, member) == (20_000, 4_000)


def test_replaying_a_payment_posts_nothing_and_another_payload_under_its_key_is_refused(runtime, world, member):
    k = key()
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        first = sv.pay(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets,
                       amount=1_000, order_ref="POS-9", key=k)
        entries = tx.session.scalar(select(func.count()).select_from(JournalEntry))
        again = sv.pay(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets,
                       amount=1_000, order_ref="POS-9", key=k)
        assert again == first
        assert tx.session.scalar(select(func.count()).select_from(JournalEntry)) == entries
    with pytest.raises(IdempotencyConflict), runtime.transaction() as tx:
        sv.pay(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets, amount=1_001,
               order_ref="POS-9", key=k)


def test_bonus_past_its_validity_is_not_spendable_even_before_the_lapse_is_posted(runtime, world, member, clock):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
    clock[0] = T0 + relativedelta(months=13)
    with pytest.raises(InsufficientBalance), runtime.transaction() as tx:
        pay(tx, world, member, 10_001)
    with runtime.transaction() as tx:
        paid = pay(tx, world, member, 10_000)
        assert (paid.principal, paid.bonus) == (10_000, 0)


def test_a_third_party_merchant_takes_stored_value_only_when_the_operator_enables_it(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
    with pytest.raises(StoredValueNotAccepted), runtime.transaction() as tx:
        pay(tx, world, member, 1_000, merchant=world.mall_coffee)
    publish(runtime, world, acceptance={"third_party_merchants": ["coffee"]})
    with runtime.transaction() as tx:
        paid = pay(tx, world, member, 1_000, merchant=world.mall_coffee)
        assert paid.third_party is True
        assert tx.session.get(StoredValuePayment, paid.payment_id).third_party is True  # settlement reads this
        assert pay(tx, world, member, 1_000).third_party is False  # the group's own ticket office
    with pytest.raises(StoredValueNotAccepted), runtime.transaction() as tx:
        pay(tx, world, member, 1_000, merchant=world.mall_noodles)


def test_a_self_operated_merchant_can_be_left_out(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
    publish(runtime, world, acceptance={"excluded_merchants": ["tickets"]})
    with pytest.raises(StoredValueNotAccepted), runtime.transaction() as tx:
        pay(tx, world, member, 1_000)


def test_a_payment_says_how_much_each_issuer_paid(runtime, world, member):
    publish(runtime, world, spending_order="principal_first")
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000, issuer=world.park_entity)
        recharge(tx, world, member, 5_000, issuer=world.hotel_entity)
        paid = pay(tx, world, member, 12_000)
        assert [(p.issuer_entity_id, p.principal, p.bonus) for p in paid.parts] == [
            (world.park_entity, 10_000, 0), (world.hotel_entity, 2_000, 0)]
        report = {r.entity_id: (r.principal, r.bonus) for r in queries.outstanding(tx, tenant_id=world.tenant_id).rows}
        assert report[world.park_entity] == (0, 2_000) and report[world.hotel_entity] == (3_000, 0)
        assert_invariants(tx, world)


def test_a_frozen_member_cannot_pay_but_a_refund_still_reaches_them(runtime, world, member):
    from liutong.members import service as members

    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 6_000)
        members.change_status(tx, tenant_id=world.tenant_id, member_id=member, status="frozen", reason="风控",
                              key=key(), actor="test")
    with pytest.raises(MemberNotActive), runtime.transaction() as tx:
        pay(tx, world, member, 100)
    with runtime.transaction() as tx:
        refund(tx, world, paid.payment_id, 6_000)
        assert held(tx, world, member) == (10_000, 2_000)


def test_an_offer_tells_a_quote_what_stored_value_would_pay(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        here = sv.offer(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets, amount=3_501)
        assert (here.accepted, here.principal_used, here.bonus_used) == (True, 2_918, 583)
        too_much = sv.offer(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets,
                            amount=12_001)
        assert too_much.refused_because == "beyond_balance"
        coffee = sv.offer(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.mall_coffee)
        assert (coffee.accepted, coffee.refused_because) == (False, "merchant_does_not_accept_stored_value")
        assert held(tx, world, member) == (10_000, 2_000)


# --- refunding a payment ---------------------------------------------------------------------------


def test_refunds_give_back_principal_and_bonus_in_proportion_and_add_up_exactly(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 3_501)  # 2,918 principal + 583 bonus
        steps = [refund(tx, world, paid.payment_id, n) for n in (1_000, 1_000, 1_501)]
        assert [(r.principal, r.bonus, r.left) for r in steps] == [(833, 167, 2_501), (834, 166, 1_501),
                                                                    (1_251, 250, 0)]
        assert sum(r.principal for r in steps) == paid.principal and sum(r.bonus for r in steps) == paid.bonus
        assert held(tx, world, member) == (10_000, 2_000)
        assert_invariants(tx, world)


def test_a_refund_cannot_give_back_more_than_is_left_of_the_payment(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 3_000)
        refund(tx, world, paid.payment_id, 2_000)
    with pytest.raises(RefundExceedsPayment) as refused, runtime.transaction() as tx:
        refund(tx, world, paid.payment_id, 1_001)
    assert refused.value.data == {"left": 1_000}


def test_bonus_that_lapsed_since_the_payment_is_forfeited_on_refund(runtime, world, member, clock):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 6_000)  # 5,000 principal + 1,000 bonus
    clock[0] = T0 + relativedelta(months=13)
    with runtime.transaction() as tx:
        back = refund(tx, world, paid.payment_id, 6_000)
        assert (back.principal, back.bonus, back.bonus_forfeited, back.left) == (5_000, 0, 1_000, 0)
        assert held(tx, world, member) == (10_000, 1_000)  # the unspent 1,000 has lapsed but is not posted yet
        assert sv.expire_due_bonus(tx, tenant_id=world.tenant_id, as_of=clock[0]) == 1
        assert held(tx, world, member) == (10_000, 0)
        assert_invariants(tx, world)
    with pytest.raises(RefundExceedsPayment), runtime.transaction() as tx:
        refund(tx, world, paid.payment_id, 1)


# --- cashing out ---------------------------------------------------------------------------------------


def test_cashing_out_returns_principal_and_forfeits_bonus_pro_rata(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        half = cash_out(tx, world, member, 5_000)
        assert (half.principal, half.bonus_forfeited, half.principal_after, half.bonus_after) == (5_000, 1_000, 5_000,
                                                                                                  1_000)
        rest = cash_out(tx, world, member)
        assert (rest.principal, rest.bonus_forfeited) == (5_000, 1_000)
        assert held(tx, world, member) == (0, 0)
        report = queries.outstanding(tx, tenant_id=world.tenant_id)
        assert (report.principal, report.bonus) == (0, 0)
        assert_invariants(tx, world)


def test_each_issuer_returns_its_share_of_a_cash_out(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000, issuer=world.park_entity)
        recharge(tx, world, member, 30_000, issuer=world.hotel_entity)
        done = cash_out(tx, world, member, 20_000)
        assert [(p.issuer_entity_id, p.principal, p.bonus_forfeited) for p in done.parts] == [
            (world.park_entity, 5_000, 1_000), (world.hotel_entity, 15_000, 1_000)]
        assert_invariants(tx, world)


def test_the_forfeit_is_rounded_as_the_published_terms_say(runtime, world, member):
    publish(runtime, world, bonus_tiers=[{"min_amount": 30_000, "bonus": 1_000}],
            balance_refund={"forfeit_rounding": "ceiling"})
    with runtime.transaction() as tx:
        recharge(tx, world, member, 30_000)
        assert cash_out(tx, world, member, 10_000).bonus_forfeited == 334  # 333.33… rounded up


def test_a_cash_out_is_refused_when_there_is_nothing_or_too_little_or_the_terms_forbid_it(runtime, world, member):
    with pytest.raises(NothingToCashOut), runtime.transaction() as tx:
        cash_out(tx, world, member)
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
    with pytest.raises(InsufficientBalance), runtime.transaction() as tx:
        cash_out(tx, world, member, 10_001)
    publish(runtime, world, balance_refund={"allowed": False})
    with pytest.raises(CashOutNotAllowed), runtime.transaction() as tx:
        cash_out(tx, world, member)


# --- lapses, reports, statements ------------------------------------------------------------------------


def test_bonus_lapses_after_its_validity_and_is_posted_once(runtime, world, member, clock):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        assert sv.expire_due_bonus(tx, tenant_id=world.tenant_id, as_of=T0 + relativedelta(months=11)) == 0
        due = clock[0] = T0 + relativedelta(months=12)
        assert sv.expire_due_bonus(tx, tenant_id=world.tenant_id, as_of=due) == 1
        assert sv.expire_due_bonus(tx, tenant_id=world.tenant_id, as_of=due) == 0
        assert held(tx, world, member) == (10_000, 0)
        report = queries.outstanding(tx, tenant_id=world.tenant_id)
        assert (report.principal, report.bonus) == (10_000, 0)
        assert_invariants(tx, world)


def test_bonus_without_a_validity_never_lapses(runtime, world, member):
    publish(runtime, world, bonus_valid_months=None)
    with runtime.transaction() as tx:
        assert recharge(tx, world, member, 10_000).bonus_expires_at is None
        assert sv.expire_due_bonus(tx, tenant_id=world.tenant_id, as_of=T0 + relativedelta(years=20)) == 0


def test_the_outstanding_report_shows_principal_per_issuing_entity_at_a_date(runtime, world, member, clock):
    publish(runtime, world, spending_order="principal_first")
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000, issuer=world.park_entity)
    clock[0] = T0 + timedelta(days=1)
    with runtime.transaction() as tx:
        recharge(tx, world, member, 20_000, issuer=world.hotel_entity)
        pay(tx, world, member, 3_000)
        now = {r.entity_code: (r.principal, r.bonus) for r in queries.outstanding(tx, tenant_id=world.tenant_id).rows}
        assert now == {"park": (7_000, 2_000), "hotel": (20_000, 2_000), "mall": (0, 0)}
        then = queries.outstanding(tx, tenant_id=world.tenant_id, as_of=T0 + timedelta(hours=1))
        assert {r.entity_code: r.principal for r in then.rows} == {"park": 10_000, "hotel": 0, "mall": 0}
        assert (then.principal, then.bonus) == (10_000, 2_000)


def test_the_statement_lists_every_movement_with_running_balances(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 3_501)
        refund(tx, world, paid.payment_id, 1_000)
        cash_out(tx, world, member, 1_000)
    publish(runtime, world, spending_order="bonus_first")
    with runtime.transaction() as tx:
        pay(tx, world, member, 500)  # bonus only: the principal balance carries over
        first = queries.statement(tx, tenant_id=world.tenant_id, member_id=member, cursor=None, limit=3)
        second = queries.statement(tx, tenant_id=world.tenant_id, member_id=member, cursor=first.next_cursor, limit=3)
    lines = [(i.kind, i.principal, i.bonus, i.principal_after, i.bonus_after) for i in first.items + second.items]
    assert lines == [
        ("sv_pay", 0, -500, 6_915, 884),
        ("sv_cash_out", -1_000, -200, 6_915, 1_384),
        ("sv_refund", 833, 167, 7_915, 1_584),
        ("sv_pay", -2_918, -583, 7_082, 1_417),
        ("sv_recharge", 10_000, 2_000, 10_000, 2_000),
    ]
    assert second.next_cursor is None
    assert first.items[0].merchant_id == world.park_tickets and second.items[-1].channel == "wechat"


# --- the ledger's fences -------------------------------------------------------------------------


def test_stored_value_accounts_move_only_through_the_stored_value_service(runtime, world, member):
    with runtime.transaction() as tx:
        done = recharge(tx, world, member, 10_000)
        principal = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.member, owner_id=member,
                                      kind=AccountKind.sv_principal)
        clearing = ledger.account_id(tx, tenant_id=world.tenant_id, owner_type=OwnerType.system, owner_id=0,
                                     kind=AccountKind.payment_clearing)
    with pytest.raises(StoredValueAccount), runtime.transaction() as tx:
        ledger.post_entry(tx, tenant_id=world.tenant_id, key=key(), kind="adjust",
                          legs=[LegIn(account_id=principal, amount=500), LegIn(account_id=clearing, amount=-500)])
    with pytest.raises(NotReversible), runtime.transaction() as tx:
        ledger.reverse_entry(tx, tenant_id=world.tenant_id, entry_id=done.entry_id, key=key())


def test_merging_members_moves_stored_value_with_its_lots(runtime, world, member):
    from liutong.members import service as members

    with runtime.transaction() as tx:
        other = register(tx, world, "13500135001").id
        recharge(tx, world, member, 10_000)
        paid = pay(tx, world, member, 3_000)  # 2,500 principal + 500 bonus
        recharge(tx, world, other, 5_000)
        members.merge(tx, tenant_id=world.tenant_id, source_id=member, target_id=other, reason="同一人",
                      key=key(), actor="test")
        assert held(tx, world, other) == (12_500, 1_500)
        assert held(tx, world, member) == (0, 0)
        assert_invariants(tx, world)
        refund(tx, world, paid.payment_id, 3_000)  # a refund of the merged member's sale reaches the survivor
        assert held(tx, world, other) == (15_000, 2_000)
        assert_invariants(tx, world)


def test_verify_catches_a_tampered_stored_value_lot(runtime, world, member):
    with runtime.transaction() as tx:
        recharge(tx, world, member, 10_000)
        tx.session.execute(update(StoredValueLot).where(StoredValueLot.member_id == member,
                                                        StoredValueLot.tenant_id == world.tenant_id)
                           .values(principal_remaining=StoredValueLot.principal_remaining - 1))
        broken = {c.name for c in verify(tx.session, world.tenant_id) if not c.ok}
        assert {"sv_lots_match_sv_principal", "sv_issuer_sv_issued", "sv_lot_movements"} <= broken
