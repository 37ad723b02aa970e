from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liutong.kit.money import allocate, refund_parts, round_half_up, yuan

weights = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(lambda w: sum(w) > 0)


@given(total=st.integers(min_value=-10**9, max_value=10**9), weights=weights)
def test_an_allocation_adds_up_exactly_and_each_part_is_within_a_fen_of_its_share(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        assert abs(Fraction(part) - Fraction(total * w, whole)) < 1


@given(total=st.integers(min_value=0, max_value=10**9), weights=weights)
def test_an_allocation_is_deterministic(total, weights):
    assert allocate(total, weights) == allocate(total, list(weights))


def test_leftover_fen_go_to_the_largest_remainders_then_to_the_earlier_part():
    # ¥1.00 split three ways: 33.33… each; the single leftover fen goes to the first part.
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    # 10 fen by 0.45 / 0.55: exact 4.5 and 5.5 — tie on remainders, the earlier wins.
    assert allocate(10, [Decimal("0.45"), Decimal("0.55")]) == [5, 5]
    assert allocate(7, [0, 5, 2]) == [0, 5, 2]


def test_a_zero_weight_gets_nothing_and_bad_weights_are_refused():
    assert allocate(99, [0, 1]) == [0, 99]
    with pytest.raises(ValueError):
        allocate(10, [0, 0])
    with pytest.raises(ValueError):
        allocate(10, [1, -1])


@given(
    original=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=6).filter(lambda o: sum(o) > 0),
    data=st.data(),
)
def test_partial_refunds_in_any_split_add_back_to_the_original_parts(original, data):
    total = sum(original)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=total), max_size=5)))
    refunded, returned = 0, [0] * len(original)
    for point in [*cuts, total]:
        step = point - refunded
        remaining = [o - r for o, r in zip(original, returned, strict=True)]
        parts = refund_parts(remaining=remaining, refund=step)
        assert sum(parts) == step
        assert all(0 <= p <= r for p, r in zip(parts, remaining, strict=True))
        returned = [a + b for a, b in zip(returned, parts, strict=True)]
        refunded = point
    assert returned == original


def test_differences_of_cumulative_allocations_can_go_negative_which_is_why_refunds_split_the_remainder():
    original = [45, 3193, 3227]
    naive = [a - b for a, b in zip(allocate(70, original), allocate(69, original), strict=True)]
    assert min(naive) < 0  # largest remainder is not monotone in the total
    remaining = [o - b for o, b in zip(original, allocate(69, original), strict=True)]
    assert min(refund_parts(remaining=remaining, refund=1)) == 0


def test_a_refund_larger_than_what_remains_is_refused():
    with pytest.raises(ValueError):
        refund_parts(remaining=[1, 2], refund=4)


def test_rounding_is_half_up_and_amounts_print_as_yuan():
    assert round_half_up(Decimal("2.5")) == 3
    assert round_half_up(Decimal("-2.5")) == -3
    assert yuan(123450) == "¥1,234.50"
    assert yuan(-5) == "-¥0.05"
