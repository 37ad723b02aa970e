"""Checkout services. ``quote`` prices a basket for a member and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from liutong.checkout import pricing
from liutong.checkout.schemas import (
    MemberRef,
    Quote,
    QuotedEarn,
    QuotedEarnPart,
    QuotedLine,
    QuotedMember,
    QuotedPoints,
    QuoteRequest,
)
from liutong.errors import InvalidReference
from liutong.ledger import queries as ledger_queries
from liutong.members import service as members
from liutong.members.models import IdentityKind, Member
from liutong.organisation.auth import Principal
from liutong.organisation.models import Merchant, Terminal, Venue
from liutong.program import service as program_service

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


def quote(tx: Tx, *, principal: Principal, data: QuoteRequest) -> Quote:
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
    return Quote(
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
