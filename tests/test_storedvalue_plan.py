"""The arithmetic of stored value, without a database: splits that add up to the fen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liutong.program.rules import RechargeBonusTier, StoredValueRules
from liutong.storedvalue.plan import Holding, Part, cash_out, forfeited_bonus, split_payment, split_refund

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _lot(lot_id, principal, bonus, issuer=1, lapses_in_days=None):
    return Holding(lot_id, issuer, principal, bonus,
                   None if lapses_in_days is None else T0 + timedelta(days=lapses_in_days))


def test_recharging_100_gives_20_and_300_still_gives_20_under_a_single_tier():
    rules = StoredValueRules(bonus_tiers=[RechargeBonusTier(min_amount=10_000, bonus=2_000)])
    assert rules.bonus_for(10_000)[0] == 2_000
    assert rules.bonus_for(30_000)[0] == 2_000
    assert rules.bonus_for(9_999) == (0, None)


def test_the_best_tier_a_recharge_reaches_applies():
    rules = StoredValueRules(bonus_tiers=[
        RechargeBonusTier(min_amount=10_000, bonus=2_000),
        RechargeBonusTier(min_amount=50_000, bonus=15_000),
        RechargeBonusTier(min_amount=20_000, rate=Decimal("0.12"), max_bonus=10_000),
    ])
    assert rules.bonus_for(19_999)[0] == 2_000
    assert rules.bonus_for(30_000)[0] == 3_600  # 12% beats the fixed 20
    assert rules.bonus_for(90_000)[0] == 15_000  # the 12% tier is capped at 100 yuan


def test_a_rate_bonus_rounds_as_the_program_states():
    tier = RechargeBonusTier(min_amount=100, rate=Decimal("0.125"))
    assert StoredValueRules(bonus_tiers=[tier], bonus_rounding="floor").bonus_for(1_004)[0] == 125  # 125.5
    assert StoredValueRules(bonus_tiers=[tier], bonus_rounding="half_up").bonus_for(1_004)[0] == 126


def test_a_tier_gives_a_fixed_bonus_or_a_rate_not_both():
    with pytest.raises(ValueError):
        RechargeBonusTier(min_amount=100, bonus=20, rate=Decimal("0.2"))
    with pytest.raises(ValueError):
        RechargeBonusTier(min_amount=100, bonus=20, max_bonus=30)


def test_bonus_first_uses_the_bonus_that_lapses_soonest():
    holdings = [_lot(1, 10_000, 2_000, lapses_in_days=300), _lot(2, 10_000, 1_000, lapses_in_days=30)]
    parts = split_payment(2_500, order="bonus_first", holdings=holdings)
    assert parts == [Part(1, 1, 0, 1_500), Part(2, 1, 0, 1_000)]


def test_principal_first_uses_the_oldest_principal():
    holdings = [_lot(1, 1_000, 2_000), _lot(2, 10_000, 0)]
    parts = split_payment(1_500, order="principal_first", holdings=holdings)
    assert parts == [Part(1, 1, 1_000, 0), Part(2, 1, 500, 0)]


def test_pro_rata_splits_by_largest_remainder_to_the_fen():
    parts = split_payment(3_501, order="pro_rata", holdings=[_lot(1, 10_000, 2_000)])
    assert parts == [Part(1, 1, 2_918, 583)]  # 2917.5 / 583.5: the tie goes to principal, listed first


def test_a_payment_beyond_what_is_held_is_not_planned():
    assert split_payment(12_001, order="pro_rata", holdings=[_lot(1, 10_000, 2_000)]) is None


def test_cashing_out_half_the_principal_forfeits_half_the_bonus():
    assert cash_out(5_000, holdings=[_lot(1, 10_000, 2_000)], rounding="half_up")[0].bonus_forfeited == 1_000


@pytest.mark.parametrize(("rounding", "expected"), [("half_up", 333), ("floor", 333), ("ceiling", 334)])
def test_forfeited_bonus_is_rounded_as_the_terms_state(rounding, expected):
    assert forfeited_bonus(bonus=1_000, principal_returned=10_000, principal_held=30_000, rounding=rounding) == expected


def test_returning_all_principal_forfeits_all_bonus():
    assert forfeited_bonus(bonus=1_999, principal_returned=7, principal_held=7, rounding="floor") == 1_999


holdings_st = st.lists(
    st.tuples(st.integers(0, 50_000), st.integers(0, 10_000), st.integers(1, 3),
              st.one_of(st.none(), st.integers(1, 400))),
    min_size=1, max_size=5,
).map(lambda rows: [_lot(i + 1, p, b, issuer, days) for i, (p, b, issuer, days) in enumerate(rows)])
orders = st.sampled_from(["bonus_first", "principal_first", "pro_rata"])


@given(holdings=holdings_st, order=orders, data=st.data())
def test_a_payment_takes_exactly_its_amount_and_never_more_than_a_lot_holds(holdings, order, data):
    held = sum(h.principal + h.bonus for h in holdings)
    amount = data.draw(st.integers(1, max(held, 1) + 100))
    parts = split_payment(amount, order=order, holdings=holdings)
    if amount > held:
        assert parts is None
        return
    by_lot = {h.lot_id: h for h in holdings}
    assert sum(p.principal + p.bonus for p in parts) == amount
    for p in parts:
        assert 0 <= p.principal <= by_lot[p.lot_id].principal
        assert 0 <= p.bonus <= by_lot[p.lot_id].bonus
        assert p.issuer_entity_id == by_lot[p.lot_id].issuer_entity_id
    principal = sum(p.principal for p in parts)
    all_principal = sum(h.principal for h in holdings)
    all_bonus = sum(h.bonus for h in holdings)
    if order == "principal_first":
        assert principal == min(amount, all_principal)
    elif order == "bonus_first":
        assert amount - principal == min(amount, all_bonus)
    else:  # within one fen of the exact ratio
        assert abs(principal * (all_principal + all_bonus) - amount * all_principal) < all_principal + all_bonus


@given(holdings=holdings_st, order=orders, data=st.data())
def test_partial_refunds_in_any_sequence_add_back_exactly_what_a_payment_took(holdings, order, data):
    held = sum(h.principal + h.bonus for h in holdings)
    if not held:
        return
    amount = data.draw(st.integers(1, held))
    paid = split_payment(amount, order=order, holdings=holdings)
    out = {p.lot_id: [p.principal, p.bonus] for p in paid}
    issuers = {p.lot_id: p.issuer_entity_id for p in paid}
    left = amount
    while left:
        refund = data.draw(st.integers(1, left))
        parts = split_refund(refund, still_out=[Part(lot, issuers[lot], p, b) for lot, (p, b) in sorted(out.items())])
        assert sum(p.principal + p.bonus for p in parts) == refund
        for p in parts:
            out[p.lot_id][0] -= p.principal
            out[p.lot_id][1] -= p.bonus
            assert out[p.lot_id][0] >= 0 and out[p.lot_id][1] >= 0
        left -= refund
    assert all(p == 0 and b == 0 for p, b in out.values())


@given(holdings=holdings_st, rounding=st.sampled_from(["half_up", "floor", "ceiling"]), data=st.data())
def test_a_cash_out_returns_exactly_the_principal_asked_and_forfeits_bonus_in_proportion(holdings, rounding, data):
    held_principal = sum(h.principal for h in holdings)
    held_bonus = sum(h.bonus for h in holdings)
    if not held_principal:
        return
    asked = data.draw(st.integers(1, held_principal))
    parts = cash_out(asked, holdings=holdings, rounding=rounding)
    by_lot = {h.lot_id: h for h in holdings}
    assert sum(p.principal for p in parts) == asked
    forfeit = sum(p.bonus_forfeited for p in parts)
    assert abs(forfeit * held_principal - held_bonus * asked) <= held_principal  # within one fen
    for p in parts:
        assert 0 <= p.principal <= by_lot[p.lot_id].principal
        assert 0 <= p.bonus_forfeited <= by_lot[p.lot_id].bonus
    if asked == held_principal:
        assert forfeit == held_bonus
    assert cash_out(held_principal + 1, holdings=holdings, rounding=rounding) is None
