"""How a basket is priced for a member at the till — pure rules, no database."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from liutong.checkout.pricing import BasketLine, MemberView, Place, price
from liutong.program.defaults import default_program

SH = ZoneInfo("Asia/Shanghai")
TUESDAY = datetime(2026, 11, 24, 12, 0, tzinfo=SH)
MALL = Place(merchant="mall-sports", venue="mall", format="mall")
DINING = Place(merchant="hotel-dining", venue="hotel", format="dining")


def member(tier="normal", growth=0, points=0):
    return MemberView(tier_code=tier, growth=growth, points_spendable=points)


def test_a_gold_member_gets_85_percent_on_retail_and_earns_on_what_she_pays():
    priced = price(default_program(), place=MALL, member=member("gold"), points_requested=0, at_local=TUESDAY,
                   lines=[BasketLine("SHOE-1", "retail", 1, 30_000)])
    assert (priced.gross, priced.discount, priced.payable) == (30_000, 4_500, 25_500)
    assert priced.benefits_applied == ("gold-retail-85",)
    assert priced.earn.explanation == "基础积分 255 + 金卡1.5倍 127"


def test_a_silver_member_gets_95_percent_on_dining_but_nothing_on_retail():
    program = default_program()
    dining = price(program, place=DINING, member=member("silver"), points_requested=0, at_local=TUESDAY,
                   lines=[BasketLine("BUFFET", "food", 2, 18_800)])
    assert (dining.gross, dining.discount) == (37_600, 1_880)
    retail = price(program, place=MALL, member=member("silver"), points_requested=0, at_local=TUESDAY,
                   lines=[BasketLine("SHOE-1", "retail", 1, 30_000)])
    assert retail.discount == 0


def test_the_best_of_several_discounts_applies():
    # gold 8.5折 on retail beats the 9折 that 20,000 growth brings
    priced = price(default_program(), place=MALL, member=member("gold", growth=25_000), points_requested=0,
                   at_local=TUESDAY, lines=[BasketLine("BAG", "retail", 1, 10_000)])
    assert priced.discount == 1_500 and priced.benefits_applied == ("gold-retail-85",)


def test_points_pay_at_most_half_the_bill_and_at_least_the_minimum():
    program = default_program()
    basket = [BasketLine("T", "ticket", 1, 20_000)]
    park = Place(merchant="park-tickets", venue="park", format="theme_park")
    offer = price(program, place=park, member=member(points=50_000), points_requested=0, at_local=TUESDAY,
                  lines=basket).points
    assert offer.max_usable == 1_000  # ¥100 = half of ¥200, at 100 points per ¥10
    used = price(program, place=park, member=member(points=50_000), points_requested=800, at_local=TUESDAY,
                 lines=basket)
    assert (used.points.applied, used.points.value, used.payable) == (800, 8_000, 12_000)
    assert used.earn.points == 120  # earned on the ¥120 paid with money
    too_many = price(program, place=park, member=member(points=50_000), points_requested=1_200, at_local=TUESDAY,
                     lines=basket).points
    assert (too_many.applied, too_many.refused_because) == (0, "beyond_bill_cap")
    too_few = price(program, place=park, member=member(points=50_000), points_requested=50, at_local=TUESDAY,
                    lines=basket).points
    assert too_few.refused_because == "below_minimum"
    poor = price(program, place=park, member=member(points=300), points_requested=500, at_local=TUESDAY,
                 lines=basket).points
    assert poor.refused_because == "beyond_balance"


def test_a_guest_without_membership_pays_full_price_and_earns_nothing():
    priced = price(default_program(), place=MALL, member=None, points_requested=0, at_local=TUESDAY,
                   lines=[BasketLine("SHOE-1", "retail", 1, 30_000)])
    assert (priced.payable, priced.earn.points) == (30_000, 0)


@given(prices=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 500_000)), min_size=1, max_size=6),
       points=st.integers(0, 100_000), tier=st.sampled_from(["normal", "silver", "gold", "diamond"]))
def test_every_fen_of_a_basket_is_accounted_for(prices, points, tier):
    program = default_program()
    lines = [BasketLine(f"S{i}", "retail", qty, unit) for i, (qty, unit) in enumerate(prices)]
    priced = price(program, place=MALL, member=member(tier, points=10**6), points_requested=points,
                   at_local=TUESDAY, lines=lines)
    assert priced.gross == priced.discount + priced.points.value + priced.payable
    assert all(p.gross == p.discount + p.points_value + p.paid and p.paid >= 0 for p in priced.lines)
    assert priced.points.value <= (priced.gross - priced.discount) // 2
