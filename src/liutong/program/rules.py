"""The program's rules as data: a validated vocabulary that the console can build, the engine
can apply and explain, and every change of which is kept as a new version.

Amounts are fen, points are integers, rates are decimals. Dates and weekdays are read in the
tenant's time zone (a weekend in Sanya is a weekend in Asia/Shanghai, not in UTC).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liutong.organisation.models import VenueFormat

Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Rate = Annotated[Decimal, Field(ge=0, le=1000, max_digits=10, decimal_places=4)]
Multiplier = Annotated[Decimal, Field(ge=1, le=100, max_digits=8, decimal_places=4)]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(Rule):
    """Where a rule applies. Empty lists mean "everywhere"; several lists must all match."""

    formats: list[VenueFormat] = Field(default_factory=list)
    venues: list[Code] = Field(default_factory=list)
    merchants: list[Code] = Field(default_factory=list)
    categories: list[Code] = Field(default_factory=list)
    skus: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)

    def matches(self, *, format: str, venue: str, merchant: str, category: str, sku: str) -> bool:  # noqa: A002
        return (
            (not self.formats or format in self.formats)
            and (not self.venues or venue in self.venues)
            and (not self.merchants or merchant in self.merchants)
            and (not self.categories or category in self.categories)
            and (not self.skus or sku in self.skus)
        )

    @property
    def specificity(self) -> tuple[int, int, int, int, int]:
        """The most specific base rate wins: sku, then merchant, category, venue, format."""
        return (bool(self.skus), bool(self.merchants), bool(self.categories), bool(self.venues), bool(self.formats))


class BaseRate(Rule):
    """基础积分: points per yuan spent where the scope matches (消费1元得1积分; 酒店每元2积分)."""

    code: Code
    name: Name
    scope: Scope = Scope()
    points_per_yuan: Rate


class Exclusion(Rule):
    """Spend that earns nothing (tobacco, gift cards, parking fees…)."""

    code: Code
    name: Name
    scope: Scope


class Window(Rule):
    """When a campaign runs, in the tenant's local time. Every given part must match."""

    starts_on: date | None = None
    ends_on: date | None = None
    #: ISO weekdays, 1 = Monday … 7 = Sunday; e.g. [6, 7] for weekends.
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(default_factory=list)
    #: Days of the month, e.g. [18] for a member day on the 18th.
    days_of_month: list[Annotated[int, Field(ge=1, le=31)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self

    def contains(self, local: datetime) -> bool:
        day = local.date()
        return (
            (self.starts_on is None or day >= self.starts_on)
            and (self.ends_on is None or day <= self.ends_on)
            and (not self.weekdays or local.isoweekday() in self.weekdays)
            and (not self.days_of_month or day.day in self.days_of_month)
        )


class Campaign(Rule):
    """A time-boxed boost: a multiplier of base points (周末双倍, 会员日5倍) or a fixed bonus."""

    code: Code
    name: Name
    window: Window
    scope: Scope = Scope()
    #: Only members of these tiers; empty = every tier.
    tiers: list[Code] = Field(default_factory=list)
    #: Only members on one of these lists (名单: invited guests, a segment's export); empty = all.
    member_lists: list[Code] = Field(default_factory=list)
    effect: Literal["multiplier", "bonus"]
    multiplier: Multiplier | None = None
    bonus_points: Annotated[int, Field(gt=0, le=1_000_000)] | None = None
    #: Smallest eligible spend (fen) for a bonus to be given.
    min_spend: Annotated[int, Field(ge=0)] = 0
    budget_per_member: Annotated[int, Field(gt=0)] | None = None
    budget_total: Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _effect_complete(self) -> Campaign:
        if self.effect == "multiplier" and self.multiplier is None:
            raise ValueError("a multiplier campaign needs its multiplier")
        if self.effect == "bonus" and self.bonus_points is None:
            raise ValueError("a bonus campaign needs bonus_points")
        return self


class Stacking(Rule):
    """How multiplier campaigns that apply together combine.

    ``highest``: only the largest multiplier counts. ``additive``: the extras add up
    (×2 and ×5 give 1 + 1 + 4 = ×6), capped at ``cap_multiplier`` when given.
    """

    policy: Literal["highest", "additive"] = "highest"
    cap_multiplier: Multiplier | None = None


BehaviourEvent = Literal["registration", "sign_in", "birthday", "review", "share", "referral", "task"]


class Frequency(Rule):
    """At most ``times`` awards per ``per`` (local calendar day, ISO week, month, year, or ever)."""

    times: Annotated[int, Field(ge=1, le=1000)] = 1
    per: Literal["day", "week", "month", "year", "lifetime"] = "day"


class StreakBonus(Rule):
    """连续签到: extra points on every ``days``-th consecutive day of signing in."""

    days: Annotated[int, Field(ge=2, le=366)]
    points: Annotated[int, Field(gt=0, le=1_000_000)]


class BehaviourRule(Rule):
    """Points and growth for something a member does that is not a purchase: registering,
    the daily sign-in, a birthday, a review, a share, a referral, a task."""

    code: Code
    name: Name
    event: BehaviourEvent
    points: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    growth: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    limit: Frequency | None = None
    #: ``task`` only: the task this rule rewards (完善资料, 首次入住…); empty = any task.
    task: Code | None = None
    #: ``review`` / ``share``: the venues, formats or merchants reviewed or shared.
    scope: Scope = Scope()
    #: ``sign_in`` only.
    streaks: list[StreakBonus] = Field(default_factory=list)
    #: ``referral`` only: what the new member who was referred receives (the rule's own
    #: ``points`` go to the member who referred them).
    referee_points: Annotated[int, Field(ge=0, le=1_000_000)] = 0

    @model_validator(mode="after")
    def _complete(self) -> BehaviourRule:
        if not (self.points or self.growth or self.referee_points):
            raise ValueError("a behaviour rule gives points or growth")
        if self.streaks and self.event != "sign_in":
            raise ValueError("streak bonuses belong to sign_in rules")
        if self.task is not None and self.event != "task":
            raise ValueError("only a task rule names a task")
        if self.referee_points and self.event != "referral":
            raise ValueError("referee_points belong to referral rules")
        return self


class EarnRules(Rule):
    #: How fractional points are settled, once per component of an order: ``floor`` (去尾,
    #: the usual) or ``half_up`` (四舍五入).
    rounding: Literal["floor", "half_up"] = "floor"
    base_rates: list[BaseRate] = Field(min_length=1)
    exclusions: list[Exclusion] = Field(default_factory=list)
    campaigns: list[Campaign] = Field(default_factory=list)
    stacking: Stacking = Stacking()
    #: Growth value (成长值) per yuan, kept apart from points.
    growth_per_yuan: Rate = Decimal(1)
    behaviours: list[BehaviourRule] = Field(default_factory=list)
    #: The legal entity that issues (and bears the cost of) behaviour points; empty = the
    #: tenant's first entity, usually the group company.
    behaviour_issuer: Code | None = None


class RedeemRules(Rule):
    """Points as cash: ``points_per_yuan`` = 10 means 100 points pay ¥10."""

    points_per_yuan: Annotated[int, Field(gt=0, le=10_000)] = 10
    max_share_of_bill: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.5")
    min_points: Annotated[int, Field(ge=0)] = 100
    #: Merchants that accept points; empty = every merchant.
    merchants: list[Code] = Field(default_factory=list)


class RefundPolicy(Rule):
    """What a refund does when the points the purchase earned were already spent.

    ``other_lots``: take them from the member's other points, soonest expiry first, as far as
    the member has any (the rest is forgiven). ``deduct_from_refund``: take what is left of the
    purchase's own lot and keep the cash value of the spent part (at the redeem rate) out of
    the money refunded. ``forgive``: take only what is left of the purchase's own lot.
    """

    spent_points: Literal["other_lots", "deduct_from_refund", "forgive"] = "other_lots"


class ExpiryPolicy(Rule):
    mode: Literal["months_after_earning", "end_of_year"] = "months_after_earning"
    #: For ``months_after_earning``.
    months: Annotated[int, Field(ge=1, le=120)] = 12
    #: For ``end_of_year``: points expire at the end of the Nth calendar year after earning
    #: (0 = this year).
    years: Annotated[int, Field(ge=0, le=10)] = 1
    remind_days_before: list[Annotated[int, Field(ge=1, le=365)]] = Field(default_factory=lambda: [30, 7])


class VestingRule(Rule):
    """When points earned in a format become spendable (the refund window)."""

    mode: Literal["immediate", "days_after", "after_visit", "at_checkout"] = "immediate"
    days: Annotated[int, Field(ge=0, le=365)] = 0


class Qualification(Rule):
    """What keeps or earns a tier, measured over ``window_days``; ``combine`` says whether
    every given threshold (``all``) or any one (``any``) suffices."""

    combine: Literal["all", "any"] = "any"
    window_days: Annotated[int, Field(ge=1, le=3650)] = 365
    spend_fen: Annotated[int, Field(ge=0)] | None = None
    visits: Annotated[int, Field(ge=0)] | None = None
    growth: Annotated[int, Field(ge=0)] | None = None
    points_earned: Annotated[int, Field(ge=0)] | None = None


    def thresholds(self) -> dict[str, int]:
        """The dimensions this rule measures and the amount each needs."""
        given = {"spend_fen": self.spend_fen, "visits": self.visits, "growth": self.growth,
                 "points_earned": self.points_earned}
        return {k: v for k, v in given.items() if v is not None}


class PaidUpgrade(Rule):
    """付费升级: the tier can be bought for ``price_fen``; the buyer holds at least this tier
    for ``months`` (until the local midnight that ends the last day)."""

    price_fen: Annotated[int, Field(gt=0, le=10**9)]
    months: Annotated[int, Field(ge=1, le=36)] = 12


class ReviewSchedule(Rule):
    """When tiers are reviewed: at the end of every calendar year, half year, quarter or month
    in the tenant's local time (the 2026 year-end review looks from 1 January 2027 00:00).

    A member who no longer meets their tier's retention (``Tier.retain``, or ``Tier.qualify``
    when none is set) nor its qualification drops to the highest tier whose retention or
    qualification they meet; with ``one_step`` they drop at most one tier per review. Never
    below an active override floor or a paid upgrade, never while locked.
    """

    every: Literal["year", "half_year", "quarter", "month"] = "year"
    one_step: bool = False


class Tier(Rule):
    code: Code
    name: Name
    rank: Annotated[int, Field(ge=0, le=100)]
    earn_multiplier: Multiplier = Decimal(1)
    qualify: Qualification = Qualification()
    #: 保级条件: what keeps the tier at a review; ``None`` = the qualification itself.
    retain: Qualification | None = None
    paid: PaidUpgrade | None = None

    @property
    def retention(self) -> Qualification:
        return self.retain if self.retain is not None else self.qualify


class Benefit(Rule):
    """A benefit bound to tiers or to a growth threshold, with a quota per period."""

    code: Code
    name: Name
    kind: Literal[
        "discount", "free_parking_minutes", "fast_lane", "birthday_gift", "priority_booking", "room_upgrade",
        "lounge_access", "points_multiplier",
    ]
    tiers: list[Code] = Field(default_factory=list)
    min_growth: Annotated[int, Field(ge=0)] | None = None
    scope: Scope = Scope()
    #: discount: the rate paid, e.g. 0.85 for 8.5折; points_multiplier: the multiplier.
    rate: Annotated[Decimal, Field(gt=0, le=100, max_digits=8, decimal_places=4)] | None = None
    #: free_parking_minutes: minutes per period; fast_lane etc.: uses per period.
    quota: Annotated[int, Field(gt=0)] | None = None
    period: Literal["day", "month", "year", "lifetime"] = "month"

    @model_validator(mode="after")
    def _bound_and_complete(self) -> Benefit:
        if not self.tiers and self.min_growth is None:
            raise ValueError("a benefit is bound to tiers or to a growth threshold")
        if self.kind in ("discount", "points_multiplier") and self.rate is None:
            raise ValueError(f"a {self.kind} benefit needs its rate")
        if self.kind == "discount" and self.rate is not None and self.rate >= 1:
            raise ValueError("a discount rate is below 1 (0.85 = 8.5折)")
        return self


class ProgramDocument(Rule):
    """Everything the engine needs, as one validated, versioned document."""

    earn: EarnRules
    redeem: RedeemRules = RedeemRules()
    expiry: ExpiryPolicy = ExpiryPolicy()
    refund: RefundPolicy = RefundPolicy()
    vesting: dict[VenueFormat, VestingRule] = Field(default_factory=dict)
    tiers: list[Tier] = Field(min_length=1)
    tier_review: ReviewSchedule = ReviewSchedule()
    benefits: list[Benefit] = Field(default_factory=list)
    stored_value: StoredValueRules = Field(default_factory=lambda: StoredValueRules())

    @model_validator(mode="after")
    def _consistent(self) -> ProgramDocument:
        for label, codes in (
            ("base rate", [r.code for r in self.earn.base_rates]),
            ("exclusion", [r.code for r in self.earn.exclusions]),
            ("campaign", [c.code for c in self.earn.campaigns]),
            ("behaviour rule", [b.code for b in self.earn.behaviours]),
            ("tier", [t.code for t in self.tiers]),
            ("benefit", [b.code for b in self.benefits]),
        ):
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            if dupes:
                raise ValueError(f"duplicate {label} code(s): {', '.join(dupes)}")
        ranks = [t.rank for t in self.tiers]
        if len(set(ranks)) != len(ranks):
            raise ValueError("tier ranks must be distinct")
        known = {t.code for t in self.tiers}
        for holder, tiers in [(c.code, c.tiers) for c in self.earn.campaigns] + [(b.code, b.tiers) for b in self.benefits]:
            unknown = sorted(set(tiers) - known)
            if unknown:
                raise ValueError(f"{holder} names unknown tier(s): {', '.join(unknown)}")
        _tiers_consistent(self.tiers)
        return self

    def tier(self, code: str | None) -> Tier:
        """The member's tier, or the lowest one for members without a tier yet."""
        ordered = sorted(self.tiers, key=lambda t: t.rank)
        return next((t for t in ordered if t.code == code), ordered[0])


# --- stored value (储值) ---------------------------------------------------------------------------


class RechargeBonusTier(Rule):
    """充X送Y: a recharge of at least ``min_amount`` fen gives ``bonus`` fen, or ``rate`` of the
    amount (capped at ``max_bonus``). Of the tiers a recharge reaches, the one that gives most
    applies; tiers do not add up and do not repeat (充100送20 gives 20 for a recharge of 300)."""

    min_amount: Annotated[int, Field(gt=0, le=100_000_000)]
    bonus: Annotated[int, Field(gt=0, le=100_000_000)] | None = None
    rate: Annotated[Decimal, Field(gt=0, le=10, max_digits=8, decimal_places=4)] | None = None
    max_bonus: Annotated[int, Field(gt=0, le=100_000_000)] | None = None

    @model_validator(mode="after")
    def _one_effect(self) -> RechargeBonusTier:
        if (self.bonus is None) == (self.rate is None):
            raise ValueError("a bonus tier gives either a fixed bonus or a rate")
        if self.max_bonus is not None and self.rate is None:
            raise ValueError("max_bonus caps a rate tier only")
        return self

    def bonus_for(self, amount: int, rounding: str) -> int:
        """The bonus this tier gives for ``amount`` (0 below its threshold)."""
        if amount < self.min_amount:
            return 0
        if self.bonus is not None:
            return self.bonus
        exact = Decimal(amount) * self.rate
        whole = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP if rounding == "half_up" else ROUND_FLOOR))
        return min(whole, self.max_bonus) if self.max_bonus is not None else whole


class StoredValueLimits(Rule):
    """Per-member fences. ``max_principal`` is the most principal a member may hold (a named
    single-purpose prepaid card: ¥5,000); each recharge lies within ``min_recharge`` and
    ``max_recharge``. Bonus does not count towards the cap."""

    max_principal: Annotated[int, Field(gt=0, le=100_000_000)] = 500_000
    min_recharge: Annotated[int, Field(gt=0, le=100_000_000)] = 100
    max_recharge: Annotated[int, Field(gt=0, le=100_000_000)] = 500_000

    @model_validator(mode="after")
    def _ordered(self) -> StoredValueLimits:
        if self.min_recharge > self.max_recharge:
            raise ValueError("min_recharge is above max_recharge")
        return self


class BalanceRefundTerms(Rule):
    """退款条款 as published to members: a cash-out returns principal only, and forfeits the
    bonus in proportion to the principal returned — bonus × returned ÷ principal held, settled
    to the fen by ``forfeit_rounding``; returning all principal forfeits all bonus."""

    allowed: bool = True
    forfeit_rounding: Literal["half_up", "floor", "ceiling"] = "half_up"


class StoredValueAcceptance(Rule):
    """Where stored value pays. A single-purpose card is redeemed inside the issuing group:
    every self-operated merchant of the tenant, less ``excluded_merchants``. A third-party
    merchant takes it only when listed in ``third_party_merchants`` (the operator's decision,
    recorded on each such payment for settlement)."""

    self_operated: bool = True
    excluded_merchants: list[Code] = Field(default_factory=list)
    third_party_merchants: list[Code] = Field(default_factory=list)

    def decide(self, *, merchant: str, mode: str) -> tuple[bool, bool]:
        """(accepted, through the third-party exception) for a merchant code and its mode."""
        if mode == "third_party":
            return merchant in self.third_party_merchants, merchant in self.third_party_merchants
        return self.self_operated and merchant not in self.excluded_merchants, False


class StoredValueRules(Rule):
    """储值: recharge bonuses, bonus validity, limits, the spending order, refund terms and where
    it is accepted. Amounts are fen.

    ``spending_order``: ``bonus_first`` or ``principal_first`` use one up before the other;
    ``pro_rata`` takes principal and bonus in the ratio of what the member holds, split by
    largest remainder so the parts add up to the fen.
    """

    bonus_tiers: list[RechargeBonusTier] = Field(default_factory=list)
    #: How a rate tier's fractional fen are settled: ``floor`` (去尾) or ``half_up`` (四舍五入).
    bonus_rounding: Literal["floor", "half_up"] = "floor"
    #: Months a bonus stays spendable after its recharge; None = it does not lapse. Principal
    #: never lapses.
    bonus_valid_months: Annotated[int, Field(ge=1, le=120)] | None = 12
    limits: StoredValueLimits = StoredValueLimits()
    spending_order: Literal["bonus_first", "principal_first", "pro_rata"] = "pro_rata"
    balance_refund: BalanceRefundTerms = BalanceRefundTerms()
    acceptance: StoredValueAcceptance = StoredValueAcceptance()

    def bonus_for(self, amount: int) -> tuple[int, RechargeBonusTier | None]:
        """The bonus a recharge of ``amount`` earns and the tier that gives it (the best one)."""
        best: tuple[int, RechargeBonusTier | None] = (0, None)
        for tier in self.bonus_tiers:
            got = tier.bonus_for(amount, self.bonus_rounding)
            if got > best[0]:
                best = (got, tier)
        return best


ProgramDocument.model_rebuild()


def _tiers_consistent(tiers: list[Tier]) -> None:
    """Retention and paid upgrades that cannot mean what the operator wants are refused."""
    lowest = min(tiers, key=lambda t: t.rank)
    if lowest.retain is not None or lowest.paid is not None:
        raise ValueError(f"{lowest.code} is the lowest tier: nobody drops below it or needs to buy it")
    for tier in tiers:
        keep, earn = tier.retain, tier.qualify
        if keep is None or (keep.combine, keep.window_days) != (earn.combine, earn.window_days):
            continue
        needed = earn.thresholds()
        harder = sorted(k for k, v in keep.thresholds().items() if k in needed and v > needed[k])
        if harder:
            raise ValueError(f"{tier.code}: keeping the tier asks more than earning it ({', '.join(harder)})")
