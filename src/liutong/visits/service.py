"""Venue events that are not purchases, through the same engine as purchases.

* **Gate entry** (检票入园): a visit, and optionally the use of a benefit at the gate (a
  fast-lane pass, birthday free entry) against its quota.
* **Hotel check-in / check-out**: a stay. Points earned at the hotel stay pending (the hotel's
  refund window) until the guest checks out; check-out makes what the member earned at that
  hotel spendable at once.
* **Parking exit** (出场): the plate finds the member; the free-minutes benefit of their tier
  waives part of the fee (pro rata to the minutes it covers, rounded to the fen) and points may
  pay part of the rest under the program's redeem rules. The exit is a checkout at the parking
  gate — an order with one line, so it refunds, settles and reports like any sale.
* **Behaviour** (签到, 评价, 分享, 推荐, 任务): see ``program.behaviour``.

Every event is idempotent on the reporting system's own number.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select

from liutong.checkout import pricing
from liutong.checkout import service as checkout
from liutong.checkout.models import Order
from liutong.checkout.schemas import CartLine, CommitRequest, MemberRef, QuoteRequest
from liutong.errors import (
    BenefitNotHeld,
    MemberNotFound,
    StayNotOpen,
    UnknownVenue,
    WrongTerminalKind,
)
from liutong.jobs import service as jobs
from liutong.kit import idempotency
from liutong.kit.idempotency import system_key
from liutong.ledger import queries as ledger_queries
from liutong.ledger import service as ledger
from liutong.ledger.models import LotStatus, PointsLot
from liutong.members import activity, tiers
from liutong.members.models import Member
from liutong.organisation.auth import Principal
from liutong.organisation.models import TerminalKind, Venue, VenueFormat
from liutong.program import behaviour, benefits
from liutong.program import service as program_service
from liutong.program.rules import Benefit, ProgramDocument
from liutong.visits.models import Stay, VenueEvent
from liutong.visits.schemas import (
    BehaviourIn,
    BenefitUsed,
    BenefitUseIn,
    CheckInIn,
    CheckOutIn,
    GateEntryIn,
    ParkingExitCommit,
    ParkingExited,
    ParkingExitIn,
    ParkingQuote,
    StayOut,
    VenueEventOut,
)

if TYPE_CHECKING:
    from datetime import datetime

    from liutong.bootstrap import Tx

_KIND_NAMES = {TerminalKind.gate: "闸机 / gate", TerminalKind.front_desk: "前台 / front desk",
               TerminalKind.parking_gate: "停车场道闸 / parking gate"}


def _till(tx: Tx, principal: Principal, terminal_id: int | None, kind: TerminalKind) -> checkout.Till:
    till = checkout.resolve_till(tx, principal, terminal_id)
    if till.terminal.kind != kind.value:
        raise WrongTerminalKind(expected=_KIND_NAMES[kind])
    return till


def _held(program: ProgramDocument, tx: Tx, member: Member) -> list[Benefit]:
    growth = ledger_queries.growth(tx, tenant_id=member.tenant_id, member_id=member.id)
    return pricing.held_benefits(program, pricing.MemberView(tier_code=member.tier_code, growth=growth,
                                                             points_spendable=0))


def _applies_here(benefit: Benefit, till: checkout.Till) -> bool:
    return benefit.scope.matches(format=till.venue.format, venue=till.venue.code, merchant=till.merchant.code,
                                 category="", sku="")


def _event(tx: Tx, *, tenant_id: int, kind: str, event_no: str, till: checkout.Till, member_id: int | None,
           at: datetime, data: dict, order_id: int | None = None) -> VenueEvent:
    row = VenueEvent(tenant_id=tenant_id, event_no=event_no, kind=kind, terminal_id=till.terminal.id,
                     venue_id=till.venue.id, member_id=member_id, occurred_at=at, recorded_at=tx.now(),
                     order_id=order_id, data=data)
    tx.session.add(row)
    tx.session.flush()
    jobs.emit(tx, tenant_id=tenant_id, topic=kind, payload={
        "event_id": row.id, "member_id": member_id, "venue_id": till.venue.id, "venue_format": till.venue.format,
        "occurred_at": at.isoformat(), **data})
    return row


# --- behaviour ---------------------------------------------------------------------------------


def reward_behaviour(tx: Tx, *, principal: Principal, data: BehaviourIn, key: str) -> behaviour.Rewarded:
    tenant_id = principal.require_tenant()
    member = checkout.identify(tx, tenant_id=tenant_id, ref=data.member)
    referee = checkout.identify(tx, tenant_id=tenant_id, ref=data.referee) if data.referee else None
    place = None
    if data.venue or data.merchant:
        venue = None
        if data.venue:
            venue = tx.session.scalars(
                select(Venue).where(Venue.tenant_id == tenant_id, Venue.code == data.venue)).first()
            if venue is None:
                raise UnknownVenue(venue=data.venue)
        place = behaviour.Place(format=venue.format if venue else "", venue=data.venue or "",
                                merchant=data.merchant or "")
    return behaviour.reward(tx, tenant_id=tenant_id, member=member, event=data.event, at=tx.now(), key=key,
                            ref=data.ref, task=data.task, place=place, referee=referee)


# --- gates -------------------------------------------------------------------------------------


def gate_entry(tx: Tx, *, principal: Principal, data: GateEntryIn) -> VenueEventOut:
    tenant_id = principal.require_tenant()

    def run() -> VenueEventOut:
        till = _till(tx, principal, data.terminal_id, TerminalKind.gate)
        member = checkout.identify(tx, tenant_id=tenant_id, ref=data.member)
        at = data.at or tx.now()
        used, left = None, None
        if data.use_benefit:
            left = _use_benefit(tx, till=till, member=member, code=data.use_benefit, quantity=1, value=0, at=at)
            used = data.use_benefit
        row = _event(tx, tenant_id=tenant_id, kind="gate_entry", event_no=data.event_no, till=till,
                     member_id=member.id, at=at, data={"benefit": used})
        _visited(tx, member=member, at=at, reason=f"入园到访 / gate entry {data.event_no}")
        return VenueEventOut(event_id=row.id, event_no=row.event_no, kind=row.kind, member_id=member.id,
                             venue_id=till.venue.id, occurred_at=at, benefit_used=used, benefit_left=left)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=system_key("gate_entry", data.event_no),
                                  operation="venue.gate_entry", request=data.model_dump(mode="json"),
                                  model=VenueEventOut, run=run)


def _use_benefit(tx: Tx, *, till: checkout.Till, member: Member, code: str, quantity: int, value: int,
                 at: datetime) -> int | None:
    """Use a benefit the member holds here, under the member's row lock; returns what is left
    of its quota this period."""
    tx.session.refresh(member, with_for_update=True)
    program = program_service.current(tx, tenant_id=member.tenant_id).document
    benefit = next((b for b in _held(program, tx, member) if b.code == code and _applies_here(b, till)), None)
    if benefit is None or (benefit.kind == "birthday_gift" and not _birthday_month(member, at, tx)):
        raise BenefitNotHeld(benefit=code)
    return benefits.use(tx, tenant_id=member.tenant_id, member_id=member.id, benefit=benefit, quantity=quantity,
                        value=value, at=at)


def use_benefit(tx: Tx, *, principal: Principal, data: BenefitUseIn) -> BenefitUsed:
    """A benefit used at a front desk, lounge or counter without a sale (免费升房, 贵宾厅)."""
    tenant_id = principal.require_tenant()

    def run() -> BenefitUsed:
        till = checkout.resolve_till(tx, principal, data.terminal_id)
        member = checkout.identify(tx, tenant_id=tenant_id, ref=data.member)
        at = tx.now()
        left = _use_benefit(tx, till=till, member=member, code=data.benefit, quantity=data.quantity,
                            value=data.value, at=at)
        jobs.emit(tx, tenant_id=tenant_id, topic="benefit_used", payload={
            "member_id": member.id, "benefit": data.benefit, "quantity": data.quantity, "value": data.value,
            "venue_id": till.venue.id, "at": at.isoformat()})
        return BenefitUsed(use_no=data.use_no, member_id=member.id, benefit=data.benefit, quantity=data.quantity,
                           quota_left=left)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=system_key("benefit_use", data.use_no),
                                  operation="benefit.use", request=data.model_dump(mode="json"), model=BenefitUsed,
                                  run=run)


def _visited(tx: Tx, *, member: Member, at: datetime, reason: str) -> None:
    """A visit counts towards tiers qualified on visits, and may promote at once."""
    activity.record(tx, tenant_id=member.tenant_id, member_id=member.id, at=at, visit=True)
    tiers.check_promotion(tx, tenant_id=member.tenant_id, member_id=member.id, at=at, reason=reason)


def _birthday_month(member: Member, at: datetime, tx: Tx) -> bool:
    """Birthday gifts are honoured throughout the birthday month (生日当月)."""
    return member.birthday is not None and member.birthday.month == at.astimezone(tx.tz).month


# --- hotel stays -------------------------------------------------------------------------------


def _stay_out(stay: Stay, vested: int = 0) -> StayOut:
    return StayOut(stay_no=stay.stay_no, member_id=stay.member_id, venue_id=stay.venue_id, room=stay.room,
                   checked_in_at=stay.checked_in_at, checked_out_at=stay.checked_out_at, points_vested=vested)


def _require_hotel(till: checkout.Till) -> None:
    if till.venue.format != VenueFormat.hotel.value:
        raise WrongTerminalKind(expected="酒店前台 / hotel front desk")


def check_in(tx: Tx, *, principal: Principal, data: CheckInIn) -> StayOut:
    tenant_id = principal.require_tenant()

    def run() -> StayOut:
        till = _till(tx, principal, data.terminal_id, TerminalKind.front_desk)
        _require_hotel(till)
        member = checkout.identify(tx, tenant_id=tenant_id, ref=data.member)
        at = data.at or tx.now()
        stay = Stay(tenant_id=tenant_id, stay_no=data.stay_no, venue_id=till.venue.id, member_id=member.id,
                    room=data.room, checked_in_at=at)
        tx.session.add(stay)
        _event(tx, tenant_id=tenant_id, kind="check_in", event_no=f"{data.stay_no}:in", till=till,
               member_id=member.id, at=at, data={"stay_no": data.stay_no, "room": data.room})
        _visited(tx, member=member, at=at, reason=f"入住到访 / check-in {data.stay_no}")
        return _stay_out(stay)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=system_key("check_in", data.stay_no),
                                  operation="venue.check_in", request=data.model_dump(mode="json"), model=StayOut,
                                  run=run)


def check_out(tx: Tx, *, principal: Principal, data: CheckOutIn) -> StayOut:
    tenant_id = principal.require_tenant()

    def run() -> StayOut:
        till = _till(tx, principal, data.terminal_id, TerminalKind.front_desk)
        _require_hotel(till)
        stay = tx.session.scalars(
            select(Stay).where(Stay.tenant_id == tenant_id, Stay.stay_no == data.stay_no,
                               Stay.venue_id == till.venue.id).with_for_update()).first()
        if stay is None or stay.checked_out_at is not None:
            raise StayNotOpen(stay_no=data.stay_no)
        at = data.at or tx.now()
        stay.checked_out_at = at
        # what the guest earned at this hotel and is still waiting for its refund window
        sources = list(tx.session.scalars(
            select(PointsLot.source_entry_id).join(Order, Order.earn_entry_id == PointsLot.source_entry_id).where(
                Order.tenant_id == tenant_id, Order.member_id == stay.member_id, Order.venue_id == stay.venue_id,
                Order.occurred_at <= at, PointsLot.status == LotStatus.pending.value)))
        vested = 0
        if sources:
            result = ledger.vest_points(tx, tenant_id=tenant_id, member_id=stay.member_id, as_of=at,
                                        key=system_key("check_out", data.stay_no, "vest"), source_entry_ids=sources)
            vested = sum(lot.amount for lot in result.lots) if result else 0
        _event(tx, tenant_id=tenant_id, kind="check_out", event_no=f"{data.stay_no}:out", till=till,
               member_id=stay.member_id, at=at, data={"stay_no": data.stay_no, "points_vested": vested})
        return _stay_out(stay, vested)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=system_key("check_out", data.stay_no),
                                  operation="venue.check_out", request=data.model_dump(mode="json"), model=StayOut,
                                  run=run)


# --- parking -----------------------------------------------------------------------------------


def _parking(tx: Tx, principal: Principal, data: ParkingExitIn, *, locking: bool
             ) -> tuple[checkout.Till, Member | None, ParkingQuote, dict[int, pricing.Waiver], QuoteRequest]:
    tenant_id = principal.require_tenant()
    till = _till(tx, principal, data.terminal_id, TerminalKind.parking_gate)
    try:
        member = checkout.identify(tx, tenant_id=tenant_id, ref=MemberRef(plate=data.plate))
    except MemberNotFound:
        member = None  # a visitor's car pays the fee as it is
    minutes = math.ceil((data.exited_at - data.entered_at).total_seconds() / 60)
    waivers: dict[int, pricing.Waiver] = {}
    best, covered, left = None, 0, None
    if member is not None and minutes and data.fee:
        if locking:
            tx.session.refresh(member, with_for_update=True)
        program = program_service.current(tx, tenant_id=tenant_id).document
        offers = [(benefits.quota_left(tx, tenant_id=tenant_id, member_id=member.id, benefit=b, at=data.exited_at), b)
                  for b in _held(program, tx, member) if b.kind == "free_parking_minutes" and _applies_here(b, till)]
        offers = [(n if n is not None else minutes, b) for n, b in offers]
        if offers:
            most, best = max(offers, key=lambda o: (o[0], o[1].code))
            covered = min(minutes, most)
            left = most - covered
            if covered:
                waived = data.fee if covered == minutes else int(
                    (Decimal(data.fee) * covered / minutes).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                waivers[0] = pricing.Waiver(benefit=best.code, amount=waived, quantity=covered)
            else:
                best = None
    request = QuoteRequest(terminal_id=till.terminal.id,
                           member=MemberRef(member_id=member.id) if member else None,
                           lines=[CartLine(sku="parking-fee", category="parking", qty=1, unit_price=data.fee)],
                           points=data.points, at=data.exited_at)
    priced = checkout.quote(tx, principal=principal, data=request, waivers=waivers)
    quote = ParkingQuote(minutes=minutes, member_id=member.id if member else None,
                         free_minutes_benefit=best.code if best else None, free_minutes_used=covered,
                         free_minutes_left=left, quote=priced)
    return till, member, quote, waivers, request


def quote_parking_exit(tx: Tx, *, principal: Principal, data: ParkingExitIn) -> ParkingQuote:
    return _parking(tx, principal, data, locking=False)[2]


def parking_exit(tx: Tx, *, principal: Principal, data: ParkingExitCommit, actor: str) -> ParkingExited:
    tenant_id = principal.require_tenant()

    def run() -> ParkingExited:
        till, member, quote, waivers, request = _parking(tx, principal, data, locking=True)
        committed = checkout.commit(
            tx, principal=principal, actor=actor, waivers=waivers,
            data=CommitRequest(**request.model_dump(), order_no=data.event_no, payment=data.payment))
        row = _event(tx, tenant_id=tenant_id, kind="parking_exit", event_no=data.event_no, till=till,
                     member_id=member.id if member else None, at=data.exited_at, order_id=committed.order_id,
                     data={"minutes": quote.minutes, "free_minutes": quote.free_minutes_used,
                           "fee": data.fee, "paid": committed.quote.payable})
        return ParkingExited(**quote.model_dump(), event_id=row.id, committed=committed)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=system_key("parking_exit", data.event_no),
                                  operation="venue.parking_exit", request=data.model_dump(mode="json"),
                                  model=ParkingExited, run=run)
