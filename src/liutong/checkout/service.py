"""Checkout services: ``quote`` prices a basket and changes nothing; ``commit`` and ``refund``
write the order and every ledger entry it causes in the caller's one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from liutong.checkout import pricing
from liutong.checkout.models import Order, OrderLine, Refund
from liutong.checkout.schemas import (
    CommitRequest,
    Committed,
    MemberRef,
    Quote,
    QuotedEarn,
    QuotedEarnPart,
    QuotedLine,
    QuotedMember,
    QuotedPoints,
    QuoteRequest,
    Refunded,
    RefundRequest,
)
from liutong.errors import (
    InsufficientBalance,
    InvalidReference,
    NotFound,
    PaymentMismatch,
    PointsBelowMinimum,
    PointsBeyondBillCap,
    PointsNotAccepted,
    RefundExceedsOrder,
)
from liutong.jobs import service as jobs
from liutong.kit import idempotency
from liutong.kit.idempotency import system_key
from liutong.kit.money import allocate
from liutong.ledger import queries as ledger_queries
from liutong.ledger import service as ledger
from liutong.ledger.models import AccountKind, OwnerType
from liutong.ledger.schemas import LegIn
from liutong.members import activity
from liutong.members import service as members
from liutong.members import tiers
from liutong.members.models import IdentityKind, Member
from liutong.organisation.auth import Principal
from liutong.organisation.models import Merchant, Terminal, Venue
from liutong.program import benefits
from liutong.program import service as program_service
from liutong.program.rules import ProgramDocument

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


@dataclass(frozen=True)
class Till:
    terminal: Terminal
    merchant: Merchant
    venue: Venue

    @property
    def place(self) -> pricing.Place:
        return pricing.Place(merchant=self.merchant.code, venue=self.venue.code, format=self.venue.format)


def resolve_till(tx: Tx, principal: Principal, terminal_id: int | None) -> Till:
    """The terminal the sale happens at: the caller's own for a terminal key; otherwise the one
    named, which must be in the caller's tenant (and merchant, for a merchant key)."""
    tenant_id = principal.require_tenant()
    wanted = principal.terminal_id or terminal_id
    terminal = tx.session.get(Terminal, wanted) if wanted is not None else None
    if (terminal is None or terminal.tenant_id != tenant_id
            or (principal.merchant_id is not None and terminal.merchant_id != principal.merchant_id)
            or (principal.terminal_id is not None and terminal_id not in (None, principal.terminal_id))):
        raise InvalidReference(what="终端 / terminal")
    merchant = tx.session.get(Merchant, terminal.merchant_id)
    return Till(terminal=terminal, merchant=merchant, venue=tx.session.get(Venue, merchant.venue_id))


def identify(tx: Tx, *, tenant_id: int, ref: MemberRef) -> Member:
    if ref.member_code is not None:
        return members.resolve_code(tx, tenant_id=tenant_id, code=ref.member_code)
    if ref.phone is not None:
        member = members.lookup(tx, tenant_id=tenant_id, kind=IdentityKind.phone, value=ref.phone)
    elif ref.plate is not None:
        member = members.lookup(tx, tenant_id=tenant_id, kind=IdentityKind.plate, value=ref.plate)
    else:
        member = members.get(tx, tenant_id=tenant_id, member_id=ref.member_id)
    members.require_active(member)
    return member


@dataclass(frozen=True)
class _Priced:
    till: Till
    program_version_id: int
    program: ProgramDocument
    member: Member | None
    at: datetime
    priced: pricing.Priced
    quote: Quote


def _price(tx: Tx, principal: Principal, data: QuoteRequest) -> _Priced:
    tenant_id = principal.require_tenant()
    till = resolve_till(tx, principal, data.terminal_id)
    published = program_service.current(tx, tenant_id=tenant_id)
    program = published.document
    at = data.at or tx.now()
    member = identify(tx, tenant_id=tenant_id, ref=data.member) if data.member else None
    view = None
    quoted_member = None
    if member is not None:
        balances = ledger_queries.balances(tx, tenant_id=tenant_id, member_id=member.id)
        spendable = ledger_queries.spendable_points(tx, tenant_id=tenant_id, member_id=member.id, at=at)
        view = pricing.MemberView(tier_code=member.tier_code, growth=balances.growth, points_spendable=spendable)
        tier = program.tier(member.tier_code)
        quoted_member = QuotedMember(id=member.id, member_no=member.member_no, tier_code=tier.code,
                                     tier_name=tier.name, growth=balances.growth, points_spendable=spendable)
    priced = pricing.price(
        program, place=till.place, member=view, points_requested=data.points, at_local=at.astimezone(tx.tz),
        lines=[pricing.BasketLine(li.sku, li.category, li.qty, li.unit_price) for li in data.lines],
    )
    quote = Quote(
        program_version=published.version,
        merchant_id=till.merchant.id,
        venue_format=till.venue.format,
        member=quoted_member,
        lines=[QuotedLine(**vars(p)) for p in priced.lines],
        gross=priced.gross,
        discount=priced.discount,
        points=QuotedPoints(**vars(priced.points)),
        payable=priced.payable,
        earn=QuotedEarn(points=priced.earn.points, growth=priced.earn.growth, explanation=priced.earn.explanation,
                        parts=[QuotedEarnPart(rule=p.rule, label=p.label, points=p.points) for p in priced.earn.parts]),
        benefits_applied=list(priced.benefits_applied),
    )
    return _Priced(till, published.id, program, member, at, priced, quote)


def quote(tx: Tx, *, principal: Principal, data: QuoteRequest) -> Quote:
    return _price(tx, principal, data).quote


_REFUSALS = {
    "beyond_balance": lambda o, p: InsufficientBalance(available=o.max_usable, requested=o.requested),
    "beyond_bill_cap": lambda o, p: PointsBeyondBillCap(max_usable=o.max_usable),
    "below_minimum": lambda o, p: PointsBelowMinimum(min_points=p.redeem.min_points),
    "merchant_does_not_accept_points": lambda o, p: PointsNotAccepted(),
    "no_member": lambda o, p: PointsNotAccepted(),
}


def lot_terms(program: ProgramDocument, *, venue_format: str, at: datetime, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """(vests_at, expires_at) for points earned now in this format, per the program."""
    expiry = program.expiry
    if expiry.mode == "months_after_earning":
        expires = at + relativedelta(months=expiry.months)
    else:
        year_end = datetime(at.astimezone(tz).year + expiry.years, 12, 31, 23, 59, 59, tzinfo=tz)
        expires = year_end.astimezone(at.tzinfo)
    rule = program.vesting.get(venue_format)
    if rule is None or rule.mode == "immediate":
        return None, expires
    if rule.mode == "after_visit":  # the visit is the purchase day: vest at the next local midnight
        local = at.astimezone(tz)
        next_midnight = datetime(local.year, local.month, local.day, tzinfo=tz) + timedelta(days=1)
        return next_midnight.astimezone(at.tzinfo), expires
    # days_after; at_checkout waits at most ``days`` until the stay's check-out vests it
    return at + timedelta(days=rule.days or 1), expires


def commit(tx: Tx, *, principal: Principal, data: CommitRequest, actor: str) -> Committed:
    """Atomic and idempotent on the POS order number: the order, its lines, the points spent and
    earned (pending when the format has a refund window), and growth — all or nothing."""
    tenant_id = principal.require_tenant()

    def run() -> Committed:
        p = _price(tx, principal, data)
        offer = p.priced.points
        if offer.refused_because:
            raise _REFUSALS[offer.refused_because](offer, p.program)
        if data.payment.amount != p.priced.payable:
            raise PaymentMismatch(paid=data.payment.amount, payable=p.priced.payable)
        member_id = p.member.id if p.member else None
        order = Order(
            tenant_id=tenant_id, order_no=data.order_no, terminal_id=p.till.terminal.id,
            merchant_id=p.till.merchant.id, venue_id=p.till.venue.id, member_id=member_id,
            program_version_id=p.program_version_id, status="committed", occurred_at=p.at, recorded_at=tx.now(),
            gross=p.priced.gross, discount=p.priced.discount, points_used=offer.applied, points_value=offer.value,
            paid=p.priced.payable, payment_channel=data.payment.channel, payment_ref=data.payment.reference,
            points_earned=p.priced.earn.points if member_id else 0, growth_earned=p.priced.earn.growth if member_id else 0,
            earn_explanation=p.priced.earn.explanation[:500],
        )
        tx.session.add(order)
        tx.session.flush()
        lines = p.priced.lines
        points_split = allocate(offer.applied, [li.points_value for li in lines]) if offer.applied else [0] * len(lines)
        paid = [li.paid for li in lines]
        any_paid = sum(paid) > 0
        earned_split = allocate(order.points_earned, paid) if any_paid and order.points_earned else [0] * len(lines)
        growth_split = allocate(order.growth_earned, paid) if any_paid and order.growth_earned else [0] * len(lines)
        for n, (li, pts, earned, growth) in enumerate(zip(lines, points_split, earned_split, growth_split, strict=True), 1):
            tx.session.add(OrderLine(
                tenant_id=tenant_id, order_id=order.id, line_no=n, sku=li.sku, category=li.category, qty=li.qty,
                unit_price=li.unit_price, gross=li.gross, discount=li.discount, discount_benefit=li.discount_benefit,
                points_value=li.points_value, points_used=pts, paid=li.paid, points_earned=earned,
                growth_earned=growth, refunded_qty=0, refunded_paid=0, refunded_points=0, clawed_points=0,
                clawed_growth=0,
            ))
        pending = False
        promoted = None
        if member_id is not None:
            if offer.applied:
                order.spend_entry_id = ledger.spend_points(
                    tx, tenant_id=tenant_id, member_id=member_id, points=offer.applied, effective_at=p.at,
                    key=system_key("order", data.order_no, "spend"), ref=data.order_no,
                    memo=f"积分抵现 / points paid {offer.value} fen").entry_id
            if order.points_earned:
                vests_at, expires_at = lot_terms(p.program, venue_format=p.till.venue.format, at=p.at, tz=tx.tz)
                pending = vests_at is not None and vests_at > p.at
                order.earn_entry_id = ledger.earn_points(
                    tx, tenant_id=tenant_id, member_id=member_id, issuer_entity_id=p.till.merchant.entity_id,
                    points=order.points_earned, key=system_key("order", data.order_no, "earn"), effective_at=p.at,
                    expires_at=expires_at, vests_at=vests_at, ref=data.order_no,
                    memo=p.priced.earn.explanation[:200]).entry_id
            if order.growth_earned:
                order.growth_entry_id = _move_growth(tx, tenant_id=tenant_id, member_id=member_id,
                                                     amount=order.growth_earned, ref=data.order_no,
                                                     key=system_key("order", data.order_no, "growth"))
            held = {b.code: b for b in p.program.benefits}
            for code in p.priced.benefits_applied:
                saved = sum(li.discount for li in p.priced.lines if li.discount_benefit == code)
                benefits.record_use(tx, tenant_id=tenant_id, member_id=member_id, benefit=held[code], quantity=1,
                                    value=saved, at=p.at, order_id=order.id)
            tx.session.flush()
            activity.record(tx, tenant_id=tenant_id, member_id=member_id, at=p.at, spend_fen=order.paid,
                            points_earned=order.points_earned, purchases=1, visit=True)
            promoted = tiers.promote_if_earned(tx, member=p.member, program=p.program,
                                               program_version_id=p.program_version_id, at=p.at,
                                               reason=f"消费升级 / purchase {data.order_no}")
        tx.session.flush()
        # What follows a sale (journeys, webhooks, messages) starts from these, after commit.
        jobs.emit(tx, tenant_id=tenant_id, topic="purchase", payload={
            "order_id": order.id, "order_no": order.order_no, "member_id": member_id, "merchant_id": order.merchant_id,
            "venue_format": p.till.venue.format, "gross": order.gross, "paid": order.paid,
            "occurred_at": p.at.isoformat()})
        if order.earn_entry_id:
            jobs.emit(tx, tenant_id=tenant_id, topic="points_earned", payload={
                "member_id": member_id, "order_id": order.id, "points": order.points_earned, "pending": pending,
                "entry_id": order.earn_entry_id})
        return Committed(order_id=order.id, order_no=order.order_no, quote=p.quote,
                         spend_entry_id=order.spend_entry_id, earn_entry_id=order.earn_entry_id,
                         growth_entry_id=order.growth_entry_id, points_pending=pending, promoted_to=promoted)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=data.order_no, operation="checkout.commit",
                                  request=data.model_dump(mode="json"), model=Committed, run=run)


def _move_growth(tx: Tx, *, tenant_id: int, member_id: int, amount: int, ref: str, key: str) -> int:
    """Growth value is earned (or, negative, taken back) against the tenant's growth account."""
    member_account = ledger.account_id(tx, tenant_id=tenant_id, owner_type=OwnerType.member, owner_id=member_id,
                                       kind=AccountKind.growth)
    system = ledger.account_id(tx, tenant_id=tenant_id, owner_type=OwnerType.system, owner_id=0,
                               kind=AccountKind.growth_issued)
    return ledger.post_entry(
        tx, tenant_id=tenant_id, key=key, kind="growth", member_id=member_id, ref=ref,
        legs=[LegIn(account_id=member_account, amount=amount), LegIn(account_id=system, amount=-amount)],
        memo="成长值 / growth value",
    ).entry_id


def refund(tx: Tx, *, principal: Principal, data: RefundRequest) -> Refunded:
    """Refund a whole order or some of its lines, idempotent on the refund number.

    Each line gives back its share of money, of points used and of points and growth earned
    in proportion to the quantity refunded out of what is still unrefunded, and the last
    refund of a line gives back all that is left, so partial refunds add up to the order.
    """
    tenant_id = principal.require_tenant()

    def run() -> Refunded:
        order = tx.session.scalars(
            select(Order).where(Order.tenant_id == tenant_id, Order.order_no == data.order_no).with_for_update()
        ).first()
        if order is None or (principal.merchant_id is not None and order.merchant_id != principal.merchant_id):
            raise NotFound(what="订单 / order")
        lines = {li.line_no: li for li in tx.session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no))}
        wanted = ({r.line_no: r.qty for r in data.lines} if data.lines
                  else {n: li.qty - li.refunded_qty for n, li in lines.items() if li.qty > li.refunded_qty})
        if not wanted:
            raise RefundExceedsOrder(line_no=0, left=0)
        totals = {"paid": 0, "points": 0, "clawed": 0, "growth": 0}
        for line_no, qty in sorted(wanted.items()):
            line = lines.get(line_no)
            left = (line.qty - line.refunded_qty) if line else 0
            if line is None or qty > left:
                raise RefundExceedsOrder(line_no=line_no, left=left)
            share = {
                "paid": _share(line.paid - line.refunded_paid, qty, left),
                "points": _share(line.points_used - line.refunded_points, qty, left),
                "clawed": _share(line.points_earned - line.clawed_points, qty, left),
                "growth": _share(line.growth_earned - line.clawed_growth, qty, left),
            }
            line.refunded_qty += qty
            line.refunded_paid += share["paid"]
            line.refunded_points += share["points"]
            line.clawed_points += share["clawed"]
            line.clawed_growth += share["growth"]
            for k, v in share.items():
                totals[k] += v
        row = Refund(tenant_id=tenant_id, refund_no=data.refund_no, order_id=order.id, occurred_at=tx.now(),
                     paid_back=totals["paid"], points_back=totals["points"], points_clawed=0, growth_clawed=0)
        if totals["points"]:
            row.restore_entry_id = ledger.restore_points(
                tx, tenant_id=tenant_id, spend_entry_id=order.spend_entry_id, points=totals["points"],
                key=system_key("refund", data.refund_no, "restore"), ref=data.order_no).entry_id
        if totals["clawed"]:
            clawed = ledger.claw_back_points(
                tx, tenant_id=tenant_id, earn_entry_id=order.earn_entry_id, points=totals["clawed"],
                key=system_key("refund", data.refund_no, "claw_back"), ref=data.order_no)
            row.claw_back_entry_id = clawed.entry_id or None
            row.points_clawed = -sum(c.amount for c in clawed.lots)
        if totals["growth"]:
            available = ledger_queries.balances(tx, tenant_id=tenant_id, member_id=order.member_id).growth
            take = min(available, totals["growth"])  # growth never goes below zero
            if take:
                row.growth_entry_id = _move_growth(tx, tenant_id=tenant_id, member_id=order.member_id, amount=-take,
                                                   ref=data.order_no, key=system_key("refund", data.refund_no, "growth"))
            row.growth_clawed = take
        order.status = "refunded" if all(li.refunded_qty == li.qty for li in lines.values()) else "partially_refunded"
        if order.status == "refunded":
            benefits.return_uses(tx, tenant_id=tenant_id, order_id=order.id, at=tx.now())
        tx.session.add(row)
        if order.member_id is not None:  # netted on the order's day: its spend and points are worth less
            activity.record(tx, tenant_id=tenant_id, member_id=order.member_id, at=order.occurred_at,
                            spend_fen=-row.paid_back, points_earned=-row.points_clawed)
        tx.session.flush()
        jobs.emit(tx, tenant_id=tenant_id, topic="refund", payload={
            "refund_id": row.id, "order_id": order.id, "member_id": order.member_id, "paid_back": row.paid_back,
            "points_back": row.points_back, "points_clawed": row.points_clawed})
        return Refunded(refund_id=row.id, refund_no=row.refund_no, order_no=order.order_no, order_status=order.status,
                        paid_back=row.paid_back, points_back=row.points_back, points_clawed=row.points_clawed,
                        growth_clawed=row.growth_clawed)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=data.refund_no, operation="checkout.refund",
                                  request=data.model_dump(mode="json"), model=Refunded, run=run)


def _share(remaining: int, qty: int, left: int) -> int:
    """This refund's part of what a line still holds: all of it on the last units."""
    return remaining if qty == left else remaining * qty // left
