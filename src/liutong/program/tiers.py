"""Which tier a member's activity earns and keeps — pure rules over the program's tiers.

Promotion is immediate: a purchase that lifts a member over a tier's threshold promotes them
at once ("upgrade once, enjoy everywhere"). Demotion happens only at a period review, and a
manual override sets an explicit floor (never below it), lock (never changes) and expiry.

Windows are counted in whole local days: a window of N days on a given day is that day and
the N - 1 days before it; at a review it is the N days before the period's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from liutong.program.rules import ProgramDocument, Qualification, ReviewSchedule, Tier


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

    @property
    def present(self) -> bool:
        return self.floor is not None or self.locked or self.expires_at is not None


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


# --- review periods ----------------------------------------------------------------------------

_MONTHS = {"year": 12, "half_year": 6, "quarter": 3, "month": 1}


@dataclass(frozen=True)
class Period:
    """A review period in local dates; its review looks from local midnight of ``end_day``."""

    key: str
    first_day: date
    #: the first day after the period
    end_day: date

    def ends_at(self, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.end_day, time(), tzinfo=tz)


def period_of(schedule: ReviewSchedule, day: date) -> Period:
    """The review period ``day`` belongs to."""
    months = _MONTHS[schedule.every]
    index = (day.month - 1) // months
    first = date(day.year, index * months + 1, 1)
    key = {
        "year": f"{day.year}",
        "half_year": f"{day.year}-H{index + 1}",
        "quarter": f"{day.year}-Q{index + 1}",
        "month": f"{day.year}-{day.month:02d}",
    }[schedule.every]
    return Period(key=key, first_day=first, end_day=first + relativedelta(months=months))


def last_period_ended(schedule: ReviewSchedule, local: datetime) -> Period:
    """The latest period that had ended by ``local`` (a local time): the one to review then."""
    return period_of(schedule, period_of(schedule, local.date()).first_day - timedelta(days=1))


# --- the period review -------------------------------------------------------------------------


def review_windows(program: ProgramDocument) -> set[int]:
    """Every window length (days) the review needs the members' activity over."""
    return {t.retention.window_days for t in program.tiers} | {t.qualify.window_days for t in program.tiers}


def holds(tier: Tier, activity_for: dict[int, Activity]) -> bool:
    """Whether the member keeps ``tier``: they meet its retention, or still meet its
    qualification (a member who would be promoted straight back is not demoted)."""
    keep, earn = tier.retention, tier.qualify
    return qualifies(keep, activity_for[keep.window_days]) or qualifies(earn, activity_for[earn.window_days])


@dataclass(frozen=True)
class Verdict:
    """Where a member stands after a review, and why."""

    tier: Tier
    #: the override has expired and is cleared at this review
    clear_override: bool
    #: the member met the retention of the tier they held
    retained: bool
    #: what kept them above what their activity holds: "lock", "floor", "paid_upgrade" or None
    held_by: str | None = None


class _Ladder:
    """A program's tiers in rank order, looked up by code (the review asks a million times)."""

    def __init__(self, program: ProgramDocument) -> None:
        self.ordered = sorted(program.tiers, key=lambda t: t.rank)
        self.position = {t.code: i for i, t in enumerate(self.ordered)}
        self._rules = [(_compiled(t.retention), _compiled(t.qualify)) for t in self.ordered]

    def index(self, code: str | None) -> int:
        return self.position.get(code, 0) if code is not None else 0

    def holds(self, i: int, activity_for: dict[int, Activity]) -> bool:
        """``holds`` for the i-th tier, with its rules read once per program instead of per member."""
        return any(_meets(rule, activity_for) for rule in self._rules[i])


def _compiled(rule: Qualification) -> tuple[int, bool, tuple[tuple[str, int], ...]]:
    return rule.window_days, rule.combine == "all", tuple(rule.thresholds().items())


def _meets(compiled: tuple[int, bool, tuple[tuple[str, int], ...]], activity_for: dict[int, Activity]) -> bool:
    window, every, checks = compiled
    if not checks:
        return True
    measured = activity_for[window]
    met = (getattr(measured, name) >= threshold for name, threshold in checks)
    return all(met) if every else any(met)


_LADDERS: dict[int, tuple[ProgramDocument, _Ladder]] = {}
_NO_OVERRIDE = Override()


def _ladder(program: ProgramDocument) -> _Ladder:
    # keyed by identity; the program is kept alongside so that its id cannot be reused meanwhile
    hit = _LADDERS.get(id(program))
    if hit is None or hit[0] is not program:
        if len(_LADDERS) >= 64:
            _LADDERS.clear()
        hit = _LADDERS[id(program)] = (program, _Ladder(program))
    return hit[1]


def review(program: ProgramDocument, *, current: str | None, activity_for: dict[int, Activity],
           override: Override, paid_floor: str | None, at: datetime) -> Verdict:
    """The outcome of the period review ``at`` its end for one member.

    * An override whose expiry has passed is cleared, and the member is then reviewed as if
      it had never been set.
    * An active lock keeps the member where they are.
    * Otherwise the member keeps the highest tier, up to their own, that they ``holds``;
      with ``one_step`` they fall at most one tier.
    * Never below an active override floor or a paid upgrade still running ``at`` then.
    """
    ladder = _ladder(program)
    mine = ladder.index(current)
    now = ladder.ordered[mine]
    expired = override.present and not override.active(at)
    live = override if override.present and not expired else _NO_OVERRIDE
    if live.locked:
        return Verdict(tier=now, clear_override=False, retained=ladder.holds(mine, activity_for), held_by="lock")
    kept = 0
    for i in range(mine, 0, -1):  # from their own tier down: the first they hold is the highest
        if ladder.holds(i, activity_for):
            kept = i
            break
    if program.tier_review.one_step and kept < mine:
        kept = mine - 1
    target, held_by = kept, None
    for code, why in ((live.floor, "floor"), (paid_floor, "paid_upgrade")):
        if code is not None and ladder.index(code) > target:
            target, held_by = ladder.index(code), why
    return Verdict(tier=ladder.ordered[target], clear_override=expired, retained=kept >= mine, held_by=held_by)


# --- progress, as the member centre shows it ---------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """One threshold of a rule: what it needs, what the member has, what is still missing."""

    dimension: str
    required: int
    current: int

    @property
    def missing(self) -> int:
        return max(0, self.required - self.current)


@dataclass(frozen=True)
class Standing:
    """How far a member is on one tier's rule (to earn it, or to keep it)."""

    tier: Tier
    rule: Qualification
    gaps: list[Gap]
    met: bool


def standing(tier: Tier, rule: Qualification, activity: Activity) -> Standing:
    have = {"spend_fen": activity.spend_fen, "visits": activity.visits, "growth": activity.growth,
            "points_earned": activity.points_earned}
    gaps = [Gap(dimension=k, required=v, current=have[k]) for k, v in rule.thresholds().items()]
    return Standing(tier=tier, rule=rule, gaps=gaps, met=qualifies(rule, activity))


def next_tier(program: ProgramDocument, current: str | None) -> Tier | None:
    above = sorted((t for t in program.tiers if t.rank > program.tier(current).rank), key=lambda t: t.rank)
    return above[0] if above else None
