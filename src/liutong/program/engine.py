"""What a purchase earns, and why — pure functions over a program document.

The answer is a list of parts that an operator can read on a receipt
("基础积分 120 + 周末双倍 120 + 金卡1.5倍 60") and that add up to the total exactly: each
part is rounded once, by the program's stated rounding, and the total is their sum.

* Base points: every line earns at the most specific base rate whose scope matches it
  (sku, then merchant, category, venue, format); excluded lines earn nothing.
* Campaign multipliers apply to base points of the lines in their scope, in their window (the
  tenant's local time) and for their tiers. Under ``highest`` a line takes only its largest
  multiplier; under ``additive`` the extras add up to the cap, campaigns in program order.
* The tier multiplier applies to base points.
* Bonus campaigns add fixed points when the eligible spend reaches their minimum.
* A campaign's part never exceeds the budget it has left, when the caller says what is left.
* Growth value is earned on eligible spend at its own rate, apart from points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta

from liutong.program.rules import BaseRate, Campaign, ProgramDocument

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Line:
    """One line of a purchase, as the engine sees it. ``amount`` is what was paid, in fen."""

    sku: str
    category: str
    amount: int
    merchant: str
    venue: str
    format: str

    def facts(self) -> dict[str, str]:
        return {"sku": self.sku, "category": self.category, "merchant": self.merchant, "venue": self.venue,
                "format": self.format}


@dataclass(frozen=True)
class EarnPart:
    rule: str
    label: str
    points: int


@dataclass(frozen=True)
class EarnQuote:
    points: int
    growth: int
    parts: tuple[EarnPart, ...]
    #: Lines (by position) that earn nothing, with the exclusion that says so.
    excluded: tuple[tuple[int, str], ...]

    @property
    def explanation(self) -> str:
        return " + ".join(f"{p.label} {p.points}" for p in self.parts if p.points) or "不积分"


def _round(value: Decimal, mode: str) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_FLOOR if mode == "floor" else ROUND_HALF_UP))


def _fmt(multiplier: Decimal) -> str:
    return format(multiplier.normalize(), "f")


def base_rate_for(program: ProgramDocument, line: Line) -> BaseRate | None:
    matching = [r for r in program.earn.base_rates if r.scope.matches(**line.facts())]
    # most specific first; among equals, the one listed first
    return max(reversed(matching), key=lambda r: r.scope.specificity, default=None)


def active_campaigns(program: ProgramDocument, *, at_local: datetime, tier_code: str,
                     member_lists: frozenset[str] = frozenset()) -> list[Campaign]:
    return [c for c in program.earn.campaigns
            if c.window.contains(at_local) and (not c.tiers or tier_code in c.tiers)
            and (not c.member_lists or member_lists.intersection(c.member_lists))]


def lists_in_play(program: ProgramDocument, *, at_local: datetime) -> set[str]:
    """The member lists that campaigns running now target (what a checkout must look up)."""
    return {code for c in program.earn.campaigns if c.window.contains(at_local) for code in c.member_lists}


def quote_earn(
    program: ProgramDocument,
    *,
    lines: Sequence[Line],
    tier_code: str | None,
    at_local: datetime,
    budgets_left: Mapping[str, int] | None = None,
    member_lists: frozenset[str] = frozenset(),
) -> EarnQuote:
    rounding = program.earn.rounding
    tier = program.tier(tier_code)
    excluded: list[tuple[int, str]] = []
    base_exact: list[Decimal] = []  # per line
    base_by_rate: dict[str, Decimal] = defaultdict(Decimal)
    rate_names: dict[str, str] = {}
    eligible_spend = 0
    for i, line in enumerate(lines):
        exclusion = next((x for x in program.earn.exclusions if x.scope.matches(**line.facts())), None)
        rate = None if exclusion else base_rate_for(program, line)
        if exclusion is not None or rate is None:
            excluded.append((i, exclusion.code if exclusion else "no_base_rate"))
            base_exact.append(Decimal(0))
            continue
        exact = Decimal(line.amount) / HUNDRED * rate.points_per_yuan
        base_exact.append(exact)
        base_by_rate[rate.code] += exact
        rate_names[rate.code] = rate.name
        eligible_spend += line.amount

    parts: list[EarnPart] = [
        EarnPart(code, rate_names[code], _round(exact, rounding)) for code, exact in base_by_rate.items()
    ]

    campaigns = active_campaigns(program, at_local=at_local, tier_code=tier.code, member_lists=member_lists)
    multipliers = [c for c in campaigns if c.effect == "multiplier"]
    extra_by_campaign: dict[str, Decimal] = defaultdict(Decimal)
    stacking = program.earn.stacking
    for i, line in enumerate(lines):
        if not base_exact[i]:
            continue
        covering = [c for c in multipliers if c.scope.matches(**line.facts())]
        if not covering:
            continue
        if stacking.policy == "highest":
            best = max(reversed(covering), key=lambda c: c.multiplier)
            extra_by_campaign[best.code] += base_exact[i] * (best.multiplier - 1)
            continue
        room = (stacking.cap_multiplier - 1) if stacking.cap_multiplier is not None else None
        for c in covering:
            extra = c.multiplier - 1
            if room is not None:
                extra = min(extra, room)
                room -= extra
            if extra > 0:
                extra_by_campaign[c.code] += base_exact[i] * extra
    for c in multipliers:
        if c.code in extra_by_campaign:
            points = _round(extra_by_campaign[c.code], rounding)
            parts.append(EarnPart(c.code, c.name, _limit(points, c.code, budgets_left)))

    if tier.earn_multiplier > 1:
        tier_extra = _round(sum(base_exact, Decimal(0)) * (tier.earn_multiplier - 1), rounding)
        parts.append(EarnPart(f"tier:{tier.code}", f"{tier.name}{_fmt(tier.earn_multiplier)}倍", tier_extra))

    for c in campaigns:
        if c.effect != "bonus":
            continue
        spend = sum(line.amount for i, line in enumerate(lines) if base_exact[i] and c.scope.matches(**line.facts()))
        if spend and spend >= c.min_spend:
            parts.append(EarnPart(c.code, c.name, _limit(c.bonus_points, c.code, budgets_left)))

    growth = _round(Decimal(eligible_spend) / HUNDRED * program.earn.growth_per_yuan, rounding)
    return EarnQuote(points=sum(p.points for p in parts), growth=growth, parts=tuple(parts), excluded=tuple(excluded))


def _limit(points: int, code: str, budgets_left: Mapping[str, int] | None) -> int:
    if budgets_left is None or code not in budgets_left:
        return points
    return max(0, min(points, budgets_left[code]))


def lot_terms(program: ProgramDocument, *, venue_format: str | None, at: datetime,
              tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """(vests_at, expires_at) for points earned now in this format, per the program."""
    expiry = program.expiry
    if expiry.mode == "months_after_earning":
        expires = at + relativedelta(months=expiry.months)
    else:
        year_end = datetime(at.astimezone(tz).year + expiry.years, 12, 31, 23, 59, 59, tzinfo=tz)
        expires = year_end.astimezone(at.tzinfo)
    rule = program.vesting.get(venue_format) if venue_format else None
    if rule is None or rule.mode == "immediate":
        return None, expires
    if rule.mode == "after_visit":  # the visit is the purchase day: vest at the next local midnight
        local = at.astimezone(tz)
        next_midnight = datetime(local.year, local.month, local.day, tzinfo=tz) + timedelta(days=1)
        return next_midnight.astimezone(at.tzinfo), expires
    # days_after; at_checkout: the guest's check-out vests the lot, and ``days`` is the longest
    # it waits when no check-out is reported
    return at + timedelta(days=rule.days or 1), expires
