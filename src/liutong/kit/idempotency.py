"""Idempotency keys for every write.

The client chooses the key. A write *claims* it before doing anything:

* the first time, the work runs and its response is stored with the key in the same
  transaction, so either both commit or neither does;
* the same key with the same request returns the stored response and posts nothing;
* the same key with a different request (or for a different operation) is a conflict;
* a key whose request failed with a *sticky* error (insufficient balance) keeps failing
  with that same error, even after the balance grows (see ``Runtime.transaction``).

A write takes its key by inserting it (``ON CONFLICT DO NOTHING``) before any work; a
concurrent request with the same key waits on that row until the first commits, then reads
its answer. SQLite serialises every write transaction already (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from liutong.db import Base, UTCDateTime, insert_or_ignore
from liutong.errors import IdempotencyConflict, IdempotencyKeyRequired, LiutongError

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

M = TypeVar("M", bound=BaseModel)

PLATFORM = 0  # the tenant id under which platform-level writes (creating tenants) keep their keys


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    #: pending (only ever seen inside the transaction that claimed it) | succeeded | failed
    outcome: Mapped[str] = mapped_column(String(16))
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Claim:
    tenant_id: int
    key: str
    operation: str
    request_hash: str


def request_hash(request: Any) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: Keys the system derives for work it does itself (merge legs, expiry runs) start with this;
#: clients may not use it, so a client's key can never collide with a derived one.
SYSTEM_PREFIX = "~"


def check_key(key: str | None) -> str:
    """Validate a key that a client sent."""
    if key is None or not 1 <= len(key) <= 128 or not key.isprintable() or key.startswith(SYSTEM_PREFIX):
        raise IdempotencyKeyRequired()
    return key


def system_key(*parts: object) -> str:
    return SYSTEM_PREFIX + ":".join(str(p) for p in parts)


def claim(tx: Tx, *, tenant_id: int, key: str, operation: str, request: Any) -> Claim | dict[str, Any]:
    """Claim ``key`` for ``operation``; returns the stored response when it was used before."""
    if not 1 <= len(key) <= 160:
        raise IdempotencyKeyRequired()
    digest = request_hash(request)
    sql = tx.sql()
    # Take the key by inserting it. A concurrent request holding the same key makes this
    # insert wait until that one commits or rolls back; then either we own the key (it rolled
    # back) or nothing is inserted and the committed answer is read below.
    owned = sql.one(
        "INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, outcome, created_at) "
        "VALUES (:t, :k, :op, :h, 'pending', :at) ON CONFLICT DO NOTHING RETURNING outcome",
        {"t": tenant_id, "k": key, "op": operation, "h": digest, "at": sql.time(tx.now())},
    )
    if owned is not None:
        new = Claim(tenant_id=tenant_id, key=key, operation=operation, request_hash=digest)
        tx.claims.append(new)
        return new
    stored_operation, stored_hash, outcome, response, error_code, error_data = sql.one(
        "SELECT operation, request_hash, outcome, response, error_code, error_data FROM idempotency_keys "
        "WHERE tenant_id = :t AND key = :k",
        {"t": tenant_id, "k": key},
    )
    if stored_operation != operation or stored_hash != digest:
        raise IdempotencyConflict(key=key)
    if outcome == "failed":
        raise LiutongError.rebuild(error_code, _json(error_data) or {})
    return _json(response)


def _json(value: Any) -> Any:
    """JSON columns come back as text from SQLite and already decoded from PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def complete(tx: Tx, claim_: Claim, response: dict[str, Any]) -> None:
    sql = tx.sql()
    sql.run(
        "UPDATE idempotency_keys SET outcome = 'succeeded', response = :resp WHERE tenant_id = :t AND key = :k",
        {"t": claim_.tenant_id, "k": claim_.key, "resp": sql.json(response)},
    )
    tx.claims.remove(claim_)


def remember_failure(tx: Tx, claim_: Claim, error: LiutongError) -> None:
    """Record a sticky failure; runs in its own transaction after the failed one rolled back.

    Concurrent retries of the same key may each fail and race to record it: the first
    record wins and the others are ignored.
    """
    tx.session.execute(
        insert_or_ignore(tx.session.get_bind(), IdempotencyKey).values(
            tenant_id=claim_.tenant_id,
            key=claim_.key,
            operation=claim_.operation,
            request_hash=claim_.request_hash,
            outcome="failed",
            error_code=error.code,
            error_data=error.data,
            created_at=tx.now(),
        )
    )


def idempotent(
    tx: Tx, *, tenant_id: int, key: str, operation: str, request: Any, model: type[M], run: Callable[[], M]
) -> M:
    """Run ``run`` once per key; replays return the first response, parsed as ``model``."""
    got = claim(tx, tenant_id=tenant_id, key=key, operation=operation, request=request)
    if not isinstance(got, Claim):
        return model.model_validate(got)
    result = run()
    complete(tx, got, result.model_dump(mode="json"))
    return result
