"""The arithmetic of stored value, as pure functions over fen: what a payment takes from which
lot, what a refund gives back, what a cash-out returns and forfeits.

A *lot* is one recharge: its principal and its bonus, issued by one legal entity. Every split
here is exact: parts are integers that add up to the whole, no part takes more than a lot
holds, and partial refunds of a payment, in any sequence, add up to what the payment took.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Literal

from liutong.kit.money import allocate, refund_parts

SpendingOrder = Literal["bonus_first", "principal_first", "pro_rata"]
Rounding = Literal["half_up", "floor", "ceiling"]


@dataclass(frozen=True)
class Holding:
    """What one lot holds that can be used now (bonus past its validity is not counted)."""

    lot_id: int
    issuer_entity_id: int
    principal: int
    bonus: int
    bonus_expires_at: datetime | None = None


@dataclass(frozen=True)
class Part:
    """Principal and bonus moved for one lot."""

    lot_id: int
    issuer_entity_id: int
    principal: int
    bonus: int


def split_payment(amount: int, *, order: SpendingOrder, holdings: Sequence[Holding]) -> list[Part] | None:
    """The parts of ``holdings`` a payment of ``amount`` takes, or None when they hold too little.

    First the payment is divided between principal and bonus by the spending order (pro rata:
    in the ratio of all principal to all spendable bonus, largest remainder). Then principal
    comes from the oldest lots first and bonus from the lots whose bonus lapses soonest.
    """
    if amount <= 0:
        raise ValueError("a payment is a positive amount")
    held_principal = sum(h.principal for h in holdings)
    held_bonus = sum(h.bonus for h in holdings)
    if amount > held_principal + held_bonus:
        return None
    if order == "principal_first":
        principal = min(amount, held_principal)
        bonus = amount - principal
    elif order == "bonus_first":
        bonus = min(amount, held_bonus)
        principal = amount - bonus
    else:
        principal, bonus = allocate(amount, [held_principal, held_bonus])
    by_age = sorted(holdings, key=lambda h: h.lot_id)
    by_lapse = sorted(holdings, key=lambda h: (h.bonus_expires_at is None, h.bonus_expires_at or 0, h.lot_id))
    take_principal = _draw(principal, [(h.lot_id, h.principal) for h in by_age])
    take_bonus = _draw(bonus, [(h.lot_id, h.bonus) for h in by_lapse])
    return [
        Part(h.lot_id, h.issuer_entity_id, take_principal.get(h.lot_id, 0), take_bonus.get(h.lot_id, 0))
        for h in by_age
        if take_principal.get(h.lot_id) or take_bonus.get(h.lot_id)
    ]


def _draw(amount: int, available: Sequence[tuple[int, int]]) -> dict[int, int]:
    taken: dict[int, int] = {}
    left = amount
    for lot_id, has in available:
        if not left:
            break
        n = min(has, left)
        if n:
            taken[lot_id] = n
            left -= n
    assert left == 0, "split_payment checked the total first"
    return taken


def split_refund(amount: int, *, still_out: Sequence[Part]) -> list[Part]:
    """Split a refund of ``amount`` over what a payment took and has not had back yet
    (``still_out``), in proportion to each lot's principal and bonus still out.

    Proportional to what is *still* out, not to the original split: so no part ever gives
    back more than it took, and the last refund gives back exactly what is left.
    """
    weights = [p.principal for p in still_out] + [p.bonus for p in still_out]
    if not 0 < amount <= sum(weights):
        raise ValueError("a refund is positive and at most what the payment has still out")
    shares = refund_parts(remaining=weights, refund=amount)
    n = len(still_out)
    return [
        Part(p.lot_id, p.issuer_entity_id, shares[i], shares[n + i])
        for i, p in enumerate(still_out)
        if shares[i] or shares[n + i]
    ]


def forfeited_bonus(*, bonus: int, principal_returned: int, principal_held: int, rounding: Rounding) -> int:
    """The bonus a cash-out forfeits: bonus × returned ÷ held, to the fen by ``rounding``;
    returning all the principal forfeits all the bonus."""
    if not 0 < principal_returned <= principal_held:
        raise ValueError("a cash-out returns a positive amount of the principal held")
    if principal_returned == principal_held:
        return bonus
    exact = Fraction(bonus * principal_returned, principal_held)
    if rounding == "floor":
        return exact.numerator // exact.denominator
    if rounding == "ceiling":
        return -(-exact.numerator // exact.denominator)
    return (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)


@dataclass(frozen=True)
class CashOutPart:
    lot_id: int
    issuer_entity_id: int
    principal: int
    bonus_forfeited: int


def cash_out(principal: int, *, holdings: Sequence[Holding], rounding: Rounding) -> list[CashOutPart] | None:
    """What a cash-out of ``principal`` returns from each lot and forfeits of its bonus, or
    None when the member holds less principal than that.

    Each issuer returns principal in proportion to what its lots hold, and the forfeited bonus
    is spread the same way over the bonus the lots hold (largest remainder, so both add up).
    """
    held_principal = sum(h.principal for h in holdings)
    if principal <= 0:
        raise ValueError("a cash-out is a positive amount")
    if principal > held_principal:
        return None
    held_bonus = sum(h.bonus for h in holdings)
    forfeit = forfeited_bonus(bonus=held_bonus, principal_returned=principal, principal_held=held_principal,
                              rounding=rounding)
    ordered = sorted(holdings, key=lambda h: h.lot_id)
    returned = refund_parts(remaining=[h.principal for h in ordered], refund=principal)
    lost = refund_parts(remaining=[h.bonus for h in ordered], refund=forfeit)
    return [
        CashOutPart(h.lot_id, h.issuer_entity_id, r, f)
        for h, r, f in zip(ordered, returned, lost, strict=True)
        if r or f
    ]
