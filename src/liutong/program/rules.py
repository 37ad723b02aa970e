"""The program's rules as data: a validated vocabulary that the console can build, the engine
can apply and explain, and every change of which is kept as a new version.

Amounts are fen, points are integers, rates are decimals. Dates and weekdays are read in the
tenant's time zone (a weekend in Sanya is a weekend in Asia/Shanghai, not in UTC).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
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


class RedeemRules(Rule):
    """Points as cash: ``points_per_yuan`` = 10 means 100 points pay ¥10."""

    points_per_yuan: Annotated[int, Field(gt=0, le=10_000)] = 10
    max_share_of_bill: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.5")
    min_points: Annotated[int, Field(ge=0)] = 100
    #: Merchants that accept points; empty = every merchant.
    merchants: list[Code] = Field(default_factory=list)


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
    vesting: dict[VenueFormat, VestingRule] = Field(default_factory=dict)
    tiers: list[Tier] = Field(min_length=1)
    tier_review: ReviewSchedule = ReviewSchedule()
    benefits: list[Benefit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ProgramDocument:
        for label, codes in (
            ("base rate", [r.code for r in self.earn.base_rates]),
            ("exclusion", [r.code for r in self.earn.exclusions]),
            ("campaign", [c.code for c in self.earn.campaigns]),
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
