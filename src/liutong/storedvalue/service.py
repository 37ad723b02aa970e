"""Stored-value writes: recharge, pay, refund a payment, cash out, expire bonus.

How the ledger sees it. A member holds stored value in two accounts, ``sv_principal`` (本金)
and ``sv_bonus`` (赠送金), cached balances that never go below zero. Each issuing entity has
the mirror image: ``sv_issued`` for principal and ``sv_bonus_issued`` for bonus. A recharge
credits the member and debits the issuer; a payment, a cash-out or a lapse does the reverse;
a refund of a payment does the recharge direction again. So at every moment

    Σ members' sv_principal = −Σ issuers' sv_issued          (principal outstanding)
    Σ members' sv_bonus     = −Σ issuers' sv_bonus_issued    (bonus outstanding)

and, per issuer, −sv_issued equals the principal remaining in the lots it issued, which is
what ``liutong ledger verify`` checks and what the escrow report reads. The money of the
external payment itself is the channel's and settlement's business: the recharge records the
channel and its reference (one reference recharges once).

Every operation claims its idempotency key, then locks the member's accounts (the ledger's one
lock order), reads the member's lots under that lock, plans with the pure functions of
``plan``, and writes the entry, the lot changes and its own record in the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import and_, bindparam, func, insert, select, update

from liutong.db import insert_or_ignore
from liutong.errors import (
    CashOutNotAllowed,
    InsufficientBalance,
    InvalidAmount,
    InvalidReference,
    NotFound,
    NothingToCashOut,
    PaymentAlreadyRecharged,
    RechargeOutOfRange,
    RefundExceedsPayment,
    StoredValueCapExceeded,
    StoredValueNotAccepted,
)
from liutong.kit import idempotency
from liutong.kit.money import yuan
from liutong.ledger import service as ledger
from liutong.ledger.models import Account, AccountKind, OwnerType
from liutong.ledger.service import Held, Leg
from liutong.organisation.models import Merchant
from liutong.program import service as program_service
from liutong.program.rules import ProgramDocument, RechargeBonusTier, StoredValueRules
from liutong.storedvalue import plan
from liutong.storedvalue.models import (
    StoredValueCashOut,
    StoredValueLot,
    StoredValueMovement,
    StoredValuePayment,
    StoredValueRecharge,
    StoredValueRefund,
)
from liutong.storedvalue.schemas import (
    BonusExpired,
    CashedOut,
    CashOutPartOut,
    IssuerPart,
    Paid,
    PaymentRefunded,
    Recharged,
    RechargePreview,
    StoredValueOffer,
)

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

lots_t = StoredValueLot.__table__
moves_t = StoredValueMovement.__table__
accounts_t = Account.__table__

PRINCIPAL = AccountKind.sv_principal.value
BONUS = AccountKind.sv_bonus.value
ISSUED = AccountKind.sv_issued.value
BONUS_ISSUED = AccountKind.sv_bonus_issued.value
CNY = "CNY"


# --- rules and shared pieces -----------------------------------------------------------------------


def _rules(tx: Tx, tenant_id: int, program: tuple[int, ProgramDocument] | None) -> tuple[int, StoredValueRules]:
    """The stored-value rules of the given program version, or of the current one."""
    if program is not None:
        return program[0], program[1].stored_value
    current = program_service.current(tx, tenant_id=tenant_id)
    return current.id, current.document.stored_value


def _positive(amount: Any) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount()
    return amount


def _plain_yuan(fen: int) -> str:
    """100 for ¥100.00, 99.5 for ¥99.50: how a 充100送20 rule is written."""
    whole, cents = divmod(fen, 100)
    return str(whole) if not cents else f"{whole}.{cents:02d}".rstrip("0")


def _describe(tier: RechargeBonusTier) -> str:
    if tier.bonus is not None:
        return f"充{_plain_yuan(tier.min_amount)}送{_plain_yuan(tier.bonus)}"
    rate = (tier.rate * 100).normalize()
    cap = f"，最多送{_plain_yuan(tier.max_bonus)}" if tier.max_bonus is not None else ""
    return f"充{_plain_yuan(tier.min_amount)}及以上送{rate:f}%{cap}"


def _bonus_terms(rules: StoredValueRules, amount: int, at: datetime) -> tuple[int, str | None, datetime | None]:
    bonus, tier = rules.bonus_for(amount)
    if not bonus:
        return 0, None, None
    expires = at + relativedelta(months=rules.bonus_valid_months) if rules.bonus_valid_months else None
    return bonus, _describe(tier), expires


def _lapsed(expires_at: datetime | None, at: datetime) -> bool:
    return expires_at is not None and expires_at <= at


def _lots(tx: Tx, tenant_id: int, *, member_id: int | None = None, ids: Sequence[int] = ()) -> list[Any]:
    """The member's lots that still hold something (or the lots ``ids``), oldest first, each with
    its issuer's two stored-value accounts (``issued_account``, ``bonus_issued_account``) found in
    the same round trip. Read under the member lock."""
    issued = accounts_t.alias("issued")
    bonus_issued = accounts_t.alias("bonus_issued")

    def issuer_account(alias, kind):
        return and_(alias.c.tenant_id == lots_t.c.tenant_id, alias.c.owner_type == OwnerType.entity.value,
                    alias.c.owner_id == lots_t.c.issuer_entity_id, alias.c.kind == kind)

    stmt = (
        select(lots_t, issued.c.id.label("issued_account"), bonus_issued.c.id.label("bonus_issued_account"))
        .join(issued, issuer_account(issued, ISSUED))
        .join(bonus_issued, issuer_account(bonus_issued, BONUS_ISSUED))
        .where(lots_t.c.tenant_id == tenant_id)
        .order_by(lots_t.c.id)
    )
    if member_id is not None:
        stmt = stmt.where(lots_t.c.member_id == member_id,
                          (lots_t.c.principal_remaining > 0) | (lots_t.c.bonus_remaining > 0))
    else:
        stmt = stmt.where(lots_t.c.id.in_(ids))
    return tx.session.execute(stmt).all()


def _accounts_of(lots: Iterable[Any]) -> dict[tuple[int, str], int]:
    accounts: dict[tuple[int, str], int] = {}
    for lot in lots:
        accounts[(lot.issuer_entity_id, ISSUED)] = lot.issued_account
        accounts[(lot.issuer_entity_id, BONUS_ISSUED)] = lot.bonus_issued_account
    return accounts


def _holdings(lots: Iterable[Any], at: datetime) -> list[plan.Holding]:
    return [
        plan.Holding(lot.id, lot.issuer_entity_id, lot.principal_remaining,
                     0 if _lapsed(lot.bonus_expires_at, at) else lot.bonus_remaining, lot.bonus_expires_at)
        for lot in lots
    ]


def _issuer_accounts(tx: Tx, tenant_id: int, issuers: Iterable[int]) -> dict[tuple[int, str], int]:
    """(entity id, kind) → account id of the issuers' stored-value accounts (aggregates: no lock)."""
    wanted = sorted(set(issuers))
    if not wanted:
        return {}
    rows = tx.session.execute(
        select(accounts_t.c.owner_id, accounts_t.c.kind, accounts_t.c.id).where(
            accounts_t.c.tenant_id == tenant_id, accounts_t.c.owner_type == OwnerType.entity.value,
            accounts_t.c.owner_id.in_(wanted), accounts_t.c.kind.in_([ISSUED, BONUS_ISSUED]))
    ).all()
    found = {(r.owner_id, r.kind): r.id for r in rows}
    if len(found) != 2 * len(wanted):
        raise InvalidReference(what="法人主体 / legal entity")
    return found


def _issuer_parts(parts: Iterable[tuple[int, int, int]]) -> list[IssuerPart]:
    """(issuer, principal, bonus) amounts summed per issuer, in issuer order."""
    by_issuer: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for issuer, principal, bonus in parts:
        by_issuer[issuer][0] += principal
        by_issuer[issuer][1] += bonus
    return [IssuerPart(issuer_entity_id=i, principal=p, bonus=b) for i, (p, b) in sorted(by_issuer.items())]


def _legs(held: dict[str, Held], accounts: dict[tuple[int, str], int], parts: Sequence[IssuerPart],
          sign: int) -> list[Leg]:
    """The member's two legs and each issuer's mirror legs for per-issuer amounts.

    ``sign`` +1 moves value to the member (recharge, refund), −1 away (payment, cash-out, lapse).
    """
    principal = sum(p.principal for p in parts)
    bonus = sum(p.bonus for p in parts)
    legs = []
    if principal:
        legs.append(Leg(held[PRINCIPAL].id, PRINCIPAL, CNY, sign * principal))
    if bonus:
        legs.append(Leg(held[BONUS].id, BONUS, CNY, sign * bonus))
    for p in parts:
        if p.principal:
            legs.append(Leg(accounts[(p.issuer_entity_id, ISSUED)], ISSUED, CNY, -sign * p.principal))
        if p.bonus:
            legs.append(Leg(accounts[(p.issuer_entity_id, BONUS_ISSUED)], BONUS_ISSUED, CNY, -sign * p.bonus))
    return legs


def _apply(tx: Tx, lots: dict[int, Any], deltas: dict[int, list[int]]) -> None:
    """Write the lots' new remaining amounts (per lot id: change of principal, change of bonus)."""
    rows = [{"lid": lot_id, "p": lots[lot_id].principal_remaining + dp, "b": lots[lot_id].bonus_remaining + db}
            for lot_id, (dp, db) in sorted(deltas.items()) if dp or db]
    if rows:
        tx.session.execute(
            update(lots_t).where(lots_t.c.id == bindparam("lid"))
            .values(principal_remaining=bindparam("p"), bonus_remaining=bindparam("b")),
            rows,
        )


def _moves(tx: Tx, tenant_id: int, rows: Sequence[dict[str, Any]]) -> None:
    rows = [r for r in rows if r["principal"] or r["bonus"]]
    if rows:
        tx.session.execute(insert(moves_t), [{"tenant_id": tenant_id, **r} for r in rows])


# --- recharge --------------------------------------------------------------------------------------


def preview_recharge(tx: Tx, *, tenant_id: int, amount: int, at: datetime | None = None) -> RechargePreview:
    """The bonus a recharge of ``amount`` would earn under the current program. Changes nothing."""
    _positive(amount)
    _, rules = _rules(tx, tenant_id, None)
    bonus, rule, expires = _bonus_terms(rules, amount, at or tx.now())
    return RechargePreview(amount=amount, bonus=bonus, bonus_rule=rule, bonus_expires_at=expires)


def recharge(
    tx: Tx,
    *,
    tenant_id: int,
    member_id: int,
    issuer_entity_id: int,
    amount: int,
    channel: str,
    reference: str,
    key: str,
    merchant_id: int | None = None,
    at: datetime | None = None,
    program: tuple[int, ProgramDocument] | None = None,
) -> Recharged:
    """充值: ``amount`` fen paid through ``channel`` (its ``reference``) becomes principal issued
    by ``issuer_entity_id``, with the bonus the program's best tier gives.

    Refused when the amount is outside the per-recharge limits, when the member would hold more
    principal than the cap, and when the channel reference has recharged before (a payment
    callback delivered twice under two keys still recharges once).
    """
    request = {"member_id": member_id, "issuer": issuer_entity_id, "amount": amount, "channel": channel,
               "reference": reference, "merchant_id": merchant_id, "at": at}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="sv.recharge", request=request)
    if not isinstance(got, idempotency.Claim):
        return Recharged.model_validate(got)
    _positive(amount)
    when = at or tx.now()
    version_id, rules = _rules(tx, tenant_id, program)
    limits = rules.limits
    if not limits.min_recharge <= amount <= limits.max_recharge:
        raise RechargeOutOfRange(min_recharge=limits.min_recharge, max_recharge=limits.max_recharge)
    held = ledger.lock_member(tx, tenant_id=tenant_id, member_id=member_id)
    principal_held = held[PRINCIPAL].balance
    if principal_held + amount > limits.max_principal:
        raise StoredValueCapExceeded(max_principal=limits.max_principal, held=principal_held,
                                     room=max(limits.max_principal - principal_held, 0))
    bonus, rule, expires = _bonus_terms(rules, amount, when)
    memo = f"储值充值 {yuan(amount)}" + (f"，{rule} 赠送 {yuan(bonus)}" if bonus else "") + " / recharge"
    entry_id, _ = ledger.post_held(
        tx, tenant_id=tenant_id, key=key, kind="sv_recharge", held=held.values(), member_id=member_id,
        legs=_legs(held, _issuer_accounts(tx, tenant_id, [issuer_entity_id]),
                   _issuer_parts([(issuer_entity_id, amount, bonus)]), +1),
        effective_at=when, memo=memo,
        ref=reference)
    recharge_id = tx.session.execute(
        insert_or_ignore(tx.session.get_bind(), StoredValueRecharge.__table__).values(
            tenant_id=tenant_id, member_id=member_id, issuer_entity_id=issuer_entity_id, merchant_id=merchant_id,
            program_version_id=version_id, amount=amount, bonus=bonus, bonus_expires_at=expires, channel=channel,
            reference=reference, entry_id=entry_id, occurred_at=when,
        ).returning(StoredValueRecharge.__table__.c.id)
    ).scalar()
    if recharge_id is None:
        raise PaymentAlreadyRecharged(channel=channel, reference=reference)
    tx.session.execute(insert(lots_t).values(
        tenant_id=tenant_id, member_id=member_id, issuer_entity_id=issuer_entity_id, recharge_id=recharge_id,
        principal=amount, principal_remaining=amount, bonus=bonus, bonus_remaining=bonus, bonus_expires_at=expires,
        created_at=tx.now()))
    result = Recharged(
        recharge_id=recharge_id, entry_id=entry_id, member_id=member_id, issuer_entity_id=issuer_entity_id,
        program_version_id=version_id, amount=amount, bonus=bonus, bonus_rule=rule, bonus_expires_at=expires,
        channel=channel, reference=reference, principal_after=held[PRINCIPAL].balance,
        bonus_after=held[BONUS].balance)
    idempotency.complete(tx, got, result.model_dump(mode="json"))
    return result


# --- paying ------------------------------------------------------------------------------------------


def _merchant(tx: Tx, tenant_id: int, merchant_id: int) -> Merchant:
    merchant = tx.session.get(Merchant, merchant_id)
    if merchant is None or merchant.tenant_id != tenant_id:
        raise InvalidReference(what="商户 / merchant")
    return merchant


def offer(
    tx: Tx,
    *,
    tenant_id: int,
    member_id: int,
    merchant_id: int,
    amount: int | None = None,
    at: datetime | None = None,
    program: tuple[int, ProgramDocument] | None = None,
) -> StoredValueOffer:
    """What stored value can pay at this merchant now, and how it would split ``amount`` — for a
    checkout quote. Reads without a lock and changes nothing; ``pay`` decides for real."""
    when = at or tx.now()
    _, rules = _rules(tx, tenant_id, program)
    merchant = _merchant(tx, tenant_id, merchant_id)
    accepted, third_party = rules.acceptance.decide(merchant=merchant.code, mode=merchant.mode)
    holdings = _holdings(_lots(tx, tenant_id, member_id=member_id), when)
    principal = sum(h.principal for h in holdings)
    bonus = sum(h.bonus for h in holdings)
    out = StoredValueOffer(accepted=accepted, third_party=third_party, principal=principal, bonus_spendable=bonus)
    if not accepted:
        out.refused_because = "merchant_does_not_accept_stored_value"
    elif amount is not None:
        parts = plan.split_payment(_positive(amount), order=rules.spending_order, holdings=holdings)
        if parts is None:
            out.refused_because = "beyond_balance"
        else:
            out.principal_used = sum(p.principal for p in parts)
            out.bonus_used = sum(p.bonus for p in parts)
    return out


def pay(
    tx: Tx,
    *,
    tenant_id: int,
    member_id: int,
    merchant_id: int,
    amount: int,
    order_ref: str,
    key: str,
    at: datetime | None = None,
    program: tuple[int, ProgramDocument] | None = None,
) -> Paid:
    """储值支付: take ``amount`` fen of the member's stored value at a merchant, for ``order_ref``.

    The program's spending order divides it between principal and bonus; principal comes from
    the oldest lots, bonus from those that lapse soonest, so the answer says which issuers paid
    how much. Refused with ``stored_value_not_accepted`` where the merchant may not take stored
    value and with ``insufficient_balance`` (sticky for this key) when principal and spendable
    bonus fall short. A checkout calls this inside its own transaction with a key derived from
    its order number, passing the program version it priced with as ``program``.
    """
    request = {"member_id": member_id, "merchant_id": merchant_id, "amount": amount, "order_ref": order_ref, "at": at}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="sv.pay", request=request)
    if not isinstance(got, idempotency.Claim):
        return Paid.model_validate(got)
    _positive(amount)
    when = at or tx.now()
    version_id, rules = _rules(tx, tenant_id, program)
    merchant = _merchant(tx, tenant_id, merchant_id)
    accepted, third_party = rules.acceptance.decide(merchant=merchant.code, mode=merchant.mode)
    if not accepted:
        raise StoredValueNotAccepted(merchant=merchant.code)
    held = ledger.lock_member(tx, tenant_id=tenant_id, member_id=member_id)
    lots = _lots(tx, tenant_id, member_id=member_id)
    holdings = _holdings(lots, when)
    parts = plan.split_payment(amount, order=rules.spending_order, holdings=holdings)
    if parts is None:
        raise InsufficientBalance(available=sum(h.principal + h.bonus for h in holdings), requested=amount)
    by_issuer = _issuer_parts((p.issuer_entity_id, p.principal, p.bonus) for p in parts)
    principal = sum(p.principal for p in parts)
    bonus = amount - principal
    entry_id, _ = ledger.post_held(
        tx, tenant_id=tenant_id, key=key, kind="sv_pay", held=held.values(), member_id=member_id,
        legs=_legs(held, _accounts_of(lots), by_issuer, -1), effective_at=when, ref=order_ref,
        memo=f"储值支付 {yuan(amount)}（本金 {yuan(principal)}，赠送金 {yuan(bonus)}）@{merchant.code} / payment")
    payment_id = tx.session.execute(insert(StoredValuePayment.__table__).values(
        tenant_id=tenant_id, member_id=member_id, merchant_id=merchant_id, program_version_id=version_id,
        order_ref=order_ref, amount=amount, principal=principal, bonus=bonus, spending_order=rules.spending_order,
        third_party=third_party, entry_id=entry_id, occurred_at=when,
    ).returning(StoredValuePayment.__table__.c.id)).scalar_one()
    _apply(tx, {lot.id: lot for lot in lots}, {p.lot_id: [-p.principal, -p.bonus] for p in parts})
    _moves(tx, tenant_id, [{"lot_id": p.lot_id, "entry_id": entry_id, "payment_id": payment_id, "kind": "pay",
                            "principal": -p.principal, "bonus": -p.bonus} for p in parts])
    result = Paid(payment_id=payment_id, entry_id=entry_id, member_id=member_id, merchant_id=merchant_id,
                  order_ref=order_ref, amount=amount, principal=principal, bonus=bonus,
                  spending_order=rules.spending_order, third_party=third_party, parts=by_issuer,
                  principal_after=held[PRINCIPAL].balance, bonus_after=held[BONUS].balance)
    idempotency.complete(tx, got, result.model_dump(mode="json"))
    return result


# --- refunding a payment -------------------------------------------------------------------------------


def _still_out(tx: Tx, payment_id: int) -> list[tuple[int, int, int]]:
    """(lot id, principal, bonus) that the payment drew from each lot and has not had back."""
    rows = tx.session.execute(
        select(moves_t.c.lot_id, func.sum(moves_t.c.principal), func.sum(moves_t.c.bonus))
        .where(moves_t.c.payment_id == payment_id, moves_t.c.kind.in_(["pay", "refund"]))
        .group_by(moves_t.c.lot_id).order_by(moves_t.c.lot_id)
    ).all()
    # (PostgreSQL sums come back as Decimal)
    return [(lot_id, -int(p), -int(b)) for lot_id, p, b in rows]


def refund_payment(
    tx: Tx,
    *,
    tenant_id: int,
    payment_id: int,
    amount: int,
    refund_ref: str,
    key: str,
    at: datetime | None = None,
) -> PaymentRefunded:
    """Give back ``amount`` fen of a stored-value payment (a checkout refund, whole or by line).

    The amount is split over the principal and bonus each lot gave and has not had back yet, in
    proportion, so partial refunds in any sequence add up to the payment exactly. Principal
    always returns to its lot; bonus whose lot has lapsed since is forfeited, not returned. The
    refund goes to whoever holds the lots now (after a member merge, the surviving member), and
    is not held to the principal cap: it restores what the member had.
    """
    request = {"payment_id": payment_id, "amount": amount, "refund_ref": refund_ref, "at": at}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="sv.refund", request=request)
    if not isinstance(got, idempotency.Claim):
        return PaymentRefunded.model_validate(got)
    _positive(amount)
    when = at or tx.now()
    payment = tx.session.execute(
        select(StoredValuePayment.__table__).where(StoredValuePayment.tenant_id == tenant_id,
                                                   StoredValuePayment.id == payment_id)
    ).first()
    if payment is None:
        raise NotFound(what="储值支付 / stored-value payment")
    owner = tx.session.scalar(
        select(lots_t.c.member_id).join(moves_t, moves_t.c.lot_id == lots_t.c.id)
        .where(moves_t.c.payment_id == payment_id).limit(1))
    held = ledger.lock_member(tx, tenant_id=tenant_id, member_id=owner, require_active=False)
    out = _still_out(tx, payment_id)
    left = sum(p + b for _, p, b in out)
    if amount > left:
        raise RefundExceedsPayment(left=left)
    lots = {r.id: r for r in _lots(tx, tenant_id, ids=[o[0] for o in out])}
    parts = plan.split_refund(amount, still_out=[plan.Part(lot_id, lots[lot_id].issuer_entity_id, p, b)
                                                 for lot_id, p, b in out])
    back, forfeited = [], 0
    deltas: dict[int, list[int]] = {}
    moves: list[dict[str, Any]] = []
    for part in parts:
        lapsed = _lapsed(lots[part.lot_id].bonus_expires_at, when)
        bonus_back = 0 if lapsed else part.bonus
        forfeited += part.bonus - bonus_back
        back.append((part.issuer_entity_id, part.principal, bonus_back))
        deltas[part.lot_id] = [part.principal, bonus_back]
        moves.append({"lot_id": part.lot_id, "payment_id": payment_id, "kind": "refund",
                      "principal": part.principal, "bonus": part.bonus})
        if part.bonus != bonus_back:
            moves.append({"lot_id": part.lot_id, "payment_id": None, "kind": "expire", "principal": 0,
                          "bonus": -(part.bonus - bonus_back)})
    back_by_issuer = _issuer_parts(back)
    legs = _legs(held, _accounts_of(lots.values()), back_by_issuer, +1)
    entry_id = None
    if legs:
        entry_id, _ = ledger.post_held(
            tx, tenant_id=tenant_id, key=key, kind="sv_refund", held=held.values(), member_id=owner,
            legs=legs, reverses_id=payment.entry_id, effective_at=when, ref=refund_ref,
            memo=f"储值退回 {yuan(amount)}（订单 {payment.order_ref}）/ payment refunded")
    _apply(tx, lots, deltas)
    _moves(tx, tenant_id, [{**m, "entry_id": entry_id} for m in moves])
    principal = sum(b[1] for b in back)
    bonus = sum(b[2] for b in back)
    row = StoredValueRefund(tenant_id=tenant_id, payment_id=payment_id, refund_ref=refund_ref, amount=amount,
                            principal=principal, bonus=bonus, bonus_forfeited=forfeited, entry_id=entry_id,
                            occurred_at=when)
    tx.session.add(row)
    tx.session.flush()
    result = PaymentRefunded(refund_id=row.id, payment_id=payment_id, entry_id=entry_id, amount=amount,
                             principal=principal, bonus=bonus, bonus_forfeited=forfeited,
                             parts=back_by_issuer, left=left - amount)
    idempotency.complete(tx, got, result.model_dump(mode="json"))
    return result


# --- cashing out -------------------------------------------------------------------------------------


def refund_balance(
    tx: Tx,
    *,
    tenant_id: int,
    member_id: int,
    principal: int | None,
    channel: str,
    reference: str,
    reason: str,
    key: str,
    actor: str,
    at: datetime | None = None,
) -> CashedOut:
    """余额退款: return ``principal`` fen (all of it when None) to the member through ``channel``.

    Principal only: the bonus is forfeited in proportion to the principal returned, as the
    program's refund terms say (returning all principal forfeits all spendable bonus). Each
    issuer returns its share of the principal; the record says who asked, why, and how the
    money went back.
    """
    request = {"member_id": member_id, "principal": principal, "channel": channel, "reference": reference,
               "reason": reason, "at": at}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="sv.cash_out", request=request)
    if not isinstance(got, idempotency.Claim):
        return CashedOut.model_validate(got)
    if principal is not None:
        _positive(principal)
    when = at or tx.now()
    version_id, rules = _rules(tx, tenant_id, None)
    terms = rules.balance_refund
    if not terms.allowed:
        raise CashOutNotAllowed()
    held = ledger.lock_member(tx, tenant_id=tenant_id, member_id=member_id)
    lots = _lots(tx, tenant_id, member_id=member_id)
    holdings = _holdings(lots, when)
    principal_held = sum(h.principal for h in holdings)
    wanted = principal_held if principal is None else principal
    if not principal_held:
        raise NothingToCashOut()
    parts = plan.cash_out(wanted, holdings=holdings, rounding=terms.forfeit_rounding)
    if parts is None:
        raise InsufficientBalance(available=principal_held, requested=wanted)
    forfeited = sum(p.bonus_forfeited for p in parts)
    by_issuer = _issuer_parts((p.issuer_entity_id, p.principal, p.bonus_forfeited) for p in parts)
    entry_id, _ = ledger.post_held(
        tx, tenant_id=tenant_id, key=key, kind="sv_cash_out", held=held.values(), member_id=member_id,
        legs=_legs(held, _accounts_of(lots), by_issuer, -1), effective_at=when, ref=reference,
        memo=f"储值退款 本金 {yuan(wanted)}，扣除赠送金 {yuan(forfeited)} / cash-out")
    _apply(tx, {lot.id: lot for lot in lots}, {p.lot_id: [-p.principal, -p.bonus_forfeited] for p in parts})
    _moves(tx, tenant_id, [{"lot_id": p.lot_id, "entry_id": entry_id, "payment_id": None, "kind": "cash_out",
                            "principal": -p.principal, "bonus": -p.bonus_forfeited} for p in parts])
    row = StoredValueCashOut(tenant_id=tenant_id, member_id=member_id, program_version_id=version_id,
                             principal=wanted, bonus_forfeited=forfeited, channel=channel, reference=reference,
                             reason=reason, actor=actor, entry_id=entry_id, occurred_at=when)
    tx.session.add(row)
    tx.session.flush()
    result = CashedOut(
        cash_out_id=row.id, entry_id=entry_id, member_id=member_id, principal=wanted, bonus_forfeited=forfeited,
        channel=channel, reference=reference,
        parts=[CashOutPartOut(issuer_entity_id=p.issuer_entity_id, principal=p.principal, bonus_forfeited=p.bonus)
               for p in by_issuer],
        principal_after=held[PRINCIPAL].balance, bonus_after=held[BONUS].balance)
    idempotency.complete(tx, got, result.model_dump(mode="json"))
    return result


# --- bonus lapsing -----------------------------------------------------------------------------------


def expire_bonus(tx: Tx, *, tenant_id: int, member_id: int, as_of: datetime, key: str) -> BonusExpired | None:
    """Post the lapse of the member's bonus whose validity ended at or before ``as_of`` (back to
    its issuers, as breakage). Returns None when nothing was due. Runs for frozen members too."""
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="sv.expire",
                            request={"member_id": member_id, "as_of": as_of})
    if not isinstance(got, idempotency.Claim):
        return BonusExpired.model_validate(got) if got else None
    held = ledger.lock_member(tx, tenant_id=tenant_id, member_id=member_id, require_active=False)
    due = [lot for lot in _lots(tx, tenant_id, member_id=member_id)
           if lot.bonus_remaining and _lapsed(lot.bonus_expires_at, as_of)]
    if not due:
        idempotency.complete(tx, got, {})
        return None
    by_issuer = _issuer_parts((lot.issuer_entity_id, 0, lot.bonus_remaining) for lot in due)
    entry_id, _ = ledger.post_held(
        tx, tenant_id=tenant_id, key=key, kind="sv_expire", held=held.values(), member_id=member_id,
        legs=_legs(held, _accounts_of(due), by_issuer, -1),
        effective_at=as_of, memo="赠送金过期 / bonus lapsed")
    _apply(tx, {lot.id: lot for lot in due}, {lot.id: [0, -lot.bonus_remaining] for lot in due})
    _moves(tx, tenant_id, [{"lot_id": lot.id, "entry_id": entry_id, "payment_id": None, "kind": "expire",
                            "principal": 0, "bonus": -lot.bonus_remaining} for lot in due])
    result = BonusExpired(entry_id=entry_id, member_id=member_id, bonus=sum(p.bonus for p in by_issuer),
                          lots=[lot.id for lot in due])
    idempotency.complete(tx, got, result.model_dump(mode="json"))
    return result


def expire_due_bonus(tx: Tx, *, tenant_id: int, as_of: datetime) -> int:
    """Post every member's bonus lapse due at ``as_of``; returns the number of entries. Keys
    are derived from the member and ``as_of``, so a rerun after a crash posts nothing twice."""
    member_ids = tx.session.scalars(
        select(lots_t.c.member_id).where(lots_t.c.tenant_id == tenant_id, lots_t.c.bonus_remaining > 0,
                                         lots_t.c.bonus_expires_at <= as_of)
        .distinct().order_by(lots_t.c.member_id)
    ).all()
    posted = 0
    for member_id in member_ids:
        key = idempotency.system_key("sv-expire", member_id, as_of.isoformat())
        if expire_bonus(tx, tenant_id=tenant_id, member_id=member_id, as_of=as_of, key=key):
            posted += 1
    return posted


# --- member merge ------------------------------------------------------------------------------------


def move_lots(tx: Tx, *, tenant_id: int, source_id: int, target_id: int) -> int:
    """Re-home the source member's lots to the target (member merge; the ledger moves the
    balances in the same transaction, under both members' locks). Returns how many moved."""
    return tx.session.execute(
        update(lots_t).where(lots_t.c.tenant_id == tenant_id, lots_t.c.member_id == source_id)
        .values(member_id=target_id)
    ).rowcount


__all__ = [
    "expire_bonus",
    "expire_due_bonus",
    "move_lots",
    "offer",
    "pay",
    "preview_recharge",
    "recharge",
    "refund_balance",
    "refund_payment",
]
