"""Checkout services: ``quote`` prices a basket and changes nothing; ``commit`` and ``refund``
write the order and every ledger entry it causes in the caller's one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from liutong.checkout import pricing
from liutong.checkout.models import Order, OrderLine, Refund
from liutong.checkout.schemas import (
    CartLine,
    CommitRequest,
    Committed,
    MemberRef,
    Quote,
    QuotedEarn,
    QuotedEarnPart,
    QuotedLine,
    QuotedMember,
    QuotedPoints,
    QuotedStoredValue,
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
    StoredValueBeyondBill,
    StoredValueNotAccepted,
    UnknownVenue,
)
from liutong.jobs import service as jobs
from liutong.kit import idempotency
from liutong.kit.idempotency import system_key
from liutong.kit.money import allocate
from liutong.ledger import queries as ledger_queries
from liutong.ledger import service as ledger
from liutong.members import activity
from liutong.members import service as members
from liutong.members import lists as member_lists
from liutong.members import tiers
from liutong.members.models import IdentityKind, Member
from liutong.organisation.auth import Principal
from liutong.organisation.models import Merchant, Terminal, Venue
from liutong.program import benefits, budgets, engine
from liutong.program import service as program_service
from liutong.program.rules import Campaign, ProgramDocument
from liutong.storedvalue import service as stored_value

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
    found = tx.session.execute(
        select(Terminal, Merchant, Venue).join(Merchant, Merchant.id == Terminal.merchant_id)
        .join(Venue, Venue.id == Merchant.venue_id).where(Terminal.id == wanted, Terminal.tenant_id == tenant_id)
    ).first() if wanted is not None else None
    if (found is None
            or (principal.merchant_id is not None and found.Terminal.merchant_id != principal.merchant_id)
            or (principal.terminal_id is not None and terminal_id not in (None, principal.terminal_id))):
        raise InvalidReference(what="终端 / terminal")
    return Till(terminal=found.Terminal, merchant=found.Merchant, venue=found.Venue)


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
    #: Campaigns running for this member at this moment (their budgets are consumed at commit).
    campaigns: list[Campaign]


def _line_places(tx: Tx, *, tenant_id: int, till: Till, lines: Sequence[CartLine]) -> list[pricing.Place | None]:
    """The venue each line is sold for, when it names one other than the till's."""
    codes = {li.venue for li in lines if li.venue and li.venue != till.venue.code}
    if not codes:
        return [None] * len(lines)
    venues = {v.code: v for v in tx.session.scalars(
        select(Venue).where(Venue.tenant_id == tenant_id, Venue.code.in_(codes)))}
    unknown = sorted(codes - venues.keys())
    if unknown:
        raise UnknownVenue(venue=unknown[0])
    return [pricing.Place(merchant=till.merchant.code, venue=li.venue, format=venues[li.venue].format)
            if li.venue in venues else None for li in lines]


def _price(tx: Tx, principal: Principal, data: QuoteRequest, *, locking: bool = False,
           waivers: Mapping[int, pricing.Waiver] | None = None) -> _Priced:
    """Price the request. ``locking`` (commit) locks the member's row, then the budgets of the
    campaigns that apply, until the transaction ends — the member row is always locked before
    the member's ledger accounts, so commits, benefit uses and behaviour rewards of one member
    queue up instead of deadlocking. ``waivers`` are amount discounts by line position."""
    tenant_id = principal.require_tenant()
    till = resolve_till(tx, principal, data.terminal_id)
    published = program_service.current(tx, tenant_id=tenant_id)
    program = published.document
    at = data.at or tx.now()
    places = _line_places(tx, tenant_id=tenant_id, till=till, lines=data.lines)
    member = identify(tx, tenant_id=tenant_id, ref=data.member) if data.member else None
    if locking and member is not None:
        tx.session.refresh(member, with_for_update=True)
    view = None
    quoted_member = None
    campaigns: list[Campaign] = []
    budgets_left = None
    if member is not None:
        growth, spendable = ledger_queries.growth_and_spendable(tx, tenant_id=tenant_id, member_id=member.id, at=at)
        targeted = engine.lists_in_play(program, at_local=at.astimezone(tx.tz))
        on_lists = member_lists.lists_of(tx, tenant_id=tenant_id, member_id=member.id, codes=targeted)
        view = pricing.MemberView(tier_code=member.tier_code, growth=growth, points_spendable=spendable,
                                  lists=on_lists)
        tier = program.tier(member.tier_code)
        quoted_member = QuotedMember(id=member.id, member_no=member.member_no, tier_code=tier.code,
                                     tier_name=tier.name, growth=growth, points_spendable=spendable)
        campaigns = engine.active_campaigns(program, at_local=at.astimezone(tx.tz), tier_code=tier.code,
                                            member_lists=on_lists)
        budgets_left = budgets.left(tx, tenant_id=tenant_id, member_id=member.id, campaigns=campaigns,
                                    lock=locking) or None
    waivers = waivers or {}
    priced = pricing.price(
        program, place=till.place, member=view, points_requested=data.points, at_local=at.astimezone(tx.tz),
        lines=[pricing.BasketLine(li.sku, li.category, li.qty, li.unit_price, place=place, waiver=waivers.get(i))
               for i, (li, place) in enumerate(zip(data.lines, places, strict=True))],
        budgets_left=budgets_left,
    )
    stored = _stored_value(tx, tenant_id=tenant_id, member=member, till=till, at=at, requested=data.stored_value,
                           payable=priced.payable, program=(published.id, program))
    quote = Quote(
        program_version=published.version,
        merchant_id=till.merchant.id,
        venue_format=till.venue.format,
        member=quoted_member,
        lines=[QuotedLine(**vars(p)) for p in priced.lines],
        gross=priced.gross,
        discount=priced.discount,
        points=QuotedPoints(**vars(priced.points)),
        stored_value=stored,
        payable=priced.payable - stored.applied,
        earn=QuotedEarn(points=priced.earn.points, growth=priced.earn.growth, explanation=priced.earn.explanation,
                        parts=[QuotedEarnPart(rule=p.rule, label=p.label, points=p.points) for p in priced.earn.parts]),
        benefits_applied=list(priced.benefits_applied),
    )
    return _Priced(till, published.id, program, member, at, priced, quote, campaigns)


def _stored_value(tx: Tx, *, tenant_id: int, member: Member | None, till: Till, at: datetime, requested: int,
                  payable: int, program: tuple[int, ProgramDocument]) -> QuotedStoredValue:
    """What stored value pays of the bill left after discounts and points: what the member
    asked for, when the merchant takes it and the balance covers it; the quote says why not."""
    if member is None:
        return QuotedStoredValue(requested=requested, available=0, applied=0, principal=0, bonus=0,
                                 refused_because="no_member" if requested else None)
    amount = requested if 0 < requested <= payable else None
    offer = stored_value.offer(tx, tenant_id=tenant_id, member_id=member.id, merchant_id=till.merchant.id,
                               amount=amount, at=at, program=program)
    refused = offer.refused_because if requested else None
    if requested and refused is None and amount is None:
        refused = "beyond_bill"
    applied = requested if requested and refused is None else 0
    return QuotedStoredValue(requested=requested, available=offer.principal + offer.bonus_spendable, applied=applied,
                             principal=offer.principal_used or 0 if applied else 0,
                             bonus=offer.bonus_used or 0 if applied else 0, refused_because=refused)


def quote(tx: Tx, *, principal: Principal, data: QuoteRequest,
          waivers: Mapping[int, pricing.Waiver] | None = None) -> Quote:
    return _price(tx, principal, data, waivers=waivers).quote


_REFUSALS = {
    "beyond_balance": lambda o, p: InsufficientBalance(available=o.max_usable, requested=o.requested),
    "beyond_bill_cap": lambda o, p: PointsBeyondBillCap(max_usable=o.max_usable),
    "below_minimum": lambda o, p: PointsBelowMinimum(min_points=p.redeem.min_points),
    "merchant_does_not_accept_points": lambda o, p: PointsNotAccepted(),
    "no_member": lambda o, p: PointsNotAccepted(),
}
_SV_REFUSALS = {
    "beyond_balance": lambda o, q, m: InsufficientBalance(available=o.available, requested=o.requested),
    "beyond_bill": lambda o, q, m: StoredValueBeyondBill(requested=o.requested, payable=q.payable + o.applied),
    "merchant_does_not_accept_stored_value": lambda o, q, m: StoredValueNotAccepted(merchant=m),
    "no_member": lambda o, q, m: StoredValueNotAccepted(merchant=m),
}


def commit(tx: Tx, *, principal: Principal, data: CommitRequest, actor: str,
           waivers: Mapping[int, pricing.Waiver] | None = None) -> Committed:
    """Atomic and idempotent on the POS order number: the order, its lines, the points spent and
    earned (pending when the format has a refund window), and growth — all or nothing.
    ``waivers`` are benefit discounts by amount that the caller worked out (parking minutes)."""
    tenant_id = principal.require_tenant()

    def run() -> Committed:
        p = _price(tx, principal, data, locking=True, waivers=waivers)
        offer = p.priced.points
        if offer.refused_because:
            raise _REFUSALS[offer.refused_because](offer, p.program)
        sv = p.quote.stored_value
        if sv.refused_because:
            raise _SV_REFUSALS[sv.refused_because](sv, p.quote, p.till.merchant.code)
        if data.payment.amount != p.quote.payable:
            raise PaymentMismatch(paid=data.payment.amount, payable=p.quote.payable)
        member_id = p.member.id if p.member else None
        earned = p.priced.earn.points if member_id else 0
        growth = p.priced.earn.growth if member_id else 0
        spend_entry_id = earn_entry_id = growth_entry_id = None
        pending = False
        # The ledger first (the order row records its entries); the order number's own claim
        # covers the entries' derived keys.
        if member_id is not None and offer.applied:
            spend_entry_id = ledger.spend_points(
                tx, tenant_id=tenant_id, member_id=member_id, points=offer.applied, effective_at=p.at,
                key=system_key("order", data.order_no, "spend"), ref=data.order_no, covered=True,
                memo=f"积分抵现 / points paid {offer.value} fen").entry_id
        if earned:
            vests_at, expires_at = engine.lot_terms(p.program, venue_format=p.till.venue.format, at=p.at, tz=tx.tz)
            pending = vests_at is not None and vests_at > p.at
            earn_entry_id = growth_entry_id = ledger.earn_points(
                tx, tenant_id=tenant_id, member_id=member_id, issuer_entity_id=p.till.merchant.entity_id,
                points=earned, growth=growth, key=system_key("order", data.order_no, "earn"), effective_at=p.at,
                expires_at=expires_at, vests_at=vests_at, ref=data.order_no, covered=True,
                memo=p.priced.earn.explanation[:200]).entry_id
        elif growth:
            growth_entry_id = ledger.move_growth(tx, tenant_id=tenant_id, member_id=member_id, amount=growth,
                                                 ref=data.order_no, key=system_key("order", data.order_no, "growth"))
        sv_payment_id = None
        if sv.applied:
            sv_payment_id = stored_value.pay(
                tx, tenant_id=tenant_id, member_id=member_id, merchant_id=p.till.merchant.id, amount=sv.applied,
                order_ref=data.order_no, key=system_key("order", data.order_no, "sv"), at=p.at,
                program=(p.program_version_id, p.program)).payment_id
        order_id = tx.session.execute(insert(Order).values(
            tenant_id=tenant_id, order_no=data.order_no, terminal_id=p.till.terminal.id,
            merchant_id=p.till.merchant.id, venue_id=p.till.venue.id, member_id=member_id,
            program_version_id=p.program_version_id, status="committed", occurred_at=p.at, recorded_at=tx.now(),
            gross=p.priced.gross, discount=p.priced.discount, points_used=offer.applied, points_value=offer.value,
            paid=p.priced.payable, payment_channel=data.payment.channel, payment_ref=data.payment.reference,
            points_earned=earned, growth_earned=growth, earn_explanation=p.priced.earn.explanation[:500],
            spend_entry_id=spend_entry_id, earn_entry_id=earn_entry_id, growth_entry_id=growth_entry_id,
            stored_value=sv.applied, sv_payment_id=sv_payment_id,
        ).returning(Order.id)).scalar_one()
        tx.session.execute(insert(OrderLine), _order_lines(
            tenant_id, order_id, p.priced.lines, points_used=offer.applied, points_earned=earned, growth=growth,
            stored_value=sv.applied))
        promoted = None
        if member_id is not None:
            budgets.consume(tx, tenant_id=tenant_id, member_id=member_id, campaigns=p.campaigns,
                            given={part.rule: part.points for part in p.priced.earn.parts})
            held = {b.code: b for b in p.program.benefits}
            quantities = {w.benefit: w.quantity for w in (waivers or {}).values()}
            for code in p.priced.benefits_applied:
                saved = sum(li.discount for li in p.priced.lines if li.discount_benefit == code)
                benefits.record_use(tx, tenant_id=tenant_id, member_id=member_id, benefit=held[code],
                                    quantity=quantities.get(code, 1), value=saved, at=p.at, order_id=order_id)
            activity.record(tx, tenant_id=tenant_id, member_id=member_id, at=p.at, spend_fen=p.priced.payable,
                            points_earned=earned, purchases=1, visit=True)
            # priced under the member's lock taken in _price: growth is what was read then, plus this sale's
            promoted = tiers.promote_if_earned(tx, member=p.member, program=p.program,
                                               program_version_id=p.program_version_id, at=p.at,
                                               reason=f"消费升级 / purchase {data.order_no}",
                                               growth=p.quote.member.growth + growth)
        # What follows a sale (journeys, webhooks, messages) starts from these, after commit.
        jobs.emit(tx, tenant_id=tenant_id, topic="purchase", payload={
            "order_id": order_id, "order_no": data.order_no, "member_id": member_id,
            "merchant_id": p.till.merchant.id, "venue_format": p.till.venue.format, "gross": p.priced.gross,
            "paid": p.priced.payable, "occurred_at": p.at.isoformat()})
        if earn_entry_id:
            jobs.emit(tx, tenant_id=tenant_id, topic="points_earned", payload={
                "member_id": member_id, "order_id": order_id, "points": earned, "pending": pending,
                "entry_id": earn_entry_id})
        return Committed(order_id=order_id, order_no=data.order_no, quote=p.quote, spend_entry_id=spend_entry_id,
                         earn_entry_id=earn_entry_id, growth_entry_id=growth_entry_id, points_pending=pending,
                         sv_payment_id=sv_payment_id, promoted_to=promoted)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=data.order_no, operation="checkout.commit",
                                  request=data.model_dump(mode="json"), model=Committed, run=run)


def _order_lines(tenant_id: int, order_id: int, lines: Sequence[pricing.PricedLine], *, points_used: int,
                 points_earned: int, growth: int, stored_value: int) -> list[dict]:
    """Order line rows: points used spread by the points' value on each line; stored value,
    points and growth earned by what money and stored value paid on each line — largest
    remainder, so lines add up to the order."""
    n = len(lines)
    paid = [li.paid for li in lines]
    any_paid = sum(paid) > 0
    points_split = allocate(points_used, [li.points_value for li in lines]) if points_used else [0] * n
    sv_split = allocate(stored_value, paid) if stored_value else [0] * n
    earned_split = allocate(points_earned, paid) if any_paid and points_earned else [0] * n
    growth_split = allocate(growth, paid) if any_paid and growth else [0] * n
    return [
        {"tenant_id": tenant_id, "order_id": order_id, "line_no": no, "sku": li.sku, "category": li.category,
         "qty": li.qty, "unit_price": li.unit_price, "gross": li.gross, "discount": li.discount,
         "discount_benefit": li.discount_benefit, "points_value": li.points_value, "points_used": pts,
         "paid": li.paid, "stored_value": sv, "points_earned": earned, "growth_earned": grown, "refunded_qty": 0,
         "refunded_paid": 0, "refunded_stored_value": 0, "refunded_points": 0, "clawed_points": 0,
         "clawed_growth": 0}
        for no, (li, pts, sv, earned, grown) in enumerate(
            zip(lines, points_split, sv_split, earned_split, growth_split, strict=True), 1)
    ]


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
        totals = {"paid": 0, "sv": 0, "points": 0, "clawed": 0, "growth": 0}
        for line_no, qty in sorted(wanted.items()):
            line = lines.get(line_no)
            left = (line.qty - line.refunded_qty) if line else 0
            if line is None or qty > left:
                raise RefundExceedsOrder(line_no=line_no, left=left)
            share = {
                "paid": _share(line.paid - line.refunded_paid, qty, left),
                "sv": _share(line.stored_value - line.refunded_stored_value, qty, left),
                "points": _share(line.points_used - line.refunded_points, qty, left),
                "clawed": _share(line.points_earned - line.clawed_points, qty, left),
                "growth": _share(line.growth_earned - line.clawed_growth, qty, left),
            }
            line.refunded_qty += qty
            line.refunded_paid += share["paid"]
            line.refunded_stored_value += share["sv"]
            line.refunded_points += share["points"]
            line.clawed_points += share["clawed"]
            line.clawed_growth += share["growth"]
            for k, v in share.items():
                totals[k] += v
        # what was paid comes back the way it came: stored value to the balance, the rest to the channel
        row = Refund(tenant_id=tenant_id, refund_no=data.refund_no, order_id=order.id, occurred_at=tx.now(),
                     paid_back=totals["paid"] - totals["sv"], stored_value_back=totals["sv"],
                     points_back=totals["points"], points_clawed=0, points_unrecovered=0, deducted=0, growth_clawed=0)
        if totals["sv"]:
            stored_value.refund_payment(tx, tenant_id=tenant_id, payment_id=order.sv_payment_id, amount=totals["sv"],
                                        refund_ref=data.refund_no, key=system_key("refund", data.refund_no, "sv"))
        if totals["points"]:
            row.restore_entry_id = ledger.restore_points(
                tx, tenant_id=tenant_id, spend_entry_id=order.spend_entry_id, points=totals["points"],
                key=system_key("refund", data.refund_no, "restore"), ref=data.order_no).entry_id
        if totals["clawed"]:
            program = program_service.by_id(tx, tenant_id=tenant_id, version_id=order.program_version_id).document
            policy = program.refund.spent_points
            clawed = ledger.claw_back_points(
                tx, tenant_id=tenant_id, earn_entry_id=order.earn_entry_id, points=totals["clawed"],
                key=system_key("refund", data.refund_no, "claw_back"), ref=data.order_no,
                other_lots=policy == "other_lots")
            row.claw_back_entry_id = clawed.entry_id or None
            row.points_clawed = -sum(c.amount for c in clawed.lots)
            row.points_unrecovered = totals["clawed"] - row.points_clawed
            if policy == "deduct_from_refund":
                row.deducted = min(row.paid_back, pricing.fen_per_points(program, row.points_unrecovered))
                row.paid_back -= row.deducted
        if totals["growth"]:
            available = ledger_queries.growth(tx, tenant_id=tenant_id, member_id=order.member_id)
            take = min(available, totals["growth"])  # growth never goes below zero
            if take:
                row.growth_entry_id = ledger.move_growth(
                    tx, tenant_id=tenant_id, member_id=order.member_id, amount=-take, ref=data.order_no,
                    key=system_key("refund", data.refund_no, "growth"))
            row.growth_clawed = take
        order.status = "refunded" if all(li.refunded_qty == li.qty for li in lines.values()) else "partially_refunded"
        if order.status == "refunded":
            benefits.return_uses(tx, tenant_id=tenant_id, order_id=order.id, at=tx.now())
        tx.session.add(row)
        if order.member_id is not None:  # netted on the order's day: its spend and points are worth less
            activity.record(tx, tenant_id=tenant_id, member_id=order.member_id, at=order.occurred_at,
                            spend_fen=-(row.paid_back + row.stored_value_back), points_earned=-row.points_clawed)
        tx.session.flush()
        jobs.emit(tx, tenant_id=tenant_id, topic="refund", payload={
            "refund_id": row.id, "order_id": order.id, "member_id": order.member_id, "paid_back": row.paid_back,
            "stored_value_back": row.stored_value_back,
            "points_back": row.points_back, "points_clawed": row.points_clawed, "deducted": row.deducted})
        return Refunded(refund_id=row.id, refund_no=row.refund_no, order_no=order.order_no, order_status=order.status,
                        paid_back=row.paid_back, stored_value_back=row.stored_value_back, points_back=row.points_back, points_clawed=row.points_clawed,
                        points_unrecovered=row.points_unrecovered, deducted=row.deducted,
                        growth_clawed=row.growth_clawed)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=data.refund_no, operation="checkout.refund",
                                  request=data.model_dump(mode="json"), model=Refunded, run=run)


def _share(remaining: int, qty: int, left: int) -> int:
    """This refund's part of what a line still holds: all of it on the last units."""
    return remaining if qty == left else remaining * qty // left
