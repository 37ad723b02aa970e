"""Member lists (名单) that campaigns target: created by code, filled by member number."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from liutong.db import insert_or_ignore
from liutong.errors import InvalidReference, NotFound
from liutong.kit import idempotency
from liutong.members.models import Member, MemberList, MemberListEntry
from liutong.program.rules import Code

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


class MemberListIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)


class MemberListAdd(BaseModel):
    member_nos: list[str] = Field(min_length=1, max_length=10_000, description="会员号 / member numbers")


class MemberListOut(BaseModel):
    code: str
    name: str
    members: int


def _out(tx: Tx, row: MemberList) -> MemberListOut:
    count = tx.session.scalar(select(func.count()).select_from(MemberListEntry).where(MemberListEntry.list_id == row.id))
    return MemberListOut(code=row.code, name=row.name, members=count)


def _get(tx: Tx, tenant_id: int, code: str) -> MemberList:
    row = tx.session.scalars(select(MemberList).where(MemberList.tenant_id == tenant_id, MemberList.code == code)).first()
    if row is None:
        raise NotFound(what="名单 / member list")
    return row


def save(tx: Tx, *, tenant_id: int, code: Code, data: MemberListIn) -> MemberListOut:
    """Create the list, or rename it (a PUT: the same request twice changes nothing more)."""
    row = tx.session.scalars(select(MemberList).where(MemberList.tenant_id == tenant_id, MemberList.code == code)).first()
    if row is None:
        row = MemberList(tenant_id=tenant_id, code=code, name=data.name, created_at=tx.now())
        tx.session.add(row)
        tx.session.flush()
    row.name = data.name
    return _out(tx, row)


def add(tx: Tx, *, tenant_id: int, code: str, data: MemberListAdd, key: str) -> MemberListOut:
    """Add members by number; members already on the list stay once. Unknown numbers refuse the
    whole request (nothing is added), naming the first."""

    def run() -> MemberListOut:
        row = _get(tx, tenant_id, code)
        wanted = sorted(set(data.member_nos))
        found = dict(tx.session.execute(select(Member.member_no, Member.id).where(
            Member.tenant_id == tenant_id, Member.member_no.in_(wanted))).all())
        missing = [n for n in wanted if n not in found]
        if missing:
            raise InvalidReference(what=f"会员 / member {missing[0]}")
        bind, now = tx.session.get_bind(), tx.now()
        for member_id in found.values():
            tx.session.execute(insert_or_ignore(bind, MemberListEntry.__table__).values(
                tenant_id=tenant_id, list_id=row.id, member_id=member_id, added_at=now))
        return _out(tx, row)

    return idempotency.idempotent(tx, tenant_id=tenant_id, key=key, operation="member_list.add",
                                  request={"code": code, **data.model_dump()}, model=MemberListOut, run=run)


def get(tx: Tx, *, tenant_id: int, code: str) -> MemberListOut:
    return _out(tx, _get(tx, tenant_id, code))


def lists_of(tx: Tx, *, tenant_id: int, member_id: int, codes: Iterable[str]) -> frozenset[str]:
    """Which of ``codes`` the member is on."""
    codes = list(codes)
    if not codes:
        return frozenset()
    return frozenset(tx.session.scalars(
        select(MemberList.code).join(MemberListEntry, MemberListEntry.list_id == MemberList.id).where(
            MemberList.tenant_id == tenant_id, MemberList.code.in_(codes), MemberListEntry.member_id == member_id)))
