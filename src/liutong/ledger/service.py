"""The single posting path of the ledger, and the points lot operations built on it.

Invariants held here on every backend (and again by the database where it can):

* the postings of an entry sum to zero per asset (``_post``; a deferred trigger on PostgreSQL);
* a cached balance is changed only together with its posting, under a row lock, and never
  below the account's ``min_balance`` (checked here, and by a CHECK constraint);
* a member's points balance equals the remaining points of their lots: only the lot
  operations below move a lot-backed account, and each writes the lot changes it makes;
* row locks are taken in ascending account id order, so that two entries touching the same
  accounts in opposite directions wait for each other instead of deadlocking;
* every write claims its idempotency key first (``kit.idempotency``).

Entity, merchant and system accounts are hot aggregates: they are appended to without a lock
and their balance is the sum of their postings.

The hot path (claim, lock, write) runs plain SQL on the transaction's own driver cursor
(``kit.driver_sql``): SQLAlchemy's per-statement work cost more than SQLite itself. On
PostgreSQL an entry is written in one statement; round trips, not Python, set the ceiling.
Less frequent work (reversals, merges, scheduled jobs) stays in SQLAlchemy Core.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, or_, select, update

from liutong.errors import (
    EntryAlreadyReversed,
    InsufficientBalance,
    InvalidAmount,
    InvalidReference,
    LotBackedAccount,
    MemberNotActive,
    MemberNotFound,
    NotFound,
    NotReversible,
    StoredValueAccount,
    UnbalancedEntry,
)
from liutong.kit import idempotency
from liutong.kit.money import refund_parts
from liutong.ledger import batch
from liutong.ledger.models import (
    ASSET_OF,
    LOT_BACKED,
    MEMBER_KINDS,
    STORED_VALUE_KINDS,
    Account,
    AccountKind,
    JournalEntry,
    LotMovement,
    LotStatus,
    OwnerType,
    PointsLot,
    Posting,
)
from liutong.ledger.schemas import EntryResult, LegIn, LotChange, PostingOut

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

accounts_t = Account.__table__
entries_t = JournalEntry.__table__
postings_t = Posting.__table__
lots_t = PointsLot.__table__
movements_t = LotMovement.__table__

ENTITY_KINDS = (
    AccountKind.points_issued,
    AccountKind.points_redeemed,
    AccountKind.points_expired,
    AccountKind.sv_issued,
    AccountKind.sv_bonus_issued,
    AccountKind.receivable,
    AccountKind.payable,
)
MERCHANT_KINDS = (AccountKind.receivable, AccountKind.payable)
SYSTEM_KINDS = (AccountKind.growth_issued, AccountKind.payment_clearing, AccountKind.adjustments)


# --- opening accounts ------------------------------------------------------------------------


def _open(tx: Tx, tenant_id: int, owner_type: OwnerType, owner_id: int, kinds: Iterable[AccountKind]) -> None:
    member = owner_type is OwnerType.member
    tx.session.execute(
        insert(accounts_t),
        [
            {
                "tenant_id": tenant_id,
                "owner_type": owner_type.value,
                "owner_id": owner_id,
                "kind": kind.value,
                "asset": ASSET_OF[kind].value,
                "balance": 0,
                "tracks_balance": member,
                "min_balance": 0 if member else None,
                "created_at": tx.now(),
            }
            for kind in kinds
        ],
    )


def open_member_accounts(tx: Tx, *, tenant_id: int, member_id: int) -> None:
    _open(tx, tenant_id, OwnerType.member, member_id, MEMBER_KINDS)


def open_entity_accounts(tx: Tx, *, tenant_id: int, entity_id: int) -> None:
    _open(tx, tenant_id, OwnerType.entity, entity_id, ENTITY_KINDS)


def open_merchant_accounts(tx: Tx, *, tenant_id: int, merchant_id: int) -> None:
    _open(tx, tenant_id, OwnerType.merchant, merchant_id, MERCHANT_KINDS)


def open_system_accounts(tx: Tx, *, tenant_id: int) -> None:
    _open(tx, tenant_id, OwnerType.system, 0, SYSTEM_KINDS)


# --- locking and looking up --------------------------------------------------------------------


@dataclass
class Held:
    """A tracked account under this transaction's row lock, with its balance as it stands."""

    id: int
    kind: str
    asset: str
    balance: int
    min_balance: int | None


def _lock_member_accounts(
    tx: Tx, tenant_id: int, member_id: int, kinds: Sequence[AccountKind], *, issuer: int | None = None,
    growth_issued: bool = False, require_active: bool = True,
) -> dict[str, Held]:
    """Lock the member's accounts (all of them, ascending id) and check the member may transact
    (scheduled jobs such as expiry and vesting pass ``require_active=False``: they run for
    frozen members too).

    Locking all five costs nothing extra (one member, one statement) and keeps one global lock
    order whatever the operation needs. With ``issuer``, the same round trip also finds (without
    locking: it is a hot aggregate) that entity's ``points_issued`` account, under the key
    ``"issuer"``.
    """
    sql = tx.sql()
    query = (
        "WITH m AS (SELECT a.id, a.kind, a.asset, a.balance, a.min_balance, mm.status FROM ledger_accounts a "
        "JOIN members mm ON mm.id = a.owner_id "
        "WHERE a.tenant_id = :tenant AND a.owner_type = 'member' AND a.owner_id = :member AND mm.tenant_id = :tenant "
        "ORDER BY a.id" + (" FOR UPDATE OF a" if sql.postgres else "") + ") "
        "SELECT id, kind, asset, balance, min_balance, status FROM m"
    )
    params: dict[str, Any] = {"tenant": tenant_id, "member": member_id}
    if issuer is not None:
        query += (
            " UNION ALL SELECT id, 'issuer', asset, balance, min_balance, 'entity' FROM ledger_accounts "
            "WHERE tenant_id = :tenant AND owner_type = 'entity' AND owner_id = :issuer AND kind = 'points_issued'"
        )
        params["issuer"] = issuer
    if growth_issued:
        query += (
            " UNION ALL SELECT id, 'growth_issued', asset, balance, min_balance, 'entity' FROM ledger_accounts "
            "WHERE tenant_id = :tenant AND owner_type = 'system' AND owner_id = 0 AND kind = 'growth_issued'"
        )
    rows = sql.all(query, params)
    members = [r for r in rows if r[5] != "entity"]
    if not members:
        raise MemberNotFound(member_id=member_id)
    if require_active and members[0][5] != "active":
        raise MemberNotActive(status=members[0][5])
    if issuer is not None and not any(r[1] == "issuer" for r in rows):
        raise InvalidReference(what="法人主体 / legal entity")
    wanted = {k.value for k in kinds} | {"issuer", "growth_issued"}
    return {r[1]: Held(r[0], r[1], r[2], r[3], r[4]) for r in rows if r[1] in wanted}


def _lock_ids(tx: Tx, ids: Iterable[int]) -> None:
    sql = tx.sql()
    if sql.postgres:
        placeholders, params = sql.in_list("a", sorted(set(ids)))
        sql.run(f"SELECT id FROM ledger_accounts WHERE id IN {placeholders} ORDER BY id FOR UPDATE", params)


def _owner_accounts(tx: Tx, tenant_id: int, owner_type: OwnerType, owner_ids: Iterable[int], kind: AccountKind) -> dict[int, int]:
    """owner id → account id for one kind (aggregates: no lock)."""
    wanted = sorted(set(owner_ids))
    sql = tx.sql()
    placeholders, params = sql.in_list("o", wanted)
    rows = sql.all(
        "SELECT owner_id, id FROM ledger_accounts WHERE tenant_id = :tenant AND owner_type = :owner_type "
        f"AND kind = :kind AND owner_id IN {placeholders}",
        {"tenant": tenant_id, "owner_type": owner_type.value, "kind": kind.value, **params},
    )
    found = dict(rows)
    if len(found) != len(wanted):
        raise InvalidReference(what="法人主体 / legal entity" if owner_type is OwnerType.entity else owner_type.value)
    return found


def account_id(tx: Tx, *, tenant_id: int, owner_type: OwnerType, owner_id: int, kind: AccountKind) -> int:
    return _owner_accounts(tx, tenant_id, owner_type, [owner_id], kind)[owner_id]


# --- the single posting function -------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    account_id: int
    kind: str
    asset: str
    amount: int


@dataclass
class LotChanges:
    """What an entry does to points lots, written together with its postings."""

    #: (lot id, signed change of ``remaining``, movement kind)
    moves: Sequence[tuple[int, int, str]] = ()
    #: ``remaining`` of each moved lot before this entry
    remaining: dict[int, int] = field(default_factory=dict)
    #: explicit new status per lot; otherwise active while something remains, else spent
    status: dict[int, str] = field(default_factory=dict)
    #: the lot an earn creates (column → value; ``source_entry_id`` is filled in)
    new_lot: dict[str, Any] | None = None

    def lot_rows(self) -> list[tuple[int, int, str]]:
        left = dict(self.remaining)
        for lot_id, delta, _ in self.moves:
            left[lot_id] += delta
        return [
            (lot_id, left[lot_id],
             self.status.get(lot_id) or (LotStatus.active.value if left[lot_id] else LotStatus.spent.value))
            for lot_id in sorted({m[0] for m in self.moves})
        ]


def _post(
    tx: Tx,
    *,
    tenant_id: int,
    key: str,
    kind: str,
    legs: Sequence[Leg],
    held: Iterable[Held],
    lots: LotChanges | None = None,
    member_id: int | None = None,
    reverses_id: int | None = None,
    effective_at: datetime | None = None,
    memo: str | None = None,
    ref: str | None = None,
) -> tuple[int, list[PostingOut], int | None]:
    """Write one balanced entry with its postings, balances and lot changes.

    ``held`` are the tracked accounts, already locked by the caller. Returns the entry id,
    the postings and the id of the lot created (earn), if any.
    """
    held = {h.id: h for h in held}
    totals: dict[str, int] = defaultdict(int)
    for leg in legs:
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount == 0:
            raise InvalidAmount()
        totals[leg.asset] += leg.amount
    for asset, total in totals.items():
        if total != 0:
            raise UnbalancedEntry(asset=asset, total=total)

    balances = {aid: h.balance for aid, h in held.items()}
    after: list[int | None] = []
    for leg in legs:
        if leg.account_id in balances:
            balances[leg.account_id] += leg.amount
            after.append(balances[leg.account_id])
        else:
            after.append(None)
    for aid, new in balances.items():
        floor = held[aid].min_balance
        if floor is not None and new < floor:
            raise InsufficientBalance(available=held[aid].balance - floor, requested=held[aid].balance - new)

    now = tx.now()
    sql = tx.sql()
    lots = lots or LotChanges()
    entry = {"tenant": tenant_id, "key": key, "kind": kind, "member": member_id, "reverses": reverses_id,
             "effective": sql.time(effective_at or now), "recorded": sql.time(now), "memo": memo, "ref": ref}
    postings = [(leg.account_id, leg.asset, leg.amount, bal) for leg, bal in zip(legs, after, strict=True)]
    changed = [(aid, new) for aid, new in balances.items() if new != held[aid].balance]
    lot_rows = lots.lot_rows()
    movements = [(lot_id, delta, mkind) for lot_id, delta, mkind in lots.moves if delta]
    new_lot = dict(lots.new_lot or {})
    for column in ("earned_at", "vests_at", "expires_at"):
        if column in new_lot:
            new_lot[column] = sql.time(new_lot[column])
    write = _write_entry_postgres if sql.postgres else _write_entry_stepwise
    entry_id, lot_id = write(sql, entry, postings, changed, lot_rows, movements, new_lot)
    for aid, new in changed:
        held[aid].balance = new
    return entry_id, [
        PostingOut(account_id=leg.account_id, kind=leg.kind, asset=leg.asset, amount=leg.amount, balance_after=bal)
        for leg, bal in zip(legs, after, strict=True)
    ], lot_id


_ENTRY_COLUMNS = "tenant_id, idempotency_key, kind, member_id, reverses_id, effective_at, recorded_at, memo, ref"
_ENTRY_VALUES = ":tenant, :key, :kind, :member, :reverses, :effective, :recorded, :memo, :ref"
_LOT_COLUMNS = ("tenant_id", "member_id", "account_id", "issuer_entity_id", "amount", "remaining", "status",
                "earned_at", "vests_at", "expires_at")


def _write_entry_stepwise(sql, entry, postings, changed, lot_rows, movements, new_lot) -> tuple[int, int | None]:
    """SQLite: one statement per table (SQLite has no data-modifying CTEs)."""
    (entry_id,) = sql.one(f"INSERT INTO ledger_entries ({_ENTRY_COLUMNS}) VALUES ({_ENTRY_VALUES}) RETURNING id", entry)
    tenant = entry["tenant"]
    sql.many(
        "INSERT INTO ledger_postings (tenant_id, entry_id, account_id, asset, amount, balance_after) "
        "VALUES (:t, :e, :a, :s, :m, :b)",
        [{"t": tenant, "e": entry_id, "a": a, "s": s, "m": m, "b": b} for a, s, m, b in postings],
    )
    sql.many("UPDATE ledger_accounts SET balance = :bal WHERE id = :aid", [{"aid": a, "bal": b} for a, b in changed])
    sql.many("UPDATE points_lots SET remaining = :rem, status = :st WHERE id = :lid",
             [{"lid": lot, "rem": rem, "st": st} for lot, rem, st in lot_rows])
    sql.many("INSERT INTO points_lot_movements (tenant_id, entry_id, lot_id, amount, kind) VALUES (:t, :e, :l, :m, :k)",
             [{"t": tenant, "e": entry_id, "l": lot, "m": m, "k": k} for lot, m, k in movements])
    lot_id = None
    if new_lot:
        columns = ", ".join((*_LOT_COLUMNS, "source_entry_id"))
        values = ", ".join(f":{c}" for c in _LOT_COLUMNS)
        (lot_id,) = sql.one(f"INSERT INTO points_lots ({columns}) VALUES ({values}, :entry) RETURNING id",
                            {**new_lot, "entry": entry_id})
    return entry_id, lot_id


def _values(prefix: str, rows: Sequence[tuple], casts: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """``(VALUES (CAST(:p0_0 AS BIGINT), …), …)`` and its parameters."""
    params: dict[str, Any] = {}
    tuples = []
    for i, row in enumerate(rows):
        cells = []
        for j, (value, cast) in enumerate(zip(row, casts, strict=True)):
            params[f"{prefix}{i}_{j}"] = value
            cells.append(f"CAST(:{prefix}{i}_{j} AS {cast})")
        tuples.append("(" + ", ".join(cells) + ")")
    return "(VALUES " + ", ".join(tuples) + ")", params


def _write_entry_postgres(sql, entry, postings, changed, lot_rows, movements, new_lot) -> tuple[int, int | None]:
    """PostgreSQL: the whole entry in one statement (data-modifying CTEs), one round trip."""
    params = dict(entry)
    values, more = _values("p", postings, ("BIGINT", "VARCHAR", "BIGINT", "BIGINT"))
    params |= more
    parts = [
        f"e AS (INSERT INTO ledger_entries ({_ENTRY_COLUMNS}) VALUES ({_ENTRY_VALUES}) RETURNING id)",
        "p AS (INSERT INTO ledger_postings (tenant_id, entry_id, account_id, asset, amount, balance_after) "
        f"SELECT :tenant, e.id, v.a, v.s, v.m, v.b FROM e, {values} AS v(a, s, m, b))",
    ]
    if changed:
        values, more = _values("b", changed, ("BIGINT", "BIGINT"))
        params |= more
        parts.append(f"b AS (UPDATE ledger_accounts t SET balance = v.bal FROM {values} AS v(id, bal) WHERE t.id = v.id)")
    if lot_rows:
        values, more = _values("l", lot_rows, ("BIGINT", "BIGINT", "VARCHAR"))
        params |= more
        parts.append("lu AS (UPDATE points_lots t SET remaining = v.rem, status = v.st "
                     f"FROM {values} AS v(id, rem, st) WHERE t.id = v.id)")
    if movements:
        values, more = _values("m", movements, ("BIGINT", "BIGINT", "VARCHAR"))
        params |= more
        parts.append("lm AS (INSERT INTO points_lot_movements (tenant_id, entry_id, lot_id, amount, kind) "
                     f"SELECT :tenant, e.id, v.l, v.m, v.k FROM e, {values} AS v(l, m, k))")
    select_lot = "NULL"
    if new_lot:
        casts = ("BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "VARCHAR", "TIMESTAMP", "TIMESTAMP",
                 "TIMESTAMP")
        cells = ", ".join(f"CAST(:n_{c} AS {cast})" for c, cast in zip(_LOT_COLUMNS, casts, strict=True))
        params |= {f"n_{c}": new_lot[c] for c in _LOT_COLUMNS}
        parts.append(f"nl AS (INSERT INTO points_lots ({', '.join(_LOT_COLUMNS)}, source_entry_id) "
                     f"SELECT {cells}, e.id FROM e RETURNING id)")
        select_lot = "(SELECT id FROM nl)"
    entry_id, lot_id = sql.one("WITH " + ", ".join(parts) + f" SELECT e.id, {select_lot} FROM e", params)
    return entry_id, lot_id


def _result(
    tx: Tx,
    claim: idempotency.Claim | None,
    *,
    entry_id: int,
    kind: str,
    member_id: int | None,
    effective_at: datetime | None,
    postings: list[PostingOut],
    lots: list[LotChange] | None = None,
    reverses_id: int | None = None,
) -> EntryResult:
    result = EntryResult(
        entry_id=entry_id,
        kind=kind,
        member_id=member_id,
        effective_at=effective_at or tx.now(),
        reverses_id=reverses_id,
        postings=postings,
        lots=lots or [],
    )
    if claim is not None:
        idempotency.complete(tx, claim, result.model_dump(mode="json"))
    return result


def _claim(tx: Tx, *, covered: bool, tenant_id: int, key: str, operation: str, request: Any
           ) -> idempotency.Claim | dict[str, Any] | None:
    """Claim the entry's key — unless ``covered``: the caller already holds an idempotency key
    whose replay returns before calling here (a checkout's order number), so the derived key
    is only written on the entry, whose unique key still forbids a second one."""
    if covered:
        return None
    return idempotency.claim(tx, tenant_id=tenant_id, key=key, operation=operation, request=request)


def _positive(points: Any) -> int:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise InvalidAmount()
    return points


# --- generic entries (stored value, growth, settlement accounts) -----------------------------


def post_entry(
    tx: Tx,
    *,
    tenant_id: int,
    key: str,
    kind: str,
    legs: Sequence[LegIn],
    member_id: int | None = None,
    effective_at: datetime | None = None,
    memo: str | None = None,
    ref: str | None = None,
) -> EntryResult:
    """A balanced entry over any accounts that are not lot-backed."""
    request = {"kind": kind, "legs": [[leg.account_id, leg.amount] for leg in legs], "member_id": member_id,
               "memo": memo, "ref": ref}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="ledger.entry", request=request)
    if not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got)
    if len(legs) < 2:
        raise UnbalancedEntry(asset="-", total="需要至少两条分录 / at least two legs")
    ids = sorted({leg.account_id for leg in legs})
    _lock_ids(tx, ids)
    rows = {
        r.id: r
        for r in tx.session.execute(
            select(
                accounts_t.c.id, accounts_t.c.kind, accounts_t.c.asset, accounts_t.c.balance,
                accounts_t.c.min_balance, accounts_t.c.tracks_balance,
            ).where(accounts_t.c.tenant_id == tenant_id, accounts_t.c.id.in_(ids))
        ).all()
    }
    missing = [i for i in ids if i not in rows]
    if missing:
        raise InvalidReference(what=f"账户 / account {missing[0]}")
    for r in rows.values():
        if r.kind in {k.value for k in LOT_BACKED}:
            raise LotBackedAccount()
        if r.kind in {k.value for k in STORED_VALUE_KINDS}:
            raise StoredValueAccount()
    held = [Held(r.id, r.kind, r.asset, r.balance, r.min_balance) for r in rows.values() if r.tracks_balance]
    typed = [Leg(leg.account_id, rows[leg.account_id].kind, rows[leg.account_id].asset, leg.amount) for leg in legs]
    entry_id, postings, _ = _post(
        tx, tenant_id=tenant_id, key=key, kind=kind, legs=typed, held=held, member_id=member_id,
        effective_at=effective_at, memo=memo, ref=ref,
    )
    return _result(tx, got, entry_id=entry_id, kind=kind, member_id=member_id, effective_at=effective_at,
                   postings=postings)


# --- points lots ---------------------------------------------------------------------------------


def earn_points(
    tx: Tx,
    *,
    tenant_id: int,
    member_id: int,
    issuer_entity_id: int,
    points: int,
    key: str,
    expires_at: datetime | None,
    vests_at: datetime | None = None,
    effective_at: datetime | None = None,
    memo: str | None = None,
    ref: str | None = None,
    growth: int = 0,
    covered: bool = False,
) -> EntryResult:
    """Credit a new lot of ``points`` issued by ``issuer_entity_id`` — and, in the same entry,
    the ``growth`` the same purchase earned.

    A lot with ``vests_at`` in the future is pending: it sits in the member's pending account
    and becomes spendable only when ``vest_points`` moves it. ``covered``: see ``_claim``.
    """
    request = {"member_id": member_id, "issuer": issuer_entity_id, "points": points,
               "expires_at": expires_at, "vests_at": vests_at, "memo": memo, "ref": ref}
    if growth:
        request["growth"] = growth
    got = _claim(tx, covered=covered, tenant_id=tenant_id, key=key, operation="points.earn", request=request)
    if got is not None and not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got)
    _positive(points)
    if growth:
        _positive(growth)
    when = effective_at or tx.now()
    pending = vests_at is not None and vests_at > when
    kind = AccountKind.points_pending if pending else AccountKind.points
    kinds = [kind, AccountKind.growth] if growth else [kind]
    held = _lock_member_accounts(tx, tenant_id, member_id, kinds, issuer=issuer_entity_id,
                                 growth_issued=bool(growth))
    member_account = held[kind.value]
    issued = held["issuer"].id
    legs = [
        Leg(member_account.id, kind.value, "POINTS", points),
        Leg(issued, AccountKind.points_issued.value, "POINTS", -points),
    ]
    if growth:
        legs += [Leg(held[AccountKind.growth.value].id, AccountKind.growth.value, "GROWTH", growth),
                 Leg(held["growth_issued"].id, AccountKind.growth_issued.value, "GROWTH", -growth)]
    lot = {"tenant_id": tenant_id, "member_id": member_id, "account_id": member_account.id,
           "issuer_entity_id": issuer_entity_id, "amount": points, "remaining": points,
           "status": (LotStatus.pending if pending else LotStatus.active).value, "earned_at": when,
           "vests_at": vests_at, "expires_at": expires_at}
    tracked = [member_account, held[AccountKind.growth.value]] if growth else [member_account]
    entry_id, postings, lot_id = _post(tx, tenant_id=tenant_id, key=key, kind="earn", legs=legs,
                                       held=tracked, lots=LotChanges(new_lot=lot), member_id=member_id,
                                       effective_at=when, memo=memo, ref=ref)
    return _result(tx, got, entry_id=entry_id, kind="earn", member_id=member_id, effective_at=when,
                   postings=postings, lots=[LotChange(lot_id=lot_id, amount=points, kind="earn")])


def spend_points(
    tx: Tx,
    *,
    tenant_id: int,
    member_id: int,
    points: int,
    key: str,
    effective_at: datetime | None = None,
    memo: str | None = None,
    ref: str | None = None,
    covered: bool = False,
) -> EntryResult:
    """Draw ``points`` from the member's lots that expire first; each issuer is credited
    with what was drawn from its lots (the redeemed points it will be charged for).
    ``covered``: see ``_claim``."""
    request = {"member_id": member_id, "points": points, "memo": memo, "ref": ref}
    got = _claim(tx, covered=covered, tenant_id=tenant_id, key=key, operation="points.spend", request=request)
    if got is not None and not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got)
    _positive(points)
    when = effective_at or tx.now()
    held = _lock_member_accounts(tx, tenant_id, member_id, [AccountKind.points])
    account = held[AccountKind.points.value]
    if account.balance < points:
        raise InsufficientBalance(available=account.balance, requested=points)
    sql = tx.sql()
    # Each lot comes with its issuer's redeemed account, the one charged for what is drawn.
    lots = sql.all(
        "SELECT l.id, l.remaining, l.issuer_entity_id, a.id FROM points_lots l "
        "JOIN ledger_accounts a ON a.tenant_id = l.tenant_id AND a.owner_type = 'entity' "
        "AND a.owner_id = l.issuer_entity_id AND a.kind = 'points_redeemed' "
        "WHERE l.tenant_id = :tenant AND l.member_id = :member AND l.status = 'active' "
        "AND (l.expires_at IS NULL OR l.expires_at > :when) "
        # soonest expiry first, lots that never expire last, then oldest, then lowest id
        "ORDER BY CASE WHEN l.expires_at IS NULL THEN 1 ELSE 0 END, l.expires_at, l.earned_at, l.id",
        {"tenant": tenant_id, "member": member_id, "when": sql.time(when)},
    )
    draws: list[tuple[int, int, int]] = []  # lot id, drawn, issuer
    left = points
    redeemed: dict[int, int] = {}
    for lot_id, lot_remaining, issuer, redeemed_account in lots:
        if left == 0:
            break
        take = min(lot_remaining, left)
        draws.append((lot_id, take, issuer))
        redeemed[issuer] = redeemed_account
        left -= take
    if left:
        raise InsufficientBalance(available=points - left, requested=points)

    by_issuer: dict[int, int] = defaultdict(int)
    for _, take, issuer in draws:
        by_issuer[issuer] += take
    legs = [Leg(account.id, AccountKind.points.value, "POINTS", -points)] + [
        Leg(redeemed[issuer], AccountKind.points_redeemed.value, "POINTS", amount)
        for issuer, amount in sorted(by_issuer.items())
    ]
    changes = LotChanges(moves=[(lot_id, -take, "spend") for lot_id, take, _ in draws],
                         remaining={lot[0]: lot[1] for lot in lots})
    entry_id, postings, _ = _post(tx, tenant_id=tenant_id, key=key, kind="spend", legs=legs, held=[account],
                                  lots=changes, member_id=member_id, effective_at=when, memo=memo, ref=ref)
    return _result(tx, got, entry_id=entry_id, kind="spend", member_id=member_id, effective_at=when,
                   postings=postings,
                   lots=[LotChange(lot_id=lot_id, amount=-take, kind="spend") for lot_id, take, _ in draws])


def expire_points(tx: Tx, *, tenant_id: int, member_id: int, as_of: datetime, key: str) -> EntryResult | None:
    """Expire the member's active lots whose expiry is at or before ``as_of``.

    Expiry is a posting (member → the issuer's expired account, i.e. breakage), never a
    deletion; the lots keep their history with status ``expired``. Returns None when nothing
    was due.
    """
    request = {"member_id": member_id, "as_of": as_of}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="points.expire", request=request)
    if not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got) if got else None
    held = _lock_member_accounts(tx, tenant_id, member_id, LOT_BACKED, require_active=False)
    account = held[AccountKind.points.value]
    due = tx.session.execute(
        select(lots_t.c.id, lots_t.c.remaining, lots_t.c.issuer_entity_id).where(
            lots_t.c.tenant_id == tenant_id,
            lots_t.c.member_id == member_id,
            lots_t.c.status == LotStatus.active.value,
            lots_t.c.expires_at <= as_of,
        ).order_by(lots_t.c.id)
    ).all()
    if not due:
        idempotency.complete(tx, got, {})
        return None
    by_issuer: dict[int, int] = defaultdict(int)
    for lot in due:
        by_issuer[lot.issuer_entity_id] += lot.remaining
    total = sum(by_issuer.values())
    expired_accounts = _owner_accounts(tx, tenant_id, OwnerType.entity, by_issuer, AccountKind.points_expired)
    legs = [Leg(account.id, AccountKind.points.value, "POINTS", -total)] + [
        Leg(expired_accounts[i], AccountKind.points_expired.value, "POINTS", n) for i, n in sorted(by_issuer.items())
    ]
    changes = LotChanges(moves=[(lot.id, -lot.remaining, "expire") for lot in due],
                         remaining={lot.id: lot.remaining for lot in due},
                         status={lot.id: LotStatus.expired.value for lot in due})
    entry_id, postings, _ = _post(tx, tenant_id=tenant_id, key=key, kind="expire", legs=legs, held=[account],
                                  lots=changes, member_id=member_id, effective_at=as_of,
                                  memo="积分过期 / points expired")
    return _result(tx, got, entry_id=entry_id, kind="expire", member_id=member_id, effective_at=as_of,
                   postings=postings, lots=[LotChange(lot_id=lot.id, amount=-lot.remaining, kind="expire") for lot in due])


def expire_due_points(tx: Tx, *, tenant_id: int, as_of: datetime) -> int:
    """Expire every member's lots that are due at ``as_of``; returns the number of entries.

    Set-wise, a chunk of members at a time, in the caller's transaction (``ledger.batch``): the
    entries are those ``expire_points`` would post, under the keys it would be given
    (``system_key("expire", member_id, as_of.isoformat())``), so a rerun posts nothing twice.
    The daily job (``ledger.tasks``) runs the same chunks, one transaction each.
    """
    return batch.expire_due(tx, tenant_id=tenant_id, as_of=as_of).members


def vest_due_points(tx: Tx, *, tenant_id: int, as_of: datetime) -> int:
    """Vest every member's pending lots whose refund window has passed at ``as_of``; returns the
    number of entries (one per member, keyed ``system_key("vest", member_id, as_of.isoformat())``)."""
    return batch.vest_due(tx, tenant_id=tenant_id, as_of=as_of).members


def vest_points(tx: Tx, *, tenant_id: int, member_id: int, as_of: datetime, key: str,
                source_entry_ids: Sequence[int] | None = None) -> EntryResult | None:
    """Make pending lots whose refund window has passed spendable — or, with
    ``source_entry_ids``, the pending lots those earns created, whatever their window (a hotel
    guest's check-out ends the window of what the stay earned)."""
    request: dict[str, Any] = {"member_id": member_id, "as_of": as_of}
    if source_entry_ids is not None:
        request["sources"] = sorted(source_entry_ids)
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="points.vest", request=request)
    if not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got) if got else None
    held = _lock_member_accounts(tx, tenant_id, member_id, LOT_BACKED, require_active=False)
    pending, active = held[AccountKind.points_pending.value], held[AccountKind.points.value]
    due = tx.session.execute(
        select(lots_t.c.id, lots_t.c.remaining).where(
            lots_t.c.tenant_id == tenant_id,
            lots_t.c.member_id == member_id,
            lots_t.c.status == LotStatus.pending.value,
            lots_t.c.vests_at <= as_of if source_entry_ids is None
            else lots_t.c.source_entry_id.in_(source_entry_ids),
        ).order_by(lots_t.c.id)
    ).all()
    total = sum(lot.remaining for lot in due)
    if not total:
        idempotency.complete(tx, got, {})
        return None
    legs = [Leg(pending.id, AccountKind.points_pending.value, "POINTS", -total),
            Leg(active.id, AccountKind.points.value, "POINTS", total)]
    entry_id, postings, _ = _post(tx, tenant_id=tenant_id, key=key, kind="vest", legs=legs,
                               held=[pending, active], member_id=member_id, effective_at=as_of,
                               memo="积分解冻 / points vested")
    tx.session.execute(
        update(lots_t).where(lots_t.c.id.in_([lot.id for lot in due]))
        .values(status=LotStatus.active.value, account_id=active.id)
    )
    return _result(tx, got, entry_id=entry_id, kind="vest", member_id=member_id, effective_at=as_of,
                   postings=postings, lots=[LotChange(lot_id=lot.id, amount=lot.remaining, kind="vest") for lot in due])


# --- reversals ------------------------------------------------------------------------------------


def reverse_entry(tx: Tx, *, tenant_id: int, entry_id: int, key: str, memo: str | None = None) -> EntryResult:
    """Reverse an entry with a new entry that points at it; the original is never edited.

    * an earn is reversed only while its lot is untouched (refund claw-back policies for
      lots already spent belong to the checkout);
    * a spend puts the points back into the very lots they came from, keeping their expiry;
      points whose lot has expired in the meantime come back expired;
    * other non-lot entries are negated leg by leg, within the accounts' floors.
    """
    request = {"entry_id": entry_id, "memo": memo}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="ledger.reverse", request=request)
    if not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got)
    original = tx.session.execute(
        select(entries_t).where(entries_t.c.tenant_id == tenant_id, entries_t.c.id == entry_id)
    ).first()
    if original is None:
        raise NotFound(what="分录 / ledger entry")
    if original.kind in ("reversal", "restore", "claw_back", "expire", "vest", "merge"):
        raise NotReversible(reason=original.kind)
    if original.kind != "spend" and tx.session.scalar(select(func.count()).where(entries_t.c.reverses_id == entry_id)):
        raise EntryAlreadyReversed()
    legs_rows = tx.session.execute(
        select(postings_t.c.account_id, postings_t.c.asset, postings_t.c.amount, accounts_t.c.kind,
               accounts_t.c.tracks_balance)
        .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
        .where(postings_t.c.entry_id == entry_id)
        .order_by(postings_t.c.id)
    ).all()
    member_id = original.member_id
    when = tx.now()
    memo = memo or f"冲正 #{entry_id} / reversal"
    lot_moves: list[tuple[int, int, str]] = []
    status: dict[int, str] = {}
    remaining: dict[int, int] = {}

    if original.kind == "earn":
        # The lot may have vested since: claw back from the account it lives in now.
        held = _lock_member_accounts(tx, tenant_id, member_id, LOT_BACKED)
        lot = tx.session.execute(select(lots_t).where(lots_t.c.source_entry_id == entry_id)).one()
        if lot.remaining != lot.amount or lot.status not in (LotStatus.active.value, LotStatus.pending.value):
            raise NotReversible(reason="积分已被使用或已过期 / the points were already spent or expired")
        kind = AccountKind.points if lot.status == LotStatus.active.value else AccountKind.points_pending
        issued = next(r for r in legs_rows if r.kind == AccountKind.points_issued.value)
        legs = [Leg(held[kind.value].id, kind.value, "POINTS", -lot.amount),
                Leg(issued.account_id, issued.kind, "POINTS", lot.amount)]
        lot_moves.append((lot.id, -lot.amount, "reverse"))
        remaining[lot.id] = lot.remaining
        status[lot.id] = LotStatus.reversed.value
    elif original.kind == "spend":
        held = _lock_member_accounts(tx, tenant_id, member_id, [AccountKind.points])
        plan = _restore_plan(tx, tenant_id, entry_id, points=None, when=when)
        if not plan.total:
            raise EntryAlreadyReversed()
        legs, lot_moves, remaining, status = plan.legs(held[AccountKind.points.value]), plan.moves, plan.remaining, plan.status
    else:
        if any(r.kind in {k.value for k in (*LOT_BACKED, *STORED_VALUE_KINDS)} for r in legs_rows):
            raise NotReversible(reason=original.kind)
        tracked = sorted({r.account_id for r in legs_rows if r.tracks_balance})
        _lock_ids(tx, tracked)
        held = {
            r.id: Held(r.id, r.kind, r.asset, r.balance, r.min_balance)
            for r in tx.session.execute(select(accounts_t).where(accounts_t.c.id.in_(tracked))).all()
        }
        legs = [Leg(r.account_id, r.kind, r.asset, -r.amount) for r in legs_rows]

    new_id, postings, _ = _post(tx, tenant_id=tenant_id, key=key, kind="reversal", legs=legs, held=held.values(),
                                lots=LotChanges(moves=lot_moves, remaining=remaining, status=status),
                                member_id=member_id, reverses_id=entry_id, effective_at=when, memo=memo)
    return _result(tx, got, entry_id=new_id, kind="reversal", member_id=member_id, effective_at=when,
                   postings=postings, reverses_id=entry_id,
                   lots=[LotChange(lot_id=lid, amount=d, kind=k) for lid, d, k in lot_moves])


@dataclass
class _RestorePlan:
    """What putting (part of) a spend back into its lots does."""

    to_member: int = 0
    redeemed_back: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # issuer → points
    expired_now: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    redeemed_accounts: dict[int, int] = field(default_factory=dict)
    expired_accounts: dict[int, int] = field(default_factory=dict)
    moves: list[tuple[int, int, str]] = field(default_factory=list)
    remaining: dict[int, int] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.redeemed_back.values())

    def legs(self, account: Held) -> list[Leg]:
        legs = [Leg(account.id, AccountKind.points.value, "POINTS", self.to_member)] if self.to_member else []
        legs += [Leg(self.redeemed_accounts[i], AccountKind.points_redeemed.value, "POINTS", -n)
                 for i, n in sorted(self.redeemed_back.items()) if n]
        legs += [Leg(self.expired_accounts[i], AccountKind.points_expired.value, "POINTS", n)
                 for i, n in sorted(self.expired_now.items()) if n]
        return legs


def _restore_plan(tx: Tx, tenant_id: int, spend_entry_id: int, *, points: int | None, when: datetime) -> _RestorePlan:
    """Split ``points`` (all that is left when None) over the lots a spend drew from, in
    proportion to what each lot has not had back yet, so that partial restores in any split
    add up to exactly what was drawn. Points whose lot has lapsed come back expired."""
    drawn_rows = tx.session.execute(
        select(movements_t.c.lot_id, func.sum(movements_t.c.amount).label("drawn"))
        .where(movements_t.c.entry_id == spend_entry_id, movements_t.c.kind == "spend")
        .group_by(movements_t.c.lot_id).order_by(movements_t.c.lot_id)
    ).all()
    back_rows = dict(tx.session.execute(
        select(movements_t.c.lot_id, func.sum(movements_t.c.amount))
        .join(entries_t, entries_t.c.id == movements_t.c.entry_id)
        .where(entries_t.c.reverses_id == spend_entry_id, movements_t.c.kind == "restore")
        .group_by(movements_t.c.lot_id)
    ).all())
    lot_ids = [r.lot_id for r in drawn_rows]
    # (PostgreSQL sums come back as Decimal)
    open_to_restore = [int(-r.drawn - back_rows.get(r.lot_id, 0)) for r in drawn_rows]
    wanted = sum(open_to_restore) if points is None else points
    if wanted > sum(open_to_restore):
        raise NotReversible(reason=f"最多还可退回 {sum(open_to_restore)} 积分 / at most {sum(open_to_restore)} points left")
    plan = _RestorePlan()
    if not wanted:
        return plan
    lots = {r.id: r for r in tx.session.execute(select(lots_t).where(lots_t.c.id.in_(lot_ids))).all()}
    for lot_id, n in zip(lot_ids, refund_parts(remaining=open_to_restore, refund=wanted), strict=True):
        if not n:
            continue
        lot = lots[lot_id]
        plan.remaining[lot_id] = lot.remaining
        plan.redeemed_back[lot.issuer_entity_id] += n
        lapsed = lot.status == LotStatus.expired.value or (lot.expires_at is not None and lot.expires_at <= when)
        if lapsed:
            plan.expired_now[lot.issuer_entity_id] += n
            plan.moves += [(lot_id, n, "restore"), (lot_id, -n, "expire")]
            plan.status[lot_id] = LotStatus.expired.value
        else:
            plan.to_member += n
            plan.moves.append((lot_id, n, "restore"))
    plan.redeemed_accounts = _owner_accounts(tx, tenant_id, OwnerType.entity, plan.redeemed_back,
                                             AccountKind.points_redeemed)
    if plan.expired_now:
        plan.expired_accounts = _owner_accounts(tx, tenant_id, OwnerType.entity, plan.expired_now,
                                                AccountKind.points_expired)
    return plan


def _source_entry(tx: Tx, tenant_id: int, entry_id: int, kind: str) -> Any:
    row = tx.session.execute(
        select(entries_t).where(entries_t.c.tenant_id == tenant_id, entries_t.c.id == entry_id)
    ).first()
    if row is None or row.kind != kind:
        raise NotFound(what="分录 / ledger entry")
    return row


def restore_points(tx: Tx, *, tenant_id: int, spend_entry_id: int, points: int, key: str,
                   memo: str | None = None, ref: str | None = None) -> EntryResult:
    """Give back part of a spend (a refund of some lines): the points return to the lots they
    were drawn from, keeping their expiry; several partial restores add up to the spend."""
    request = {"spend": spend_entry_id, "points": points, "memo": memo, "ref": ref}
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="points.restore", request=request)
    if not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got)
    _positive(points)
    spend = _source_entry(tx, tenant_id, spend_entry_id, "spend")
    held = _lock_member_accounts(tx, tenant_id, spend.member_id, [AccountKind.points], require_active=False)
    when = tx.now()
    plan = _restore_plan(tx, tenant_id, spend_entry_id, points=points, when=when)
    entry_id, postings, _ = _post(
        tx, tenant_id=tenant_id, key=key, kind="restore", legs=plan.legs(held[AccountKind.points.value]),
        held=held.values(), lots=LotChanges(moves=plan.moves, remaining=plan.remaining, status=plan.status),
        member_id=spend.member_id, reverses_id=spend_entry_id, effective_at=when,
        memo=memo or f"退回积分 #{spend_entry_id} / points restored", ref=ref)
    return _result(tx, got, entry_id=entry_id, kind="restore", member_id=spend.member_id, effective_at=when,
                   postings=postings, reverses_id=spend_entry_id,
                   lots=[LotChange(lot_id=lid, amount=d, kind=k) for lid, d, k in plan.moves])


def claw_back_points(tx: Tx, *, tenant_id: int, earn_entry_id: int, points: int, key: str,
                     memo: str | None = None, ref: str | None = None,
                     other_lots: bool = True) -> EntryResult:
    """Take back points an earn gave (a refund), first from the lot it created, then — when
    those points were already spent and ``other_lots`` — from the member's other lots,
    soonest expiry first.

    What the member no longer holds is not taken (the balance never goes negative); the
    result's postings say how much was actually clawed back.
    """
    request = {"earn": earn_entry_id, "points": points, "memo": memo, "ref": ref}
    if not other_lots:
        request["other_lots"] = False
    got = idempotency.claim(tx, tenant_id=tenant_id, key=key, operation="points.claw_back", request=request)
    if not isinstance(got, idempotency.Claim):
        return EntryResult.model_validate(got)
    _positive(points)
    earn = _source_entry(tx, tenant_id, earn_entry_id, "earn")
    held = _lock_member_accounts(tx, tenant_id, earn.member_id, LOT_BACKED, require_active=False)
    when = tx.now()
    own = tx.session.execute(select(lots_t).where(lots_t.c.source_entry_id == earn_entry_id)).one()
    others = tx.session.execute(
        select(lots_t).where(lots_t.c.tenant_id == tenant_id, lots_t.c.member_id == earn.member_id,
                             lots_t.c.status == LotStatus.active.value, lots_t.c.id != own.id,
                             or_(lots_t.c.expires_at.is_(None), lots_t.c.expires_at > when))
        .order_by(lots_t.c.expires_at.is_(None), lots_t.c.expires_at, lots_t.c.earned_at, lots_t.c.id)
    ).all() if other_lots else []
    candidates = ([own] if own.status in (LotStatus.active.value, LotStatus.pending.value) else []) + list(others)
    left = points
    taken: list[tuple[Any, int]] = []
    for lot in candidates:
        if not left:
            break
        n = min(lot.remaining, left)
        if n:
            taken.append((lot, n))
            left -= n
    by_account: dict[int, int] = defaultdict(int)
    by_issuer: dict[int, int] = defaultdict(int)
    for lot, n in taken:
        by_account[lot.account_id] += n
        by_issuer[lot.issuer_entity_id] += n
    issued = _owner_accounts(tx, tenant_id, OwnerType.entity, by_issuer, AccountKind.points_issued) if by_issuer else {}
    kinds = {h.id: h.kind for h in held.values()}
    legs = [Leg(aid, kinds[aid], "POINTS", -n) for aid, n in sorted(by_account.items())]
    legs += [Leg(issued[i], AccountKind.points_issued.value, "POINTS", n) for i, n in sorted(by_issuer.items())]
    moves = [(lot.id, -n, "claw_back") for lot, n in taken]
    # an emptied lot is reversed; one with points left keeps its status (pending stays pending)
    status = {lot.id: LotStatus.reversed.value if lot.remaining == n else lot.status for lot, n in taken}
    if not legs:
        idempotency.complete(tx, got, {})
        return EntryResult(entry_id=0, kind="claw_back", member_id=earn.member_id, effective_at=when,
                           reverses_id=earn_entry_id, postings=[])
    entry_id, postings, _ = _post(
        tx, tenant_id=tenant_id, key=key, kind="claw_back", legs=legs, held=held.values(),
        lots=LotChanges(moves=moves, remaining={lot.id: lot.remaining for lot, _ in taken}, status=status),
        member_id=earn.member_id, reverses_id=earn_entry_id, effective_at=when,
        memo=memo or f"扣回积分 #{earn_entry_id} / points clawed back", ref=ref)
    return _result(tx, got, entry_id=entry_id, kind="claw_back", member_id=earn.member_id, effective_at=when,
                   postings=postings, reverses_id=earn_entry_id,
                   lots=[LotChange(lot_id=lid, amount=d, kind=k) for lid, d, k in moves])


# --- merging members --------------------------------------------------------------------------------


def move_member_balances(tx: Tx, *, tenant_id: int, source_id: int, target_id: int, key: str) -> list[int]:
    """Move every balance and every lot of ``source_id`` to ``target_id`` (member merge).

    One entry per asset moves the balances; lots are re-homed with their issuer, expiry and
    history intact. Both members' accounts are locked in ascending id order.
    """
    rows = tx.session.execute(
        select(accounts_t.c.id, accounts_t.c.owner_id, accounts_t.c.kind, accounts_t.c.asset, accounts_t.c.balance,
               accounts_t.c.min_balance)
        .where(accounts_t.c.tenant_id == tenant_id, accounts_t.c.owner_type == OwnerType.member.value,
               accounts_t.c.owner_id.in_([source_id, target_id]))
        .order_by(accounts_t.c.id)
    ).all()
    _lock_ids(tx, [r.id for r in rows])
    rows = tx.session.execute(
        select(accounts_t.c.id, accounts_t.c.owner_id, accounts_t.c.kind, accounts_t.c.asset, accounts_t.c.balance,
               accounts_t.c.min_balance).where(accounts_t.c.id.in_([r.id for r in rows]))
    ).all()
    source = {r.kind: r for r in rows if r.owner_id == source_id}
    target = {r.kind: r for r in rows if r.owner_id == target_id}
    held = [Held(r.id, r.kind, r.asset, r.balance, r.min_balance) for r in rows]
    by_asset: dict[str, list[Leg]] = defaultdict(list)
    for kind, src in source.items():
        if src.balance:
            by_asset[src.asset] += [Leg(src.id, kind, src.asset, -src.balance),
                                    Leg(target[kind].id, kind, src.asset, src.balance)]
    entry_ids = []
    for asset, legs in sorted(by_asset.items()):
        entry_id, _, _ = _post(tx, tenant_id=tenant_id, key=f"{key}:{asset}", kind="merge", legs=legs, held=held,
                            member_id=target_id, memo=f"会员合并 #{source_id} → #{target_id} / member merge")
        entry_ids.append(entry_id)
    for kind in LOT_BACKED:
        tx.session.execute(
            update(lots_t)
            .where(lots_t.c.tenant_id == tenant_id, lots_t.c.member_id == source_id,
                   lots_t.c.account_id == source[kind.value].id)
            .values(member_id=target_id, account_id=target[kind.value].id)
        )
    return entry_ids


def move_growth(tx: Tx, *, tenant_id: int, member_id: int, amount: int, ref: str, key: str) -> int:
    """Growth value is earned (or, negative, taken back) against the tenant's growth account."""
    member_account = account_id(tx, tenant_id=tenant_id, owner_type=OwnerType.member, owner_id=member_id,
                                kind=AccountKind.growth)
    system = account_id(tx, tenant_id=tenant_id, owner_type=OwnerType.system, owner_id=0,
                        kind=AccountKind.growth_issued)
    return post_entry(
        tx, tenant_id=tenant_id, key=key, kind="growth", member_id=member_id, ref=ref,
        legs=[LegIn(account_id=member_account, amount=amount), LegIn(account_id=system, amount=-amount)],
        memo="成长值 / growth value",
    ).entry_id


# --- for services that keep lots of their own (stored value) ----------------------------------------


def lock_member(tx: Tx, *, tenant_id: int, member_id: int, require_active: bool = True) -> dict[str, Held]:
    """Lock all of a member's accounts in the one global order and return them by kind.

    A service that keeps its own lots behind a member account takes this lock before it reads
    them, so that two writers never plan from the same lots; then it posts with ``post_held``.
    """
    return _lock_member_accounts(tx, tenant_id, member_id, MEMBER_KINDS, require_active=require_active)


def post_held(
    tx: Tx,
    *,
    tenant_id: int,
    key: str,
    kind: str,
    legs: Sequence[Leg],
    held: Iterable[Held],
    member_id: int | None = None,
    reverses_id: int | None = None,
    effective_at: datetime | None = None,
    memo: str | None = None,
    ref: str | None = None,
) -> tuple[int, list[PostingOut]]:
    """Post through the single posting function for a caller that has claimed ``key`` and holds
    (from ``lock_member``) every member account its legs touch. Balance floors and the per-asset
    sum are checked here as for every other entry."""
    held = list(held)
    locked = {h.id for h in held}
    member_kinds = {k.value for k in MEMBER_KINDS}
    if any(leg.kind in member_kinds and leg.account_id not in locked for leg in legs):
        raise RuntimeError("post_held: a member account in the legs is not held under lock")
    entry_id, postings, _ = _post(tx, tenant_id=tenant_id, key=key, kind=kind, legs=legs, held=held,
                                  member_id=member_id, reverses_id=reverses_id, effective_at=effective_at,
                                  memo=memo, ref=ref)
    return entry_id, postings


__all__ = [
    "Leg",
    "account_id",
    "earn_points",
    "lock_member",
    "expire_due_points",
    "expire_points",
    "move_member_balances",
    "open_entity_accounts",
    "open_member_accounts",
    "move_growth",
    "open_merchant_accounts",
    "open_system_accounts",
    "post_entry",
    "post_held",
    "reverse_entry",
    "spend_points",
    "vest_due_points",
    "vest_points",
]

