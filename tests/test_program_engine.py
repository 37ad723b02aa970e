"""What purchases earn under the program — pure rules, no database."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from liutong.program.defaults import default_program
from liutong.program.engine import Line, quote_earn
from liutong.program.rules import Campaign, Exclusion, ProgramDocument, Scope, Stacking, Window

SH = ZoneInfo("Asia/Shanghai")
SATURDAY = datetime(2026, 11, 21, 14, 0, tzinfo=SH)
TUESDAY = datetime(2026, 11, 24, 14, 0, tzinfo=SH)
WEDNESDAY_18TH = datetime(2026, 11, 18, 14, 0, tzinfo=SH)
SATURDAY_18TH = datetime(2026, 7, 18, 14, 0, tzinfo=SH)


def line(amount, *, fmt="theme_park", category="ticket", merchant="park-tickets", venue="park", sku="T1"):
    return Line(sku=sku, category=category, amount=amount, merchant=merchant, venue=venue, format=fmt)


def with_changes(**earn_changes) -> ProgramDocument:
    program = default_program()
    return program.model_copy(update={"earn": program.earn.model_copy(update=earn_changes)})


def test_a_gold_member_earns_base_weekend_double_and_tier_bonus_on_a_saturday():
    quote = quote_earn(default_program(), lines=[line(12_000)], tier_code="gold", at_local=SATURDAY)
    assert quote.explanation == "基础积分 120 + 周末双倍 120 + 金卡1.5倍 60"
    assert quote.points == 300
    assert quote.growth == 120


def test_on_a_weekday_only_base_points_are_earned():
    quote = quote_earn(default_program(), lines=[line(12_000)], tier_code="normal", at_local=TUESDAY)
    assert (quote.points, quote.explanation) == (120, "基础积分 120")


def test_saturday_is_read_in_the_tenants_time_zone_not_utc():
    friday_evening_utc = datetime(2026, 11, 20, 17, 30, tzinfo=ZoneInfo("UTC"))  # 01:30 Saturday in Shanghai
    quote = quote_earn(default_program(), lines=[line(10_000)], tier_code="normal",
                       at_local=friday_evening_utc.astimezone(SH))
    assert quote.points == 200


def test_the_hotel_earns_at_its_own_more_specific_rate():
    quote = quote_earn(default_program(), lines=[line(50_000, fmt="hotel", category="room", merchant="hotel-front",
                                                      venue="hotel")], tier_code=None, at_local=TUESDAY)
    assert quote.explanation == "酒店积分 1000"


def test_weekend_double_and_member_day_take_the_highest_by_default():
    quote = quote_earn(default_program(), lines=[line(10_000)], tier_code="normal", at_local=SATURDAY_18TH)
    assert quote.explanation == "基础积分 100 + 会员日5倍 400"


def test_weekend_double_and_member_day_add_up_when_stacking_is_additive():
    program = with_changes(stacking=Stacking(policy="additive"))
    quote = quote_earn(program, lines=[line(10_000)], tier_code="normal", at_local=SATURDAY_18TH)
    assert quote.explanation == "基础积分 100 + 周末双倍 100 + 会员日5倍 400"


def test_additive_stacking_stops_at_the_cap():
    program = with_changes(stacking=Stacking(policy="additive", cap_multiplier=Decimal(4)))
    quote = quote_earn(program, lines=[line(10_000)], tier_code="normal", at_local=SATURDAY_18TH)
    assert quote.explanation == "基础积分 100 + 周末双倍 100 + 会员日5倍 200"
    assert quote.points == 400


def test_member_day_alone_on_a_weekday():
    quote = quote_earn(default_program(), lines=[line(10_000)], tier_code="normal", at_local=WEDNESDAY_18TH)
    assert quote.points == 500


def test_excluded_spend_earns_neither_points_nor_growth():
    program = with_changes(exclusions=[Exclusion(code="tobacco", name="烟草不积分", scope=Scope(categories=["tobacco"]))])
    quote = quote_earn(program, lines=[line(10_000), line(5_000, category="tobacco", fmt="mall", venue="mall",
                                                          merchant="shop")],
                       tier_code="normal", at_local=TUESDAY)
    assert (quote.points, quote.growth) == (100, 100)
    assert quote.excluded == ((1, "tobacco"),)


def test_rounding_is_stated_floor_by_default_or_half_up():
    assert quote_earn(default_program(), lines=[line(1_250)], tier_code=None, at_local=TUESDAY).points == 12
    half_up = with_changes(rounding="half_up")
    assert quote_earn(half_up, lines=[line(1_250)], tier_code=None, at_local=TUESDAY).points == 13


def test_a_bonus_campaign_needs_its_minimum_spend_and_respects_its_budget():
    bonus = Campaign(code="mall-300", name="满300送50积分", window=Window(), scope=Scope(formats=["mall"]),
                     effect="bonus", bonus_points=50, min_spend=30_000)
    program = with_changes(campaigns=[bonus])
    mall = dict(fmt="mall", venue="mall", merchant="shop", category="retail")
    assert quote_earn(program, lines=[line(29_999, **mall)], tier_code=None, at_local=TUESDAY).points == 299
    assert quote_earn(program, lines=[line(30_000, **mall)], tier_code=None, at_local=TUESDAY).points == 350
    capped = quote_earn(program, lines=[line(30_000, **mall)], tier_code=None, at_local=TUESDAY,
                        budgets_left={"mall-300": 20})
    assert capped.explanation == "基础积分 300 + 满300送50积分 20"


def test_a_campaign_for_gold_members_does_not_reach_others():
    gold_only = Campaign(code="gold-x3", name="金卡三倍周", window=Window(), tiers=["gold"], effect="multiplier",
                         multiplier=Decimal(3))
    program = with_changes(campaigns=[gold_only])
    assert quote_earn(program, lines=[line(1_000)], tier_code="silver", at_local=TUESDAY).explanation == \
        "基础积分 10 + 银卡1.2倍 2"
    assert quote_earn(program, lines=[line(1_000)], tier_code="gold", at_local=TUESDAY).explanation == \
        "基础积分 10 + 金卡三倍周 20 + 金卡1.5倍 5"


amounts = st.lists(st.integers(min_value=0, max_value=2_000_000), min_size=1, max_size=8)


@given(amounts=amounts, tier=st.sampled_from(["normal", "silver", "gold", "diamond"]),
       day=st.integers(min_value=1, max_value=28), policy=st.sampled_from(["highest", "additive"]))
def test_the_parts_of_every_quote_add_up_to_its_total(amounts, tier, day, policy):
    program = with_changes(stacking=Stacking(policy=policy))
    at = datetime(2026, 2, day, 12, 0, tzinfo=SH)
    lines = [line(a, fmt="hotel" if i % 3 == 0 else "theme_park") for i, a in enumerate(amounts)]
    quote = quote_earn(program, lines=lines, tier_code=tier, at_local=at)
    assert quote.points == sum(p.points for p in quote.parts)
    assert all(p.points >= 0 for p in quote.parts)
    base = sum(p.points for p in quote.parts if p.rule in ("base", "hotel"))
    assert base <= quote.points


@pytest.mark.parametrize("change,message", [
    (lambda d: d["earn"]["campaigns"].append(dict(d["earn"]["campaigns"][0])), "duplicate campaign"),
    (lambda d: d["tiers"][1].update(rank=0), "tier ranks"),
    (lambda d: d["benefits"][0].update(tiers=["platinum"]), "unknown tier"),
    (lambda d: d["earn"]["campaigns"][0].update(effect="bonus"), "bonus_points"),
    (lambda d: d["benefits"][0].update(rate="1.2"), "discount rate"),
    (lambda d: d["earn"].update(base_rates=[]), "at least 1"),
])
def test_a_broken_program_is_refused_with_a_reason(change, message):
    document = default_program().model_dump(mode="json")
    change(document)
    with pytest.raises(ValidationError, match=message):
        ProgramDocument.model_validate(document)
