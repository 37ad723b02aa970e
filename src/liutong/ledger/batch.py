"""Scheduled points work for a whole tenant, set-wise: vesting, expiry, and reminders before expiry.

A run walks the tenant's members in id order, a chunk of members at a time (thousands). A
chunk is a couple of dozen statements whatever its size — ``INSERT … SELECT`` and
``UPDATE … FROM`` over small temporary tables that hold the chunk's members, lots and legs —
and the same SQL runs on SQLite and PostgreSQL, but for claiming the entries' keys and writing
reminders, where PostgreSQL does in one statement what SQLite does in a few. Nothing
proportional to the chunk passes through Python.

What a chunk posts for each of its members is what the per-member functions in ``service``
post (``expire_points``, ``vest_points``): one entry per member and run, of kind ``expire`` or
``vest``, dated ``as_of``, with the same legs in the same order (the member's account first, then
one leg per issuing entity, ascending), the same running balances, lot changes and lot
movements, under the same derived key ``system_key(kind, member_id, as_of.isoformat())``.

Idempotency. The derived key is unique per tenant among ledger entries, and a member whose key
is already posted is left out of the chunk; a member once posted has no lot due any more. So a
rerun of a run, or a chunk run again after a crash, posts nothing twice. Unlike the per-member
functions, a chunk stores no response under ``idempotency_keys``: the entry is the record, and a
million stored responses would cost more than the run itself.

Locks. On PostgreSQL a chunk locks its members' lot-backed accounts in ascending id order with
``SKIP LOCKED``. Every lot operation locks all of its member's accounts first
(``service._lock_member_accounts``), so holding them keeps every other change to those
members' lots and balances out until the chunk commits. A member whose accounts another
transaction holds — a purchase at a till — is skipped and counted, never waited for: the batch
never waits for a till (so it cannot be part of a deadlock), and a till waits for at most one
chunk. A skipped member stays due; the jobs in ``ledger.tasks`` run another pass for them later.
SQLite serialises writers, so nothing is ever skipped there.

Checks. The legs of every entry are summed per asset after they are written (as ``_post`` does
for a single entry; on PostgreSQL the deferred trigger checks again at commit), balances stay
within their floors by the accounts' CHECK constraint, and each issuer must have its expired
account before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from liutong.errors import InvalidReference, UnbalancedEntry
from liutong.kit.driver_sql import DriverSQL
from liutong.kit.idempotency import system_key

if TYPE_CHECKING:
    from liutong.bootstrap import Tx

#: Members per chunk: large enough that a statement's fixed cost is noise, small enough that a
#: chunk's locks are held for a fraction of a second and its transaction stays far inside a lease.
CHUNK = 5_000

EXPIRY_MEMO = "积分过期 / points expired"
VESTING_MEMO = "积分解冻 / points vested"
EXPIRING_TOPIC = "points_expiring"


@dataclass(frozen=True)
class Chunk:
    """What one chunk did, and where the walk stands."""

    #: members posted (one entry each), or reminded
    members: int = 0
    lots: int = 0
    points: int = 0
    #: members left for a later pass because another transaction held their accounts
    skipped: int = 0
    #: the last member id this chunk covered: the next chunk starts after it; None when the walk is over
    after: int | None = None

    @property
    def done(self) -> bool:
        return self.after is None


@dataclass
class Totals:
    """A whole walk added up (``expire_due``, ``vest_due``, the CLI)."""

    members: int = 0
    lots: int = 0
    points: int = 0
    skipped: int = 0
    chunks: int = 0

    def add(self, chunk: Chunk) -> None:
        self.members += chunk.members
        self.lots += chunk.lots
        self.points += chunk.points
        self.skipped += chunk.skipped
        self.chunks += 1


@dataclass(frozen=True)
class _Work:
    """One kind of lot work: which lots are due, and for what."""

    kind: str  # entry kind and key prefix
    status: str  # the status of a due lot
    due: str  # SQL over ``points_lots l``: the rest of what makes a lot due at :as_of
    #: the accounts locked per member; the first is ``account_id`` in the chunk, the second ``other_account_id``
    accounts: tuple[str, ...]


EXPIRY = _Work("expire", "active", "l.expires_at <= :as_of", ("points",))
VESTING = _Work("vest", "pending", "l.vests_at <= :as_of", ("points", "points_pending"))


# --- the chunk's working tables -------------------------------------------------------------------

# Temporary tables live per connection; a chunk empties them first. (Created inside the
# transaction, they go away with it when it rolls back.)
_SCRATCH = (
    # the chunk's members, with the accounts locked for them and their balances under the lock
    "CREATE TEMP TABLE IF NOT EXISTS batch_members (member_id BIGINT PRIMARY KEY, account_id BIGINT NOT NULL, "
    "balance BIGINT NOT NULL, other_account_id BIGINT, other_balance BIGINT, entry_id BIGINT)",
    "CREATE TEMP TABLE IF NOT EXISTS batch_lots (lot_id BIGINT PRIMARY KEY, member_id BIGINT NOT NULL, "
    "remaining BIGINT NOT NULL, issuer_entity_id BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS batch_lots_member ON batch_lots (member_id)",
    # each issuer of the chunk's lots, with its account that the work posts to
    "CREATE TEMP TABLE IF NOT EXISTS batch_issuers (issuer_entity_id BIGINT PRIMARY KEY, account_id BIGINT)",
    # the legs of the chunk's entries, in posting order; balance_after only on the members' accounts
    "CREATE TEMP TABLE IF NOT EXISTS batch_legs (entry_id BIGINT NOT NULL, leg BIGINT NOT NULL, "
    "account_id BIGINT NOT NULL, amount BIGINT NOT NULL, balance_after BIGINT, PRIMARY KEY (entry_id, leg))",
    "CREATE TEMP TABLE IF NOT EXISTS batch_reminders (member_id BIGINT PRIMARY KEY, points BIGINT NOT NULL)",
)
_SCRATCH_TABLES = ("batch_members", "batch_lots", "batch_issuers", "batch_legs", "batch_reminders")

# On PostgreSQL, every statement of a chunk joins a few thousand scratch rows to tables of
# millions, through their indexes. The planner, which has no statistics on rows written
# moments ago, would sometimes hash or merge the whole big table instead — once per chunk,
# which makes a run quadratic in the members. Within a chunk it is given nested loops only (and
# no JIT compilation, which costs more than these statements); the settings are put back at
# the end of the chunk.
_PLANNER = {"enable_hashjoin": "off", "enable_mergejoin": "off", "jit": "off"}


def _scratch(sql: DriverSQL) -> None:
    for statement in _SCRATCH:
        sql.run(statement)
    for table in _SCRATCH_TABLES:
        sql.run(f"DELETE FROM {table}")


@contextmanager
def _planned_per_chunk(sql: DriverSQL) -> Iterator[None]:
    """Plans for a chunk's statements (PostgreSQL): made for each execution from its own values,
    never a generic plan of a prepared statement (one plan for every range of members would
    suit none of them), and with nested loops only and no JIT. Put back afterwards; when the
    chunk fails, its transaction rolls back, and the settings with it.
    """
    if not sql.postgres:
        yield
        return
    saved = sql.one("SELECT " + ", ".join(f"current_setting('{name}')" for name in _PLANNER))
    sql.run("SELECT " + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in _PLANNER.items()))
    sql.prepare = False
    yield
    sql.prepare = None
    sql.run("SELECT " + ", ".join(f"set_config('{name}', :{name}, true)" for name in _PLANNER),
            dict(zip(_PLANNER, saved, strict=True)))


def _key_parts(kind: str, as_of: datetime) -> dict[str, str]:
    """The derived key around the member id, exactly as ``system_key`` spells it."""
    prefix, suffix = system_key(kind, "\x00", as_of.isoformat()).split("\x00")
    return {"key_prefix": prefix, "key_suffix": suffix}


_KEY = ":key_prefix || CAST({member} AS VARCHAR(20)) || :key_suffix"


# --- walking the members ----------------------------------------------------------------------------


def _bound(sql: DriverSQL, *, due: str, params: dict[str, Any], after: int, until: int | None,
           members: int) -> tuple[int, int | None]:
    """How many of the next ``members`` members after ``after`` (up to ``until``) have something
    due, and the last of them.

    The lots index on (tenant, member, status, expires_at) hands the members out in order, so a
    chunk reads only the lots of its own members and the next chunk starts where this one ended.
    """
    count, upper = sql.one(
        "SELECT COUNT(*), MAX(member_id) FROM (SELECT DISTINCT l.member_id FROM points_lots l "
        "WHERE l.tenant_id = :tenant AND l.member_id > :after "
        + ("AND l.member_id <= :until " if until is not None else "")
        + f"AND {due} ORDER BY l.member_id LIMIT :limit) chunk",
        {**params, "after": after, "until": until, "limit": members},
    )
    return count, upper


def member_span(tx: Tx, *, tenant_id: int) -> tuple[int, int] | None:
    """The lowest and highest id of the tenant's members who hold lots (to split a run in parts)."""
    sql = tx.sql()
    low, high = sql.one("SELECT MIN(member_id), MAX(member_id) FROM points_lots WHERE tenant_id = :tenant",
                        {"tenant": tenant_id})
    return None if low is None else (low, high)


def _next_after(count: int, upper: int | None, members: int) -> int | None:
    return upper if count >= members else None


def _chunk(tx: Tx, work: _Work, *, tenant_id: int, as_of: datetime, after: int, until: int | None,
           members: int) -> Chunk:
    if members < 1:
        raise ValueError("a chunk has at least one member")
    sql = tx.sql()
    due = f"l.status = '{work.status}' AND {work.due}"
    params: dict[str, Any] = {"tenant": tenant_id, "as_of": sql.time(as_of)}
    count, upper = _bound(sql, due=due, params=params, after=after, until=until, members=members)
    if not count:
        return Chunk(after=None)
    with _planned_per_chunk(sql):
        _scratch(sql)
        locked = _lock_members(sql, work, due=due, params={**params, "after": after, "upper": upper})
        posted, lots, points = _take_lots(sql, due=due, params={**params, "after": after, "upper": upper})
        if posted:
            posted, lots, points = _write_entries(tx, sql, work, tenant_id=tenant_id, as_of=as_of)
    return Chunk(members=posted, lots=lots, points=points, skipped=count - locked,
                 after=_next_after(count, upper, members))


def _lock_members(sql: DriverSQL, work: _Work, *, due: str, params: dict[str, Any]) -> int:
    """Lock the accounts the work moves, for the members with something due in (after, upper],
    in ascending id order, skipping those another transaction holds; a member is taken only
    when all of them are ours. Their balances are read under the lock. Returns how many."""
    kinds = ", ".join(f"'{k}'" for k in work.accounts)
    first, last = work.accounts[0], work.accounts[-1]
    sql.run(
        "WITH due AS (SELECT DISTINCT l.member_id FROM points_lots l "
        f"WHERE l.tenant_id = :tenant AND l.member_id > :after AND l.member_id <= :upper AND {due}), "
        "locked AS (SELECT a.id, a.owner_id, a.kind, a.balance FROM ledger_accounts a "
        f"WHERE a.tenant_id = :tenant AND a.owner_type = 'member' AND a.kind IN ({kinds}) "
        "AND a.owner_id IN (SELECT member_id FROM due) ORDER BY a.id"
        + (" FOR UPDATE SKIP LOCKED" if sql.postgres else "") + ") "
        "INSERT INTO batch_members (member_id, account_id, balance, other_account_id, other_balance) "
        f"SELECT owner_id, MAX(CASE WHEN kind = '{first}' THEN id END), "
        f"MAX(CASE WHEN kind = '{first}' THEN balance END), "
        f"MAX(CASE WHEN kind = '{last}' THEN id END), MAX(CASE WHEN kind = '{last}' THEN balance END) "
        "FROM locked GROUP BY owner_id HAVING COUNT(*) = :kinds",
        {**params, "kinds": len(work.accounts)},
    )
    (locked,) = sql.one("SELECT COUNT(*) FROM batch_members")
    return locked


def _take_lots(sql: DriverSQL, *, due: str, params: dict[str, Any]) -> tuple[int, int, int]:
    """The locked members' due lots, read after the lock (a purchase committed meanwhile is seen);
    members with nothing left to move are let go. Returns members, lots and points."""
    sql.run(
        "INSERT INTO batch_lots (lot_id, member_id, remaining, issuer_entity_id) "
        "SELECT l.id, l.member_id, l.remaining, l.issuer_entity_id FROM batch_members m "
        "JOIN points_lots l ON l.tenant_id = :tenant AND l.member_id = m.member_id "
        # (the range again, so that the planner reads the lots of these members only)
        f"AND l.member_id > :after AND l.member_id <= :upper AND {due}",
        params,
    )
    sql.run("DELETE FROM batch_members WHERE (SELECT COALESCE(SUM(b.remaining), 0) FROM batch_lots b "
            "WHERE b.member_id = batch_members.member_id) <= 0")
    return _let_go(sql)


def _let_go(sql: DriverSQL) -> tuple[int, int, int]:
    """Drop the lots of members no longer in the chunk; returns members, lots and points left."""
    sql.run("DELETE FROM batch_lots WHERE NOT EXISTS "
            "(SELECT 1 FROM batch_members m WHERE m.member_id = batch_lots.member_id)")
    members, lots, points = sql.one(
        "SELECT COUNT(DISTINCT member_id), COUNT(*), COALESCE(SUM(remaining), 0) FROM batch_lots")
    return members, lots, int(points)


def _claim_keys(tx: Tx, sql: DriverSQL, work: _Work, *, tenant_id: int, as_of: datetime) -> tuple[int, int, int]:
    """An entry per member under this run's key; a member whose key is taken already (a rerun,
    or lots that became due again after the run posted) is let go until the next run."""
    keys = _key_parts(work.kind, as_of)
    entry = {"tenant": tenant_id, **keys, "kind": work.kind, "effective": sql.time(as_of),
             "recorded": sql.time(tx.now()), "memo": EXPIRY_MEMO if work is EXPIRY else VESTING_MEMO}
    insert = (
        "INSERT INTO ledger_entries (tenant_id, idempotency_key, kind, member_id, reverses_id, effective_at, "
        f"recorded_at, memo, ref) SELECT :tenant, {_KEY.format(member='member_id')}, :kind, member_id, NULL, "
        ":effective, :recorded, :memo, NULL FROM batch_members ORDER BY member_id"
    )
    by_key = f"e.tenant_id = :tenant AND e.idempotency_key = {_KEY.format(member='batch_members.member_id')}"
    if sql.postgres:
        sql.run(f"WITH e AS ({insert} ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id, member_id) "
                "UPDATE batch_members SET entry_id = e.id FROM e WHERE batch_members.member_id = e.member_id", entry)
        sql.run("DELETE FROM batch_members WHERE entry_id IS NULL")
    else:
        # SQLite serialises writers: a key not taken now cannot be taken before the insert.
        sql.run(f"DELETE FROM batch_members WHERE EXISTS (SELECT 1 FROM ledger_entries e WHERE {by_key})",
                {"tenant": tenant_id, **keys})
        sql.run(insert, entry)
        sql.run(f"UPDATE batch_members SET entry_id = (SELECT e.id FROM ledger_entries e WHERE {by_key})",
                {"tenant": tenant_id, **keys})
    return _let_go(sql)


def _write_entries(tx: Tx, sql: DriverSQL, work: _Work, *, tenant_id: int, as_of: datetime) -> tuple[int, int, int]:
    """The chunk's entries, postings, balances, lot changes and lot movements; returns the
    members, lots and points posted."""
    members, lots, points = _claim_keys(tx, sql, work, tenant_id=tenant_id, as_of=as_of)
    if not members:
        return 0, 0, 0
    params = {"tenant": tenant_id}
    totals = "(SELECT member_id, SUM(remaining) AS total FROM batch_lots GROUP BY member_id) s"
    legs = "INSERT INTO batch_legs (entry_id, leg, account_id, amount, balance_after) "
    if work is EXPIRY:
        # member → each issuer's expired account (breakage), issuers ascending, as ``expire_points``
        sql.run(
            "INSERT INTO batch_issuers (issuer_entity_id, account_id) SELECT i.issuer_entity_id, "
            "(SELECT x.id FROM ledger_accounts x WHERE x.tenant_id = :tenant AND x.owner_type = 'entity' "
            "AND x.owner_id = i.issuer_entity_id AND x.kind = 'points_expired') "
            "FROM (SELECT DISTINCT issuer_entity_id FROM batch_lots) i",
            params,
        )
        if sql.one("SELECT 1 FROM batch_issuers WHERE account_id IS NULL") is not None:
            raise InvalidReference(what="法人主体 / legal entity")
        sql.run(legs + "SELECT m.entry_id, 0, m.account_id, -s.total, m.balance - s.total "
                f"FROM batch_members m JOIN {totals} ON s.member_id = m.member_id")
        sql.run(legs + "SELECT m.entry_id, 1 + b.issuer_entity_id, i.account_id, SUM(b.remaining), NULL "
                "FROM batch_lots b JOIN batch_members m ON m.member_id = b.member_id "
                "JOIN batch_issuers i ON i.issuer_entity_id = b.issuer_entity_id "
                "GROUP BY m.entry_id, b.issuer_entity_id, i.account_id")
    else:
        # pending → spendable, as ``vest_points``
        sql.run(legs + "SELECT m.entry_id, 0, m.other_account_id, -s.total, m.other_balance - s.total "
                f"FROM batch_members m JOIN {totals} ON s.member_id = m.member_id")
        sql.run(legs + "SELECT m.entry_id, 1, m.account_id, s.total, m.balance + s.total "
                f"FROM batch_members m JOIN {totals} ON s.member_id = m.member_id")
    # What _post checks of one entry, for all of the chunk's: the legs balance (all in points).
    unbalanced = sql.one("SELECT entry_id, SUM(amount) FROM batch_legs GROUP BY entry_id HAVING SUM(amount) <> 0")
    if unbalanced is not None:
        raise UnbalancedEntry(asset="POINTS", total=int(unbalanced[1]))
    sql.run(
        "INSERT INTO ledger_postings (tenant_id, entry_id, account_id, asset, amount, balance_after) "
        "SELECT :tenant, entry_id, account_id, 'POINTS', amount, balance_after FROM batch_legs ORDER BY entry_id, leg",
        params,
    )
    sql.run("UPDATE ledger_accounts SET balance = l.balance_after FROM batch_legs l "
            "WHERE ledger_accounts.id = l.account_id AND l.balance_after IS NOT NULL")
    if work is EXPIRY:
        sql.run(
            "INSERT INTO points_lot_movements (tenant_id, entry_id, lot_id, amount, kind) "
            "SELECT :tenant, m.entry_id, b.lot_id, -b.remaining, 'expire' FROM batch_lots b "
            "JOIN batch_members m ON m.member_id = b.member_id WHERE b.remaining <> 0 ORDER BY m.entry_id, b.lot_id",
            params,
        )
        sql.run("UPDATE points_lots SET remaining = 0, status = 'expired' FROM batch_lots b "
                "WHERE points_lots.id = b.lot_id")
    else:
        sql.run("UPDATE points_lots SET status = 'active', account_id = m.account_id "
                "FROM batch_lots b JOIN batch_members m ON m.member_id = b.member_id WHERE points_lots.id = b.lot_id")
    return members, lots, points


# --- expiry and vesting ----------------------------------------------------------------------------


def expire_chunk(tx: Tx, *, tenant_id: int, as_of: datetime, after: int = 0, until: int | None = None,
                 members: int = CHUNK) -> Chunk:
    """Expire the active lots due at ``as_of`` of the next ``members`` members after member id
    ``after`` (and not after ``until``): one ``expire`` entry per member, from their points
    account to each issuer's expired account."""
    return _chunk(tx, EXPIRY, tenant_id=tenant_id, as_of=as_of, after=after, until=until, members=members)


def vest_chunk(tx: Tx, *, tenant_id: int, as_of: datetime, after: int = 0, until: int | None = None,
               members: int = CHUNK) -> Chunk:
    """Make spendable the pending lots whose refund window has passed at ``as_of``, for the next
    ``members`` members after ``after`` (and not after ``until``): one ``vest`` entry per member."""
    return _chunk(tx, VESTING, tenant_id=tenant_id, as_of=as_of, after=after, until=until, members=members)


def _walk(step, tx: Tx, *, tenant_id: int, as_of: datetime, members: int) -> Totals:
    totals, after = Totals(), 0
    while after is not None:
        chunk = step(tx, tenant_id=tenant_id, as_of=as_of, after=after, members=members)
        totals.add(chunk)
        after = chunk.after
    return totals


def expire_due(tx: Tx, *, tenant_id: int, as_of: datetime, members: int = CHUNK) -> Totals:
    """Every chunk of an expiry run in the caller's transaction (tests, small tenants)."""
    return _walk(expire_chunk, tx, tenant_id=tenant_id, as_of=as_of, members=members)


def vest_due(tx: Tx, *, tenant_id: int, as_of: datetime, members: int = CHUNK) -> Totals:
    return _walk(vest_chunk, tx, tenant_id=tenant_id, as_of=as_of, members=members)


def due_members(tx: Tx, *, tenant_id: int, as_of: datetime, kind: str) -> int:
    """How many members an expiry (``kind="expire"``) or vesting run would post for (progress bars)."""
    work = EXPIRY if kind == EXPIRY.kind else VESTING
    sql = tx.sql()
    (count,) = sql.one(
        f"SELECT COUNT(DISTINCT l.member_id) FROM points_lots l WHERE l.tenant_id = :tenant "
        f"AND l.status = '{work.status}' AND {work.due}",
        {"tenant": tenant_id, "as_of": sql.time(as_of)},
    )
    return count


# --- reminders before expiry ------------------------------------------------------------------------


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local day starts: when the day's points jobs run and what they take as ``as_of``."""
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _windows(on: date, days_before: Sequence[int], tz: ZoneInfo) -> list[tuple[int, date, datetime, datetime]]:
    """For each N: the local date N days after ``on`` and the instants it starts and ends."""
    out = []
    for n in sorted(set(days_before), reverse=True):
        day = on + timedelta(days=n)
        out.append((n, day, local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)))
    return out


def remind_chunk(tx: Tx, *, tenant_id: int, on: date, days_before: Sequence[int], tz: ZoneInfo,
                 after: int = 0, until: int | None = None, members: int = CHUNK) -> Chunk:
    """Tell each active member whose active points expire N days after ``on`` (their local expiry
    date is ``on`` + N), for each N in ``days_before``: one ``points_expiring`` outbox event per
    member, expiry date and N — never a second one, however often this runs.

    ``members`` counts the reminders written (a member reminded 30 and 7 days ahead in one run counts
    twice); ``points`` adds up what they announce; ``lots`` is not counted.
    Nothing is locked: a reminder changes no balance, and concurrent runs are kept apart by the
    reminders' primary key.
    """
    windows = _windows(on, days_before, tz)
    if not windows:
        return Chunk(after=None)
    sql = tx.sql()
    params: dict[str, Any] = {"tenant": tenant_id}
    spans = []
    for i, (_, _, start, end) in enumerate(windows):
        params |= {f"from{i}": sql.time(start), f"to{i}": sql.time(end)}
        spans.append(f"(l.expires_at >= :from{i} AND l.expires_at < :to{i})")
    due = "l.status = 'active' AND (" + " OR ".join(spans) + ")"
    count, upper = _bound(sql, due=due, params=params, after=after, until=until, members=members)
    if not count:
        return Chunk(after=None)
    with _planned_per_chunk(sql):
        _scratch(sql)
        params |= {"after": after, "upper": upper, "now": sql.time(tx.now())}
        reminders = points = 0
        for n, day, start, end in windows:
            window = {**params, "from": sql.time(start), "to": sql.time(end), "days": n,
                      "on": day if sql.postgres else day.isoformat(), "on_text": day.isoformat()}
            candidates = (
                "SELECT l.member_id, SUM(l.remaining) AS points FROM points_lots l "
                "JOIN members mm ON mm.id = l.member_id AND mm.status = 'active' "
                "WHERE l.tenant_id = :tenant AND l.member_id > :after AND l.member_id <= :upper "
                "AND l.status = 'active' AND l.expires_at >= :from AND l.expires_at < :to GROUP BY l.member_id"
            )
            if sql.postgres:
                # One statement: the reminders that were not there yet, and an event for each of them.
                # ON CONFLICT waits for a concurrent run's uncommitted reminder instead of doubling it.
                rows = sql.all(
                    f"WITH due AS ({candidates}), "
                    "r AS (INSERT INTO points_expiry_reminders (tenant_id, member_id, expires_on, days_before, points, "
                    "created_at) SELECT :tenant, member_id, :on, :days, points, :now FROM due ORDER BY member_id "
                    "ON CONFLICT DO NOTHING RETURNING member_id, points), "
                    "ev AS (INSERT INTO outbox_events (tenant_id, topic, payload, created_at) "
                    f"SELECT :tenant, '{EXPIRING_TOPIC}', json_build_object('member_id', member_id, 'points', points, "
                    "'expires_on', CAST(:on_text AS TEXT), 'days_before', CAST(:days AS INTEGER)), :now "
                    "FROM r ORDER BY member_id) "
                    "SELECT COUNT(*), SUM(points) FROM r",
                    window,
                )
            else:
                # SQLite serialises writers: what is not recorded yet cannot be recorded meanwhile.
                sql.run("DELETE FROM batch_reminders")
                sql.run(
                    "INSERT INTO batch_reminders (member_id, points) SELECT member_id, points "
                    f"FROM ({candidates}) due "
                    "WHERE NOT EXISTS (SELECT 1 FROM points_expiry_reminders r WHERE r.tenant_id = :tenant "
                    "AND r.member_id = due.member_id AND r.expires_on = :on AND r.days_before = :days)",
                    window,
                )
                sql.run(
                    "INSERT INTO points_expiry_reminders (tenant_id, member_id, expires_on, days_before, points, "
                    "created_at) SELECT :tenant, member_id, :on, :days, points, :now FROM batch_reminders "
                    "ORDER BY member_id",
                    window,
                )
                sql.run(
                    "INSERT INTO outbox_events (tenant_id, topic, payload, created_at) "
                    f"SELECT :tenant, '{EXPIRING_TOPIC}', json_object('member_id', member_id, 'points', points, "
                    "'expires_on', :on_text, 'days_before', :days), :now FROM batch_reminders ORDER BY member_id",
                    window,
                )
                rows = sql.all("SELECT COUNT(*), SUM(points) FROM batch_reminders")
            written, announced = rows[0]
            reminders += written
            points += int(announced or 0)
    return Chunk(members=reminders, points=points, after=_next_after(count, upper, members))


def remind_due(tx: Tx, *, tenant_id: int, on: date, days_before: Sequence[int], tz: ZoneInfo,
               members: int = CHUNK) -> Totals:
    totals, after = Totals(), 0
    while after is not None:
        chunk = remind_chunk(tx, tenant_id=tenant_id, on=on, days_before=days_before, tz=tz, after=after,
                             members=members)
        totals.add(chunk)
        after = chunk.after
    return totals
