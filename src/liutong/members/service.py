"""Member services. Personal data is encrypted before it reaches the session and is looked up
only through keyed blind indexes; what leaves here is masked unless the caller reveals it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from liutong.errors import (
    CannotMerge,
    DuplicateIdentity,
    InvalidReference,
    InvalidStatusChange,
    LastPhoneIdentity,
    MemberNotActive,
    MemberNotFound,
    NotFound,
)
from liutong.kit import idempotency
from liutong.kit.crypto import mask_name
from liutong.kit.idempotency import system_key
from liutong.ledger import service as ledger
from liutong.ledger.models import PointsLot
from liutong.members import activity, member_code
from liutong.members.identity import LABELS_ZH, mask, normalise
from liutong.members.models import (
    ConsentEvent,
    IdentityKind,
    Member,
    MemberIdentity,
    MemberStatus,
)
from liutong.members.schemas import (
    ConsentIn,
    Consents,
    ConsentState,
    IdentityIn,
    IdentityOut,
    MemberCodeOut,
    MemberOut,
    MemberRegister,
    MemberUpdate,
    MergeResult,
)
from liutong.organisation.audit import record_audit
from liutong.program import behaviour
from liutong.storedvalue import service as stored_value

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

NAME = "member.name"
_ALLOWED_STATUS = {
    MemberStatus.active: {MemberStatus.frozen, MemberStatus.closed},
    MemberStatus.frozen: {MemberStatus.active, MemberStatus.closed},
    MemberStatus.closed: set(),
    MemberStatus.merged: set(),
}


def _context(kind: str) -> str:
    return f"identity.{kind}"


def get(tx: Tx, *, tenant_id: int, member_id: int, for_update: bool = False) -> Member:
    stmt = select(Member).where(Member.tenant_id == tenant_id, Member.id == member_id)
    if for_update:
        stmt = stmt.with_for_update()
    member = tx.session.scalars(stmt).first()
    if member is None:
        raise MemberNotFound(member_id=member_id)
    return member


def view(tx: Tx, member: Member, *, reveal: bool = False, actor: str | None = None) -> MemberOut:
    """The member as APIs and screens show it: masked, or revealed (and audited)."""
    identities = tx.session.scalars(
        select(MemberIdentity)
        .where(MemberIdentity.tenant_id == member.tenant_id, MemberIdentity.member_id == member.id)
        .order_by(MemberIdentity.id)
    ).all()
    out_ids = []
    phone = ""
    for ident in identities:
        value = None
        if reveal and ident.value_enc is not None:
            value = tx.vault.decrypt(ident.value_enc, context=_context(ident.kind))
        out_ids.append(IdentityOut(id=ident.id, kind=ident.kind, masked=ident.masked, is_primary=ident.is_primary,
                                   verified=ident.verified, value=value))
        if ident.kind == IdentityKind.phone and (ident.is_primary or not phone):
            phone = value or ident.masked
    name = tx.vault.decrypt(member.name_enc, context=NAME) if member.name_enc else None
    if reveal:
        record_audit(tx, tenant_id=member.tenant_id, actor=actor or "system", action="member.reveal",
                     subject_type="member", subject_id=member.id, data={})
    return MemberOut(
        id=member.id,
        member_no=member.member_no,
        status=member.status,
        name=name if reveal or name is None else mask_name(name),
        phone=phone,
        gender=member.gender,
        birthday=member.birthday,
        region=member.region,
        tier_code=member.tier_code,
        merged_into_id=member.merged_into_id,
        registered_at=member.registered_at,
        identities=out_ids,
        revealed=reveal,
    )


def _attach_identity(tx: Tx, *, member: Member, kind: IdentityKind, raw: str, verified: bool, primary: bool) -> MemberIdentity:
    normalised = normalise(kind, raw)
    if kind is IdentityKind.id_card:
        index, value_enc = tx.vault.id_card_hash(normalised), None
    else:
        index, value_enc = tx.vault.blind_index(kind.value, normalised), tx.vault.encrypt(normalised, context=_context(kind.value))
    owner = tx.session.scalar(
        select(MemberIdentity.member_id).where(
            MemberIdentity.tenant_id == member.tenant_id, MemberIdentity.kind == kind.value,
            MemberIdentity.blind_index == index,
        )
    )
    if owner is not None:
        raise DuplicateIdentity(kind=LABELS_ZH[kind], kind_code=kind.value)
    ident = MemberIdentity(
        tenant_id=member.tenant_id, member_id=member.id, kind=kind.value, blind_index=index, value_enc=value_enc,
        masked=mask(kind, normalised), is_primary=primary, verified=verified, created_at=tx.now(),
    )
    tx.session.add(ident)
    try:
        with tx.session.begin_nested():
            tx.session.flush([ident])
    except IntegrityError:  # a concurrent registration took it between our check and insert
        raise DuplicateIdentity(kind=LABELS_ZH[kind], kind_code=kind.value) from None
    return ident


def register(tx: Tx, *, tenant_id: int, data: MemberRegister, key: str, actor: str) -> MemberOut:
    def run() -> MemberOut:
        now = tx.now()
        member = Member(
            tenant_id=tenant_id, member_no=f"pending-{key}"[:20], status=MemberStatus.active.value,
            name_enc=tx.vault.encrypt(data.name, context=NAME) if data.name else None, gender=data.gender,
            birthday=data.birthday, region=data.region, source=data.source, registered_at=now, updated_at=now,
        )
        tx.session.add(member)
        tx.session.flush()
        member.member_no = f"{member.id:010d}"
        _attach_identity(tx, member=member, kind=IdentityKind.phone, raw=data.phone, verified=True, primary=True)
        for ident in data.identities:
            _attach_identity(tx, member=member, kind=ident.kind, raw=ident.value, verified=ident.verified, primary=False)
        for consent in data.consents:
            _consent(tx, member, consent)
        ledger.open_member_accounts(tx, tenant_id=tenant_id, member_id=member.id)
        _welcome(tx, tenant_id=tenant_id, member=member, referred_by=data.referred_by)
        record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.register", subject_type="member",
                     subject_id=member.id, data={"source": data.source})
        return view(tx, member)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.register",
                                  request=data.model_dump(mode="json"), model=MemberOut, run=run)


def _welcome(tx: Tx, *, tenant_id: int, member: Member, referred_by: str | None) -> None:
    """What the program gives for joining (registration rules) and for being referred."""
    now = tx.now()
    behaviour.reward(tx, tenant_id=tenant_id, member=member, event="registration", at=now,
                     key=system_key("registration", member.id), required=False)
    if referred_by is None:
        return
    referrer = tx.session.scalars(
        select(Member).where(Member.tenant_id == tenant_id, Member.member_no == referred_by)).first()
    if referrer is None or referrer.status != MemberStatus.active.value:
        raise InvalidReference(what="推荐人 / referrer")
    behaviour.reward(tx, tenant_id=tenant_id, member=referrer, event="referral", at=now, referee=member,
                     key=system_key("referral", member.id), ref=member.member_no, required=False)


def update_profile(tx: Tx, *, tenant_id: int, member_id: int, data: MemberUpdate, key: str, actor: str) -> MemberOut:
    def run() -> MemberOut:
        member = get(tx, tenant_id=tenant_id, member_id=member_id)
        _require_open(member)
        changes = data.model_dump(exclude_unset=True)
        if "name" in changes:
            member.name_enc = tx.vault.encrypt(data.name, context=NAME) if data.name else None
        for field in ("gender", "birthday", "region"):
            if field in changes:
                setattr(member, field, changes[field])
        member.updated_at = tx.now()
        record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.update", subject_type="member",
                     subject_id=member.id, data={"fields": sorted(changes)})
        return view(tx, member)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.update",
                                  request={"member_id": member_id, **data.model_dump(mode="json", exclude_unset=True)},
                                  model=MemberOut, run=run)


def require_active(member: Member) -> None:
    """Only an active member earns, spends or shows a member code."""
    if member.status != MemberStatus.active:
        raise MemberNotActive(status=member.status)


def _require_open(member: Member) -> None:
    if member.status in (MemberStatus.closed, MemberStatus.merged):
        raise MemberNotActive(status=member.status)


def add_identity(tx: Tx, *, tenant_id: int, member_id: int, data: IdentityIn, key: str, actor: str) -> MemberOut:
    def run() -> MemberOut:
        member = get(tx, tenant_id=tenant_id, member_id=member_id)
        _require_open(member)
        _attach_identity(tx, member=member, kind=data.kind, raw=data.value, verified=data.verified, primary=False)
        record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.identity.add", subject_type="member",
                     subject_id=member.id, data={"kind": data.kind.value})
        return view(tx, member)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.identity.add",
                                  request={"member_id": member_id, **data.model_dump(mode="json")},
                                  model=MemberOut, run=run)


def remove_identity(tx: Tx, *, tenant_id: int, member_id: int, identity_id: int, key: str, actor: str) -> MemberOut:
    def run() -> MemberOut:
        member = get(tx, tenant_id=tenant_id, member_id=member_id)
        ident = tx.session.scalars(
            select(MemberIdentity).where(MemberIdentity.tenant_id == tenant_id, MemberIdentity.member_id == member_id,
                                         MemberIdentity.id == identity_id)
        ).first()
        if ident is None:
            raise NotFound(what="会员标识 / member identity")
        if ident.kind == IdentityKind.phone:
            phones = tx.session.scalar(
                select(func.count()).where(MemberIdentity.tenant_id == tenant_id,
                                           MemberIdentity.member_id == member_id,
                                           MemberIdentity.kind == IdentityKind.phone.value)
            )
            if phones <= 1:
                raise LastPhoneIdentity()
        was_primary = ident.is_primary
        tx.session.delete(ident)
        tx.session.flush()
        if was_primary:
            _promote_a_phone(tx, tenant_id, member_id)
        member.code_epoch += 1
        record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.identity.remove", subject_type="member",
                     subject_id=member.id, data={"kind": ident.kind, "masked": ident.masked})
        return view(tx, member)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.identity.remove",
                                  request={"member_id": member_id, "identity_id": identity_id},
                                  model=MemberOut, run=run)


def _promote_a_phone(tx: Tx, tenant_id: int, member_id: int) -> None:
    first = tx.session.scalars(
        select(MemberIdentity).where(MemberIdentity.tenant_id == tenant_id, MemberIdentity.member_id == member_id,
                                     MemberIdentity.kind == IdentityKind.phone.value).order_by(MemberIdentity.id)
    ).first()
    if first is not None:
        first.is_primary = True


def lookup(tx: Tx, *, tenant_id: int, kind: IdentityKind, value: str) -> Member:
    normalised = normalise(kind, value)
    index = tx.vault.id_card_hash(normalised) if kind is IdentityKind.id_card else tx.vault.blind_index(kind.value, normalised)
    member = tx.session.scalars(
        select(Member)
        .join(MemberIdentity, MemberIdentity.member_id == Member.id)
        .where(MemberIdentity.tenant_id == tenant_id, MemberIdentity.kind == kind.value,
               MemberIdentity.blind_index == index, Member.tenant_id == tenant_id)
    ).first()
    if member is None:
        raise MemberNotFound()
    return member


def change_status(tx: Tx, *, tenant_id: int, member_id: int, status: str, reason: str, key: str, actor: str) -> MemberOut:
    def run() -> MemberOut:
        member = get(tx, tenant_id=tenant_id, member_id=member_id, for_update=True)
        current, wanted = MemberStatus(member.status), MemberStatus(status)
        if wanted not in _ALLOWED_STATUS[current]:
            raise InvalidStatusChange(from_status=current.value, to_status=wanted.value)
        member.status = wanted.value
        member.code_epoch += 1  # any QR code on screen stops working at once
        member.updated_at = tx.now()
        record_audit(tx, tenant_id=tenant_id, actor=actor, action="member.status", subject_type="member",
                     subject_id=member.id, data={"from": current.value, "to": wanted.value, "reason": reason})
        return view(tx, member)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.status",
                                  request={"member_id": member_id, "status": status, "reason": reason},
                                  model=MemberOut, run=run)


def _consent(tx: Tx, member: Member, consent: ConsentIn) -> None:
    tx.session.add(ConsentEvent(
        tenant_id=member.tenant_id, member_id=member.id, purpose=consent.purpose.value, granted=consent.granted,
        channel=consent.channel, notice_version=consent.notice_version, recorded_at=tx.now(),
    ))


def record_consent(tx: Tx, *, tenant_id: int, member_id: int, data: ConsentIn, key: str) -> Consents:
    def run() -> Consents:
        member = get(tx, tenant_id=tenant_id, member_id=member_id)
        _require_open(member)
        _consent(tx, member, data)
        tx.session.flush()
        return consents(tx, tenant_id=tenant_id, member_id=member_id)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.consent",
                                  request={"member_id": member_id, **data.model_dump(mode="json")},
                                  model=Consents, run=run)


def consents(tx: Tx, *, tenant_id: int, member_id: int) -> Consents:
    get(tx, tenant_id=tenant_id, member_id=member_id)
    events = tx.session.scalars(
        select(ConsentEvent).where(ConsentEvent.tenant_id == tenant_id, ConsentEvent.member_id == member_id)
        .order_by(ConsentEvent.id)
    ).all()
    history = [ConsentState.model_validate(e, from_attributes=True) for e in events]
    latest: dict[str, ConsentState] = {}
    for state in history:
        latest[state.purpose] = state
    return Consents(current=sorted(latest.values(), key=lambda s: s.purpose), history=history)


def merge(tx: Tx, *, tenant_id: int, source_id: int, target_id: int, reason: str, key: str, actor: str) -> MergeResult:
    """Merge ``source`` into ``target``: identities, balances, lots and history move under one
    audit record; the source stays as a ``merged`` tombstone pointing at the target."""

    def run() -> MergeResult:
        if source_id == target_id:
            raise CannotMerge(reason="同一会员 / the same member")
        first, second = sorted([source_id, target_id])  # lock members in one global order
        locked = {m.id: m for m in (get(tx, tenant_id=tenant_id, member_id=i, for_update=True) for i in (first, second))}
        source, target = locked[source_id], locked[target_id]
        for m in (source, target):
            if m.status not in (MemberStatus.active, MemberStatus.frozen):
                raise CannotMerge(reason=f"会员 {m.member_no} 状态为 {m.status} / member is {m.status}")
        moved_ids = tx.session.execute(
            update(MemberIdentity)
            .where(MemberIdentity.tenant_id == tenant_id, MemberIdentity.member_id == source_id)
            .values(member_id=target_id, is_primary=False)
            .returning(MemberIdentity.id)
        ).all()
        lots_moved = tx.session.scalar(
            select(func.count()).where(PointsLot.tenant_id == tenant_id, PointsLot.member_id == source_id)
        )
        activity.move(tx, tenant_id=tenant_id, source_id=source_id, target_id=target_id)
        entry_ids = ledger.move_member_balances(tx, tenant_id=tenant_id, source_id=source_id, target_id=target_id,
                                                key=idempotency.system_key("merge", key))
        stored_value.move_lots(tx, tenant_id=tenant_id, source_id=source_id, target_id=target_id)
        tx.session.execute(
            update(Member).where(Member.tenant_id == tenant_id, Member.merged_into_id == source_id)
            .values(merged_into_id=target_id)
        )
        source.status = MemberStatus.merged.value
        source.merged_into_id = target_id
        source.code_epoch += 1
        target.code_epoch += 1
        now = tx.now()
        source.updated_at = target.updated_at = now
        audit_id = record_audit(
            tx, tenant_id=tenant_id, actor=actor, action="member.merge", subject_type="member", subject_id=target_id,
            data={"source_member_id": source_id, "source_member_no": source.member_no, "reason": reason,
                  "identities_moved": len(moved_ids), "lots_moved": lots_moved, "entry_ids": entry_ids},
        )
        tx.session.flush()
        return MergeResult(target=view(tx, target), source_member_id=source_id, identities_moved=len(moved_ids),
                           lots_moved=lots_moved, entry_ids=entry_ids, audit_id=audit_id)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member.merge",
                                  request={"source": source_id, "target": target_id, "reason": reason},
                                  model=MergeResult, run=run)


def merged_family(tx: Tx, *, tenant_id: int, member_id: int) -> list[int]:
    """The member and every member merged into it (whose history it now carries)."""
    ids = tx.session.scalars(
        select(Member.id).where(Member.tenant_id == tenant_id, Member.merged_into_id == member_id)
    ).all()
    return [member_id, *ids]


def issue_code(tx: Tx, *, tenant_id: int, member_id: int, now: datetime | None = None) -> MemberCodeOut:
    member = get(tx, tenant_id=tenant_id, member_id=member_id)
    require_active(member)
    code = member_code.issue(tx.vault.member_code_key, tenant_id=tenant_id, member_id=member.id,
                             epoch=member.code_epoch, now=now or tx.now(), ttl=tx.settings.member_code_ttl_seconds)
    return MemberCodeOut(code=code.code, issued_at=code.issued_at, expires_at=code.expires_at)


def resolve_code(tx: Tx, *, tenant_id: int, code: str, now: datetime | None = None) -> Member:
    parsed = member_code.parse(code)
    member = tx.session.scalars(
        select(Member).where(Member.tenant_id == tenant_id, Member.id == parsed.member_id)
    ).first()
    epoch = member.code_epoch if member is not None else -1
    member_code.verify(tx.vault.member_code_key, parsed, tenant_id=tenant_id, current_epoch=epoch,
                       now=now or tx.now(), ttl=tx.settings.member_code_ttl_seconds)
    require_active(member)
    return member
