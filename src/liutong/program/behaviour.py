"""Rewarding what members do that is not a purchase: 签到, registration, birthdays, reviews,
shares, referrals and tasks — through the same ledger as purchases.

* Every rule of the program for the event (and, for tasks, the task; for reviews and shares,
  the place) applies; each is counted against its own frequency limit in the tenant's local
  calendar (day, ISO week, month, year, or ever). A rule at its limit gives nothing; when every
  rule for the event is at its limit the request is refused with a coded error.
* A sign-in continues yesterday's streak or starts a new one; every ``days``-th consecutive day
  adds the streak bonus.
* A referral pays the member who referred (the rule's ``points``) and the new member
  (``referee_points``); a member is referred once.
* The member row is locked first, so two sign-ins at the same moment count once.
* Points are issued by the program's ``behaviour_issuer`` (or the tenant's first entity), with
  the program's expiry, and spendable at once; growth goes to the growth account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select

from liutong.errors import (
    AlreadyReferred,
    BehaviourLimitReached,
    BehaviourNotRewarded,
    InvalidReference,
    NotBirthday,
)
from liutong.jobs import service as jobs
from liutong.kit import idempotency
from liutong.kit.idempotency import system_key
from liutong.ledger import service as ledger
from liutong.members.models import Member
from liutong.organisation.models import LegalEntity, Tenant
from liutong.program import service as program_service
from liutong.program.benefits import period_key
from liutong.program.engine import lot_terms
from liutong.program.models import BehaviourAward
from liutong.program.rules import BehaviourRule, ProgramDocument, Scope

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


@dataclass(frozen=True)
class Place:
    """What a review or share is about, as the program's scopes name it."""

    format: str = ""
    venue: str = ""
    merchant: str = ""


class Award(BaseModel):
    rule: str
    name: str
    member_id: int
    points: int
    growth: int
    streak: int = 0
    explanation: str


class Rewarded(BaseModel):
    event: str
    member_id: int
    points: int
    growth: int
    awards: list[Award]
    #: Rules for this event that gave nothing because their limit for the period is reached.
    limited: list[str]


def is_birthday(birthday: date | None, today: date) -> bool:
    """A birthday on 29 February is kept on 28 February in other years."""
    if birthday is None:
        return False
    if (birthday.month, birthday.day) == (today.month, today.day):
        return True
    return (birthday.month, birthday.day) == (2, 29) and (today.month, today.day) == (2, 28) and not _leap(today.year)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _applies(rule: BehaviourRule, *, task: str | None, place: Place | None) -> bool:
    if rule.event == "task" and rule.task is not None and rule.task != task:
        return False
    if place is None:
        return rule.scope == Scope()
    return rule.scope.matches(format=place.format, venue=place.venue, merchant=place.merchant, category="", sku="")


def behaviour_issuer(tx: Tx, *, tenant_id: int, program: ProgramDocument) -> int:
    query = select(LegalEntity.id).where(LegalEntity.tenant_id == tenant_id)
    if program.earn.behaviour_issuer:
        query = query.where(LegalEntity.code == program.earn.behaviour_issuer)
    entity_id = tx.session.scalar(query.order_by(LegalEntity.id).limit(1))
    if entity_id is None:
        raise InvalidReference(what="发放积分的法人主体 / issuing entity")
    return entity_id


def _used(tx: Tx, *, tenant_id: int, member_id: int, rule: str, role: str, period: str) -> int:
    return tx.session.scalar(
        select(func.count()).select_from(BehaviourAward).where(
            BehaviourAward.tenant_id == tenant_id, BehaviourAward.member_id == member_id,
            BehaviourAward.rule_code == rule, BehaviourAward.role == role, BehaviourAward.period_key == period)
    )


def _streak(tx: Tx, *, tenant_id: int, member_id: int, rule: str, today: date) -> int:
    yesterday = tx.session.scalar(
        select(func.max(BehaviourAward.streak)).where(
            BehaviourAward.tenant_id == tenant_id, BehaviourAward.member_id == member_id,
            BehaviourAward.rule_code == rule, BehaviourAward.local_day == today - timedelta(days=1))
    )
    return (yesterday or 0) + 1


class _Awarding:
    """Writes one award: the lot, the growth, the row that the limit counts."""

    def __init__(self, tx: Tx, *, tenant_id: int, program_version_id: int, program: ProgramDocument, at: datetime,
                 key: str, ref: str | None) -> None:
        self.tx, self.tenant_id, self.program_version_id, self.program = tx, tenant_id, program_version_id, program
        self.at, self.key, self.ref = at, key, ref
        self.local_day = at.astimezone(tx.tz).date()
        self._issuer: int | None = None

    def give(self, rule: BehaviourRule, *, member_id: int, role: str, points: int, growth: int, streak: int,
             explanation: str) -> Award:
        tx = self.tx
        earn_entry_id = growth_entry_id = None
        if points:
            if self._issuer is None:
                self._issuer = behaviour_issuer(tx, tenant_id=self.tenant_id, program=self.program)
            _, expires_at = lot_terms(self.program, venue_format=None, at=self.at, tz=tx.tz)
            earn_entry_id = ledger.earn_points(
                tx, tenant_id=self.tenant_id, member_id=member_id, issuer_entity_id=self._issuer, points=points,
                key=system_key("behaviour", self.key, rule.code, role), effective_at=self.at,
                expires_at=expires_at, ref=self.ref, memo=explanation[:200]).entry_id
        if growth:
            growth_entry_id = ledger.move_growth(tx, tenant_id=self.tenant_id, member_id=member_id, amount=growth,
                                                 ref=self.ref or rule.code,
                                                 key=system_key("behaviour", self.key, rule.code, role, "growth"))
        limit = rule.limit.per if rule.limit else "lifetime"
        tx.session.add(BehaviourAward(
            tenant_id=self.tenant_id, member_id=member_id, rule_code=rule.code, role=role,
            period_key=period_key(limit, self.local_day), local_day=self.local_day, streak=streak, points=points,
            growth=growth, ref=self.ref, earn_entry_id=earn_entry_id, growth_entry_id=growth_entry_id,
            program_version_id=self.program_version_id, awarded_at=self.at))
        return Award(rule=rule.code, name=rule.name, member_id=member_id, points=points, growth=growth, streak=streak,
                     explanation=explanation)


def reward(tx: Tx, *, tenant_id: int, member: Member, event: str, at: datetime, key: str, ref: str | None = None,
           task: str | None = None, place: Place | None = None, referee: Member | None = None,
           required: bool = True) -> Rewarded:
    """Reward ``member`` for ``event``, idempotent on ``key``.

    ``required=False`` (registration) gives nothing, quietly, when the program has no rule for
    the event; otherwise that is an error the caller should see.
    """
    request = {"member_id": member.id, "event": event, "at": at.isoformat(), "ref": ref, "task": task,
               "place": vars(place) if place else None, "referee_id": referee.id if referee else None}

    def run() -> Rewarded:
        published = program_service.current(tx, tenant_id=tenant_id)
        program = published.document
        rules = [r for r in program.earn.behaviours if r.event == event and _applies(r, task=task, place=place)]
        if not rules:
            if required:
                raise BehaviourNotRewarded(event=event)
            return Rewarded(event=event, member_id=member.id, points=0, growth=0, awards=[], limited=[])
        if event == "birthday" and not is_birthday(member.birthday, at.astimezone(tx.tz).date()):
            raise NotBirthday()
        # one member's behaviour is counted one request at a time
        tx.session.refresh(member, with_for_update=True)
        if referee is not None:
            tx.session.refresh(referee, with_for_update=True)
        awarding = _Awarding(tx, tenant_id=tenant_id, program_version_id=published.id, program=program, at=at,
                             key=key, ref=ref)
        awards: list[Award] = []
        limited: list[str] = []
        for rule in rules:
            per = rule.limit.per if rule.limit else "lifetime"
            if rule.limit and _used(tx, tenant_id=tenant_id, member_id=member.id, rule=rule.code, role=event,
                                    period=period_key(per, awarding.local_day)) >= rule.limit.times:
                limited.append(rule.code)
                continue
            if rule.event == "referral":
                awards.extend(_referral(tx, awarding, rule, tenant_id=tenant_id, referrer=member, referee=referee))
                continue
            points, streak, parts = rule.points, 0, [f"{rule.name} {rule.points}"]
            if rule.event == "sign_in":
                streak = _streak(tx, tenant_id=tenant_id, member_id=member.id, rule=rule.code,
                                 today=awarding.local_day)
                for bonus in rule.streaks:
                    if streak % bonus.days == 0:
                        points += bonus.points
                        parts.append(f"连续签到{bonus.days}天 {bonus.points}")
            awards.append(awarding.give(rule, member_id=member.id, role=event, points=points, growth=rule.growth,
                                        streak=streak, explanation=" + ".join(parts)))
        if not awards:
            names = "、".join(r.name for r in rules)
            raise BehaviourLimitReached(name=names, rules=limited)
        tx.session.flush()
        mine = [a for a in awards if a.member_id == member.id]
        result = Rewarded(event=event, member_id=member.id, points=sum(a.points for a in mine),
                          growth=sum(a.growth for a in mine), awards=awards, limited=limited)
        jobs.emit(tx, tenant_id=tenant_id, topic="behaviour_rewarded", payload=result.model_dump(mode="json"))
        return result

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="behaviour.reward", request=request,
                                  model=Rewarded, run=run)


def _referral(tx: Tx, awarding: _Awarding, rule: BehaviourRule, *, tenant_id: int, referrer: Member,
              referee: Member | None) -> list[Award]:
    if referee is None or referee.id == referrer.id:
        raise InvalidReference(what="被推荐会员 / referred member")
    already = tx.session.scalar(
        select(func.count()).select_from(BehaviourAward).where(
            BehaviourAward.tenant_id == tenant_id, BehaviourAward.member_id == referee.id,
            BehaviourAward.role == "referee"))
    if already:
        raise AlreadyReferred()
    out = [awarding.give(rule, member_id=referrer.id, role="referral", points=rule.points, growth=rule.growth,
                         streak=0, explanation=f"{rule.name} {rule.points}")]
    out.append(awarding.give(rule, member_id=referee.id, role="referee", points=rule.referee_points, growth=0,
                             streak=0, explanation=f"{rule.name}（新会员）{rule.referee_points}"))
    return out


# --- the daily birthday run --------------------------------------------------------------------

BIRTHDAY_CHUNK = 500


def birthday_members(tx: Tx, *, tenant_id: int, today: date, after_id: int = 0, limit: int = BIRTHDAY_CHUNK) -> list[int]:
    """Active members whose birthday is ``today`` (29 February counts on 28 February in other
    years), in id order after ``after_id``."""
    days = [(today.month, today.day)]
    if (today.month, today.day) == (2, 28) and not _leap(today.year):
        days.append((2, 29))
    month, day = func.extract("month", Member.birthday), func.extract("day", Member.birthday)
    return list(tx.session.scalars(
        select(Member.id).where(
            Member.tenant_id == tenant_id, Member.status == "active", Member.id > after_id,
            or_(*[and_(month == m, day == d) for m, d in days]))
        .order_by(Member.id).limit(limit)
    ))


@jobs.handler("behaviour.birthdays")
def reward_birthdays(tx: Tx, payload: dict[str, Any]) -> None:
    """One chunk of the day's birthday rewards; the next chunk is a new job, so a crash resumes
    after the last member rewarded. Each member's reward is keyed by member and year: a rerun
    gives nothing twice. The last chunk schedules tomorrow's run."""
    tenant_id, today, after = payload["tenant_id"], date.fromisoformat(payload["day"]), payload.get("after", 0)
    program = program_service.current(tx, tenant_id=tenant_id).document
    if not any(r.event == "birthday" for r in program.earn.behaviours):
        ids = []
    else:
        ids = birthday_members(tx, tenant_id=tenant_id, today=today, after_id=after)
    at = tx.now()
    for member_id in ids:
        member = tx.session.get(Member, member_id)
        reward(tx, tenant_id=tenant_id, member=member, event="birthday", at=at,
               key=system_key("birthday", member_id, today.year), ref=f"birthday-{today.year}", required=False)
    if len(ids) == BIRTHDAY_CHUNK:
        jobs.enqueue(tx, kind="behaviour.birthdays", tenant_id=tenant_id, payload={**payload, "after": ids[-1]},
                     dedupe_key=f"birthdays:{tenant_id}:{today}:{ids[-1]}")
    else:
        schedule_birthdays(tx, tenant_id=tenant_id, day=today + timedelta(days=1))


def schedule_birthdays(tx: Tx, *, tenant_id: int, day: date) -> int:
    """The birthday run of ``day`` starts at 08:00 local time, once (deduplicated); returns
    whether it was scheduled now."""
    run_at = datetime.combine(day, time(8), tzinfo=tx.tz)
    return int(jobs.enqueue(tx, kind="behaviour.birthdays", tenant_id=tenant_id, payload={
        "tenant_id": tenant_id, "day": day.isoformat()}, run_at=run_at,
        dedupe_key=f"birthdays:{tenant_id}:{day}") is not None)


@jobs.scheduler
def schedule_birthday_runs(tx: Tx) -> int:
    """Today's birthday run for every tenant (idempotent; each run schedules the next day's)."""
    today = tx.now().astimezone(tx.tz).date()
    tenants = tx.session.scalars(select(Tenant.id).order_by(Tenant.id)).all()
    return sum(schedule_birthdays(tx, tenant_id=tenant_id, day=today) for tenant_id in tenants)
