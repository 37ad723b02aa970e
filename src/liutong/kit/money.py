"""Exact allocation of integer amounts (fen, points) by ratios.

Largest-remainder method: every part gets the floor of its exact share, and the units left
over go to the parts with the largest remainders, ties broken by position (earlier first).
So the parts always add up to the total, each part is within one unit of its exact share,
and the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

Ratio = int | Decimal | Fraction


def allocate(total: int, weights: Sequence[Ratio]) -> list[int]:
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    fractions = [Fraction(w) if not isinstance(w, Decimal) else Fraction(str(w)) for w in weights]
    whole = sum(fractions)
    if whole == 0:
        raise ValueError("weights must not all be zero")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    exact = [magnitude * f / whole for f in fractions]
    parts = [int(e) for e in exact]  # floor, since every share is >= 0
    leftover = magnitude - sum(parts)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:leftover]:
        parts[i] += 1
    return [sign * p for p in parts]


def refund_parts(*, remaining: Sequence[int], refund: int) -> list[int]:
    """Split a partial refund over parts that still have ``remaining`` units to give back.

    The refund is allocated in proportion to what each part still holds, so no part ever
    goes negative or returns more than it has, and once the refunds reach the total every
    part has returned exactly what it took. (Allocating the cumulative refund and taking
    differences — ``alloc(after)[i] − alloc(before)[i]`` — is *not* safe: largest-remainder
    allocation is not monotone in the total, so a step can come out at −1 for one part.)
    """
    if any(r < 0 for r in remaining):
        raise ValueError("remaining parts must not be negative")
    left = sum(remaining)
    if not 0 <= refund <= left:
        raise ValueError("refund exceeds what remains")
    if refund == 0:
        return [0 for _ in remaining]
    return allocate(refund, remaining)


def round_half_up(value: Decimal) -> int:
    """四舍五入 to a whole unit."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(fen: int) -> str:
    """¥ as a mainland receipt prints it: ¥1,234.50."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"
