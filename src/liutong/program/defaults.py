"""The program that ships: what operators of this kind actually run (see the product design)."""

from __future__ import annotations

from decimal import Decimal

from liutong.program.rules import (
    BaseRate,
    BehaviourRule,
    Benefit,
    Campaign,
    EarnRules,
    Exclusion,
    ExpiryPolicy,
    Frequency,
    ProgramDocument,
    Qualification,
    RechargeBonusTier,
    RedeemRules,
    Scope,
    Stacking,
    StoredValueLimits,
    StoredValueRules,
    StreakBonus,
    Tier,
    VestingRule,
    Window,
)


def default_program() -> ProgramDocument:
    return ProgramDocument(
        earn=EarnRules(
            rounding="floor",
            base_rates=[
                BaseRate(code="base", name="基础积分", points_per_yuan=Decimal(1)),
                BaseRate(code="hotel", name="酒店积分", scope=Scope(formats=["hotel"]), points_per_yuan=Decimal(2)),
            ],
            exclusions=[
                Exclusion(code="parking-fees", name="停车费不积分", scope=Scope(formats=["parking"])),
            ],
            campaigns=[
                Campaign(code="weekend-x2", name="周末双倍", window=Window(weekdays=[6, 7]), effect="multiplier",
                         multiplier=Decimal(2)),
                Campaign(code="member-day-x5", name="会员日5倍", window=Window(days_of_month=[18]),
                         effect="multiplier", multiplier=Decimal(5)),
            ],
            stacking=Stacking(policy="highest"),
            growth_per_yuan=Decimal(1),
            behaviours=[
                BehaviourRule(code="sign-in", name="每日签到", event="sign_in", points=5, growth=1,
                              limit=Frequency(times=1, per="day"),
                              streaks=[StreakBonus(days=7, points=20)]),
                BehaviourRule(code="referral", name="推荐好友", event="referral", points=50, referee_points=50,
                              limit=Frequency(times=20, per="year")),
                BehaviourRule(code="review", name="发表评价", event="review", points=10, growth=5,
                              limit=Frequency(times=3, per="day")),
                BehaviourRule(code="share", name="分享", event="share", points=5, limit=Frequency(times=3, per="day")),
                BehaviourRule(code="birthday", name="生日礼遇积分", event="birthday", points=200,
                              limit=Frequency(times=1, per="year")),
                BehaviourRule(code="profile", name="完善资料", event="task", task="profile", points=50, growth=50,
                              limit=Frequency(times=1, per="lifetime")),
            ],
        ),
        redeem=RedeemRules(points_per_yuan=10, max_share_of_bill=Decimal("0.5"), min_points=100),
        expiry=ExpiryPolicy(mode="months_after_earning", months=12, remind_days_before=[30, 7]),
        vesting={
            "hotel": VestingRule(mode="at_checkout", days=30),
            "theme_park": VestingRule(mode="after_visit"),
            "scenic_area": VestingRule(mode="after_visit"),
            "mall": VestingRule(mode="days_after", days=7),
        },
        tiers=[
            Tier(code="normal", name="普通会员", rank=0),
            Tier(code="silver", name="银卡", rank=1, earn_multiplier=Decimal("1.2"),
                 qualify=Qualification(combine="any", window_days=365, growth=2_000, spend_fen=500_000)),
            Tier(code="gold", name="金卡", rank=2, earn_multiplier=Decimal("1.5"),
                 qualify=Qualification(combine="any", window_days=365, growth=8_000, spend_fen=2_000_000)),
            Tier(code="diamond", name="钻石卡", rank=3, earn_multiplier=Decimal(2),
                 qualify=Qualification(combine="any", window_days=365, growth=20_000, spend_fen=5_000_000)),
        ],
        benefits=[
            Benefit(code="silver-dining-95", name="银卡餐饮9.5折", kind="discount", tiers=["silver"],
                    scope=Scope(formats=["dining"]), rate=Decimal("0.95"), period="lifetime"),
            Benefit(code="gold-retail-85", name="金卡零售8.5折", kind="discount", tiers=["gold", "diamond"],
                    scope=Scope(formats=["mall"]), rate=Decimal("0.85"), period="lifetime"),
            Benefit(code="gold-parking", name="金卡每月免费停车", kind="free_parking_minutes", tiers=["gold"],
                    quota=120, period="month"),
            Benefit(code="diamond-parking", name="钻石卡每月免费停车", kind="free_parking_minutes",
                    tiers=["diamond"], quota=240, period="month"),
            Benefit(code="diamond-fast-lane", name="钻石卡快速通道", kind="fast_lane", tiers=["diamond"], quota=4,
                    period="month"),
            Benefit(code="growth-5000-priority", name="优先预订", kind="priority_booking", min_growth=5_000,
                    period="lifetime"),
            Benefit(code="growth-10000-upgrade", name="免费升级房型", kind="room_upgrade", min_growth=10_000, quota=1,
                    period="year"),
            Benefit(code="growth-15000-birthday", name="生日免费入园", kind="birthday_gift", min_growth=15_000,
                    quota=1, period="year", scope=Scope(formats=["theme_park", "scenic_area"])),
            Benefit(code="growth-20000-discount", name="成长值专享9折", kind="discount", min_growth=20_000,
                    rate=Decimal("0.9"), period="lifetime"),
        ],
        # 充100送20, bonus spendable for 12 months; a named card holds at most ¥5,000 of principal.
        stored_value=StoredValueRules(
            bonus_tiers=[RechargeBonusTier(min_amount=10_000, bonus=2_000)],
            bonus_valid_months=12,
            limits=StoredValueLimits(max_principal=500_000, min_recharge=100, max_recharge=500_000),
            spending_order="pro_rata",
        ),
    )
