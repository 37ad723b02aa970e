"""Which tier a member's activity earns — pure rules over the program's tier definitions.

Promotion is immediate: a purchase that lifts a member over a tier's threshold promotes them
at once ("upgrade once, enjoy everywhere"). Demotion happens only at a period review, and a
manual override sets an explicit floor (never below it), lock (never changes) and expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from liutong.program.rules import ProgramDocument, Qualification, Tier


@dataclass(frozen=True)
class Activity:
    """A member's record over a tier's qualification window."""

    spend_fen: int
    visits: int
    growth: int
    points_earned: int


@dataclass(frozen=True)
class Override:
    floor: str | None = None
    locked: bool = False
    expires_at: datetime | None = None

    def active(self, at: datetime) -> bool:
        return self.expires_at is None or at < self.expires_at


def qualifies(rule: Qualification, activity: Activity) -> bool:
    checks = [
        measured >= threshold
        for threshold, measured in (
            (rule.spend_fen, activity.spend_fen),
            (rule.visits, activity.visits),
            (rule.growth, activity.growth),
            (rule.points_earned, activity.points_earned),
        )
        if threshold is not None
    ]
    if not checks:
        return True  # a tier with no threshold (the entry tier) is open to everyone
    return all(checks) if rule.combine == "all" else any(checks)


def earned_tier(program: ProgramDocument, activity_for: dict[int, Activity], *,
                among: list[Tier] | None = None) -> Tier:
    """The highest tier whose qualification the member meets; ``activity_for`` maps each
    window length (days) to the member's activity over it. ``among`` limits the tiers looked
    at (promotion only looks above the current tier); the lowest tier is the fallback."""
    best = program.tier(None)
    for tier in sorted(among if among is not None else program.tiers, key=lambda t: t.rank):
        if qualifies(tier.qualify, activity_for[tier.qualify.window_days]):
            best = tier
    return best


def promotion(program: ProgramDocument, *, current: str | None, earned: Tier, override: Override,
              at: datetime) -> Tier | None:
    """The tier to promote to now, or None. Never a demotion (that waits for the review)."""
    now = program.tier(current)
    if override.active(at) and override.locked:
        return None
    target = earned
    if override.active(at) and override.floor is not None:
        floor = program.tier(override.floor)
        target = max(target, floor, key=lambda t: t.rank)
    return target if target.rank > now.rank else None
