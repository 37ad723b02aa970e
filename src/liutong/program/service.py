"""Publishing and reading program versions, and previewing what a purchase would earn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from liutong.errors import NotFound
from liutong.kit import idempotency
from liutong.program.defaults import default_program
from liutong.program.engine import Line, quote_earn
from liutong.program.models import ProgramVersion
from liutong.program.rules import ProgramDocument
from liutong.program.schemas import (
    EarnPartOut,
    EarnPreview,
    EarnPreviewRequest,
    ProgramPublish,
    ProgramVersionOut,
    ProgramVersionSummary,
)

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


def _out(row: ProgramVersion) -> ProgramVersionOut:
    return ProgramVersionOut(id=row.id, version=row.version, note=row.note, created_by=row.created_by,
                             created_at=row.created_at, document=ProgramDocument.model_validate(row.document))


def _publish(tx: Tx, *, tenant_id: int, document: ProgramDocument, note: str, actor: str) -> ProgramVersionOut:
    latest = tx.session.scalar(
        select(func.max(ProgramVersion.version)).where(ProgramVersion.tenant_id == tenant_id)
    ) or 0
    row = ProgramVersion(tenant_id=tenant_id, version=latest + 1, document=document.model_dump(mode="json"),
                         note=note, created_by=actor, created_at=tx.now())
    tx.session.add(row)
    tx.session.flush()
    from liutong.members import tier_review  # the review reads programs: imported here, not at the top

    tier_review.schedule(tx, tenant_id=tenant_id)  # by this version's schedule (once per period)
    return _out(row)


def start_program(tx: Tx, *, tenant_id: int) -> ProgramVersionOut:
    """Version 1 of a new tenant's program: the defaults that ship."""
    return _publish(tx, tenant_id=tenant_id, document=default_program(), note="默认方案 / default program",
                    actor="system")


def publish(tx: Tx, *, tenant_id: int, data: ProgramPublish, key: str, actor: str) -> ProgramVersionOut:
    return idempotency.idempotent(
        tx, tenant_id=tenant_id, key=key, operation="program.publish", request=data.model_dump(mode="json"),
        model=ProgramVersionOut,
        run=lambda: _publish(tx, tenant_id=tenant_id, document=data.document, note=data.note, actor=actor),
    )


_HEAD = (ProgramVersion.id, ProgramVersion.version, ProgramVersion.note, ProgramVersion.created_by,
         ProgramVersion.created_at)


def _parsed(tx: Tx, tenant_id: int, row: Any) -> ProgramVersionOut:
    """Versions never change once published, so each is parsed and validated once per process."""
    memo_key = ("program", tenant_id, *row)
    document = tx.runtime.memo.get(memo_key)
    if document is None:
        raw = tx.session.scalar(select(ProgramVersion.document).where(ProgramVersion.id == row.id))
        document = tx.runtime.memo[memo_key] = ProgramDocument.model_validate(raw)
    return ProgramVersionOut(id=row.id, version=row.version, note=row.note, created_by=row.created_by,
                             created_at=row.created_at, document=document)


def current(tx: Tx, *, tenant_id: int) -> ProgramVersionOut:
    """The version in force; a request reads only the head of the latest row."""
    row = tx.session.execute(
        select(*_HEAD).where(ProgramVersion.tenant_id == tenant_id).order_by(ProgramVersion.version.desc()).limit(1)
    ).first()
    if row is None:
        raise NotFound(what="会员方案 / program")
    return _parsed(tx, tenant_id, row)


def by_id(tx: Tx, *, tenant_id: int, version_id: int) -> ProgramVersionOut:
    """The version a past checkout used (its refund follows the terms it was sold under)."""
    row = tx.session.execute(
        select(*_HEAD).where(ProgramVersion.tenant_id == tenant_id, ProgramVersion.id == version_id)).first()
    if row is None:
        raise NotFound(what="会员方案版本 / program version")
    return _parsed(tx, tenant_id, row)


def version(tx: Tx, *, tenant_id: int, number: int) -> ProgramVersionOut:
    row = tx.session.scalars(
        select(ProgramVersion).where(ProgramVersion.tenant_id == tenant_id, ProgramVersion.version == number)
    ).first()
    if row is None:
        raise NotFound(what="会员方案版本 / program version")
    return _out(row)


def versions(tx: Tx, *, tenant_id: int) -> list[ProgramVersionSummary]:
    rows = tx.session.scalars(
        select(ProgramVersion).where(ProgramVersion.tenant_id == tenant_id).order_by(ProgramVersion.version.desc())
    )
    return [ProgramVersionSummary(id=r.id, version=r.version, note=r.note, created_by=r.created_by,
                                  created_at=r.created_at) for r in rows]


def preview_earn(tx: Tx, *, tenant_id: int, data: EarnPreviewRequest) -> EarnPreview:
    """What a sample purchase earns under the current program or a draft. Changes nothing."""
    if data.draft is not None:
        document, number = data.draft, None
    else:
        published = current(tx, tenant_id=tenant_id)
        document, number = published.document, published.version
    lines = [Line(sku=li.sku, category=li.category, amount=li.amount, merchant=li.merchant, venue=li.venue,
                  format=li.format.value) for li in data.lines]
    quote = quote_earn(document, lines=lines, tier_code=data.tier_code, at_local=data.at.astimezone(tx.tz))
    return EarnPreview(program_version=number, points=quote.points, growth=quote.growth,
                       explanation=quote.explanation,
                       parts=[EarnPartOut(rule=p.rule, label=p.label, points=p.points) for p in quote.parts],
                       excluded_lines=[i for i, _ in quote.excluded])
