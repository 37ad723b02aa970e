"""The audit log of staff and integration actions (PIPL: who did what to whose data)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from liutong.organisation.models import AuditRecord

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


def record_audit(tx: Tx, *, tenant_id: int, actor: str, action: str, subject_type: str, subject_id: int,
                 data: dict[str, Any]) -> int:
    return tx.session.execute(
        insert(AuditRecord).values(tenant_id=tenant_id, actor=actor, action=action, subject_type=subject_type,
                                   subject_id=subject_id, data=data, at=tx.now()).returning(AuditRecord.id)
    ).scalar_one()
