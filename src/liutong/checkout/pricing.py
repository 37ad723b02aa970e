"""Pricing a basket for a member — pure functions over the program, no database.

Order of operations, as a cashier's receipt reads:

1. **Gross** per line: unit price × quantity.
2. **Benefit discounts**: each line takes the best discount benefit the member holds (by tier
   or by growth) whose scope matches it; the discounted price is rounded 四舍五入 to the fen.
3. **Points as cash**: at most ``max_share_of_bill`` of what is left, at most the member's
   spendable points, never below the minimum use, only at merchants that accept points;
   the cash value is spread over the lines by their amounts (largest remainder), so parts
   add up to the fen.
4. **Earn**: points and growth are earned on what the member pays with money — the line
   amounts after discounts and points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from liutong.kit.money import allocate
from liutong.program.engine import EarnQuote, Line, quote_earn
from liutong.program.rules import Benefit, ProgramDocument


@dataclass(frozen=True)
class Place:
    """Where the purchase happens, as the program's scopes name it."""

    merchant: str
    venue: str
    format: str


@dataclass(frozen=True)
class Waiver:
    """A discount a benefit gives by amount rather than by rate — free parking minutes, say:
    ``amount`` fen off the line, using ``quantity`` of the benefit's quota."""

    benefit: str
    amount: int
    quantity: int


@dataclass(frozen=True)
class BasketLine:
    sku: str
    category: str
    qty: int
    unit_price: int  # fen
    #: Sold at this till for another venue (a hotel package at the ticket office).
    place: Place | None = None
    waiver: Waiver | None = None


@dataclass(frozen=True)
class MemberView:
    tier_code: str | None
    growth: int
    points_spendable: int
    #: The member lists (名单) the member is on, of those that running campaigns target.
    lists: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PricedLine:
    sku: str
    category: str
    qty: int
    unit_price: int
    gross: int
    discount: int
    discount_benefit: str | None
    points_value: int
    paid: int  # what money pays: gross − discount − points_value


@dataclass(frozen=True)
class PointsOffer:
    requested: int
    max_usable: int
    applied: int
    value: int  # fen
    refused_because: str | None


@dataclass(frozen=True)
class Priced:
    lines: tuple[PricedLine, ...]
    gross: int
    discount: int
    points: PointsOffer
    payable: int
    earn: EarnQuote
    benefits_applied: tuple[str, ...]


def held_benefits(program: ProgramDocument, member: MemberView) -> list[Benefit]:
    """The benefits a member holds: bound to their tier, or to a growth threshold reached."""
    tier = program.tier(member.tier_code).code
    return [b for b in program.benefits
            if (b.tiers and tier in b.tiers) or (b.min_growth is not None and member.growth >= b.min_growth)]


def _discounted(gross: int, rate: Decimal) -> int:
    return int((Decimal(gross) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fen_per_points(program: ProgramDocument, points: int) -> int:
    """Cash value of ``points`` in fen (100 points = ¥10 by default), rounded down."""
    return points * 100 // program.redeem.points_per_yuan


def points_for_fen(program: ProgramDocument, fen: int) -> int:
    """The most points whose value does not exceed ``fen``."""
    return fen * program.redeem.points_per_yuan // 100


def price(
    program: ProgramDocument,
    *,
    place: Place,
    member: MemberView | None,
    lines: Sequence[BasketLine],
    points_requested: int,
    at_local: datetime,
    budgets_left: Mapping[str, int] | None = None,
) -> Priced:
    benefits = held_benefits(program, member) if member else []
    discounts = [b for b in benefits if b.kind == "discount"]
    priced: list[tuple[BasketLine, int, int, str | None]] = []
    for line in lines:
        gross = line.unit_price * line.qty
        if line.waiver is not None:
            priced.append((line, gross, min(gross, line.waiver.amount), line.waiver.benefit))
            continue
        at = line.place or place
        facts = {"sku": line.sku, "category": line.category, "merchant": at.merchant, "venue": at.venue,
                 "format": at.format}
        best = min((b for b in discounts if b.scope.matches(**facts)), key=lambda b: (b.rate, b.code), default=None)
        discount = gross - _discounted(gross, best.rate) if best else 0
        priced.append((line, gross, discount, best.code if best else None))

    after_discount = [gross - discount for _, gross, discount, _ in priced]
    payable_before_points = sum(after_discount)
    offer = _points_offer(program, place=place, member=member, bill=payable_before_points,
                          requested=points_requested)
    values = allocate(offer.value, after_discount) if offer.value and payable_before_points else [0] * len(priced)

    out = tuple(
        PricedLine(sku=line.sku, category=line.category, qty=line.qty, unit_price=line.unit_price, gross=gross,
                   discount=discount, discount_benefit=benefit, points_value=value,
                   paid=gross - discount - value)
        for (line, gross, discount, benefit), value in zip(priced, values, strict=True)
    )
    places = [line.place or place for line in lines]
    earn = quote_earn(
        program,
        lines=[Line(sku=p.sku, category=p.category, amount=p.paid, merchant=at.merchant, venue=at.venue,
                    format=at.format) for p, at in zip(out, places, strict=True)],
        tier_code=member.tier_code if member else None,
        at_local=at_local,
        budgets_left=budgets_left,
        member_lists=member.lists,
    ) if member else quote_earn(program, lines=[], tier_code=None, at_local=at_local)
    return Priced(
        lines=out,
        gross=sum(p.gross for p in out),
        discount=sum(p.discount for p in out),
        points=offer,
        payable=sum(p.paid for p in out),
        earn=earn,
        benefits_applied=tuple(sorted({p.discount_benefit for p in out if p.discount_benefit})),
    )


def _points_offer(program: ProgramDocument, *, place: Place, member: MemberView | None, bill: int,
                  requested: int) -> PointsOffer:
    rules = program.redeem
    if member is None:
        return PointsOffer(requested, 0, 0, 0, "no_member" if requested else None)
    if rules.merchants and place.merchant not in rules.merchants:
        return PointsOffer(requested, 0, 0, 0, "merchant_does_not_accept_points" if requested else None)
    cap_fen = int((Decimal(bill) * rules.max_share_of_bill).quantize(Decimal(1), rounding=ROUND_FLOOR))
    max_usable = min(member.points_spendable, points_for_fen(program, cap_fen))
    if max_usable < rules.min_points:
        max_usable = 0
    if not requested:
        return PointsOffer(0, max_usable, 0, 0, None)
    if requested > member.points_spendable:
        return PointsOffer(requested, max_usable, 0, 0, "beyond_balance")
    if requested > max_usable:
        return PointsOffer(requested, max_usable, 0, 0, "beyond_bill_cap" if max_usable or
                           member.points_spendable >= rules.min_points else "below_minimum")
    if requested < rules.min_points:
        return PointsOffer(requested, max_usable, 0, 0, "below_minimum")
    return PointsOffer(requested, max_usable, requested, fen_per_points(program, requested), None)
