"""The nightly points runs at a million members: vesting, expiry and reminders before expiry,
through the jobs a worker runs, on PostgreSQL (and a smaller run on SQLite).

    python bench/expiry.py                          # 1,000,000 members on PostgreSQL, 100,000 on SQLite
    python bench/expiry.py --skip-pg                # SQLite only
    python bench/expiry.py --members 200000 --pg-url postgresql+psycopg://user@host:5432/db
    python bench/expiry.py --explain                # also EXPLAIN ANALYZE one chunk of each run (PostgreSQL)

A tenant and its three legal entities (park, hotel, mall) are set up through the services; the
member base is then written directly in SQL, set-wise (members, their five accounts, one
opening-balance entry each with its postings, and their lots), because registering a million
members one by one would take longer than everything measured here. Every member gets:

* one active lot that lapsed before tonight's local midnight (a quarter get a second one, from
  another issuer), so the expiry run posts for every member;
* one pending lot whose refund window closed before midnight, so the vesting run does too;
* one active lot that lapses 30 days from tonight, so the reminder run writes one
  ``points_expiring`` event per member (the program's default reminds 30 and 7 days ahead).

Issuers, amounts and times vary with the member id. After the population the tables are
vacuumed and analysed, as autovacuum would have left them.

Each run is the job chain of one night as ``liutong worker`` runs it: the night's job is
scheduled with ``ledger.tasks.schedule_day`` and ``jobs.run_due`` takes the jobs one after another
(claim, then one chunk of ``--chunk`` members in its own transaction, which schedules the next)
until the chain ends. The runs go in the order a night runs them: vesting, expiry, reminders.
For each run: the wall time, members and lots per second, the chunks, and the peak resident
memory of this Python process during the run (the high-water mark is reset before each run;
the database server's memory is not counted). Afterwards a rerun of the night posts nothing
and ``ledger verify`` checks every invariant of the tenant.

The PostgreSQL database named in ``--pg-url`` is created when missing; its ``public`` schema is
dropped and migrated afresh on every run. The last line of output is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dateutil.relativedelta import relativedelta  # noqa: E402
from ledger import (  # noqa: E402 - the bench folder is on the path from here
    ENTITIES,
    console,
    ensure_database,
    fresh_schema,
    loud,
    peak_rss_mb,
    revision,
    settings_for,
    verdict,
)
from rich.table import Table  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402

from liutong.bootstrap import Runtime, bootstrap  # noqa: E402
from liutong.jobs import service as jobs  # noqa: E402
from liutong.jobs.models import Job  # noqa: E402
from liutong.ledger import batch, tasks  # noqa: E402
from liutong.ledger.verify import verify  # noqa: E402
from liutong.migrate import upgrade  # noqa: E402
from liutong.organisation import service as org  # noqa: E402
from liutong.organisation.schemas import EntityCreate, TenantCreate  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/liutong_bench_expiry"
PG_MEMBERS = 1_000_000
SQLITE_MEMBERS = 100_000
TARGET_SECONDS = 60.0  # each run, PostgreSQL, 1M members
TARGET_RSS_MB = 1024.0
TZ = ZoneInfo("Asia/Shanghai")


# --- the member base, set-wise ---------------------------------------------------------------------


def _series(sql, n: int) -> str:
    """A FROM item ``g`` with the integers 1..n in column ``i``."""
    if sql.postgres:
        return f"generate_series(1, {int(n)}) AS g(i)"
    return f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)}) SELECT i FROM s) g"


_ACCOUNT_KINDS = " UNION ALL ".join(
    f"SELECT '{kind}' AS kind, '{asset}' AS asset, {n} AS ord"
    for n, (kind, asset) in enumerate([("points", "POINTS"), ("points_pending", "POINTS"), ("growth", "GROWTH"),
                                       ("sv_principal", "CNY"), ("sv_bonus", "CNY")])
)


def populate(runtime: Runtime, n: int, day, run_id: str) -> dict[str, Any]:
    """A tenant with three issuers and ``n`` members whose lots are due tonight (see the docstring)."""
    started = time.perf_counter()
    with runtime.transaction() as tx:
        tenant = org.create_tenant(tx, data=TenantCreate(code=f"night-{run_id}", name="西湖文旅集团"),
                                   key=f"{run_id}:tenant").id
        entities = [org.create_entity(tx, tenant_id=tenant, key=f"{run_id}:entity:{code}",
                                      data=EntityCreate(code=code, name=name)).id for code, name in ENTITIES]
    as_of = batch.local_midnight(day, TZ)
    remind_day = day + timedelta(days=30)
    with runtime.transaction() as tx:
        sql = tx.sql()
        if sql.postgres:
            # Bulk load only: no foreign-key checks and no per-entry balance trigger (the opening
            # entries balance by construction, and ``ledger verify`` checks everything at the end).
            sql.run("SET LOCAL session_replication_role = replica")
        t = {"t": tenant, "e0": entities[0], "e1": entities[1], "e2": entities[2],
             "registered": sql.time(as_of - relativedelta(months=14)),
             "earned": sql.time(as_of - relativedelta(months=12, days=3)),
             "earned_pending": sql.time(as_of - timedelta(days=8)),
             "lapsed0": sql.time(as_of - timedelta(hours=1)), "lapsed1": sql.time(as_of - timedelta(hours=9)),
             "lapsed2": sql.time(as_of - timedelta(days=2)),
             "soon0": sql.time(batch.local_midnight(remind_day, TZ) + timedelta(hours=9)),
             "soon1": sql.time(batch.local_midnight(remind_day, TZ) + timedelta(hours=15, minutes=30)),
             "soon2": sql.time(batch.local_midnight(remind_day, TZ) + timedelta(hours=23, minutes=59)),
             "vests": sql.time(as_of - timedelta(hours=2)), "later": sql.time(as_of + timedelta(days=300)),
             "no": False}
        issuer = "CASE (m.id + {shift}) % 3 WHEN 0 THEN :e0 WHEN 1 THEN :e1 ELSE :e2 END"
        lapsed = "CASE m.id % 3 WHEN 0 THEN :lapsed0 WHEN 1 THEN :lapsed1 ELSE :lapsed2 END"
        soon = "CASE m.id % 3 WHEN 0 THEN :soon0 WHEN 1 THEN :soon1 ELSE :soon2 END"
        steps = [
            ("members", "INSERT INTO members (tenant_id, member_no, status, gender, code_epoch, tier_locked, source, "
                        "registered_at, updated_at) SELECT :t, 'N' || CAST(g.i AS VARCHAR(19)), 'active', 'unknown', "
                        f"0, :no, 'bench', :registered, :registered FROM {_series(sql, n)}"),
            ("accounts", "INSERT INTO ledger_accounts (tenant_id, owner_type, owner_id, kind, asset, balance, "
                         "tracks_balance, min_balance, created_at) SELECT :t, 'member', m.id, k.kind, k.asset, 0, "
                         f"1 = 1, 0, :registered FROM members m CROSS JOIN ({_ACCOUNT_KINDS}) k "
                         "WHERE m.tenant_id = :t ORDER BY m.id, k.ord"),
            ("entries", "INSERT INTO ledger_entries (tenant_id, idempotency_key, kind, member_id, effective_at, "
                        "recorded_at, memo) SELECT :t, 'opening:' || CAST(m.id AS VARCHAR(20)), 'import', m.id, "
                        ":registered, :registered, '期初余额 / opening balance' FROM members m "
                        "WHERE m.tenant_id = :t ORDER BY m.id"),
        ]
        lot = (
            "INSERT INTO points_lots (tenant_id, member_id, account_id, issuer_entity_id, amount, remaining, status, "
            "earned_at, vests_at, expires_at, source_entry_id) "
            "SELECT :t, m.id, a.id, {issuer}, {amount}, {amount}, '{status}', {earned}, {vests}, {expires}, e.id "
            "FROM members m JOIN ledger_accounts a ON a.tenant_id = :t AND a.owner_type = 'member' "
            "AND a.owner_id = m.id AND a.kind = '{kind}' "
            "JOIN ledger_entries e ON e.tenant_id = :t AND e.idempotency_key = 'opening:' || CAST(m.id AS VARCHAR(20)) "
            "WHERE m.tenant_id = :t{where} ORDER BY m.id"
        )
        steps += [
            ("lots lapsed", lot.format(issuer=issuer.format(shift=0), amount="100 + m.id % 400", status="active",
                                       earned=":earned", vests="NULL", expires=lapsed, kind="points", where="")),
            ("lots lapsed (2nd)", lot.format(issuer=issuer.format(shift=1), amount="50 + m.id % 50", status="active",
                                             earned=":earned", vests="NULL", expires=":lapsed2", kind="points",
                                             where=" AND m.id % 4 = 0")),
            ("lots expiring in 30 days", lot.format(issuer=issuer.format(shift=2), amount="200 + m.id % 100",
                                                    status="active", earned=":earned", vests="NULL", expires=soon,
                                                    kind="points", where="")),
            ("lots pending", lot.format(issuer=issuer.format(shift=0), amount="80 + m.id % 100", status="pending",
                                        earned=":earned_pending", vests=":vests", expires=":later",
                                        kind="points_pending", where="")),
            ("postings", "INSERT INTO ledger_postings (tenant_id, entry_id, account_id, asset, amount, balance_after) "
                         "SELECT :t, entry_id, account_id, 'POINTS', amount, balance_after FROM ("
                         "SELECT l.source_entry_id AS entry_id, l.account_id, SUM(l.amount) AS amount, "
                         "SUM(l.amount) AS balance_after, 0 AS leg FROM points_lots l WHERE l.tenant_id = :t "
                         "GROUP BY l.source_entry_id, l.account_id "
                         "UNION ALL "
                         "SELECT l.source_entry_id, x.id, -SUM(l.amount), NULL, 1 + x.id FROM points_lots l "
                         "JOIN ledger_accounts x ON x.tenant_id = :t AND x.owner_type = 'entity' "
                         "AND x.owner_id = l.issuer_entity_id AND x.kind = 'points_issued' WHERE l.tenant_id = :t "
                         "GROUP BY l.source_entry_id, x.id) legs ORDER BY entry_id, leg, account_id"),
            ("balances", "UPDATE ledger_accounts SET balance = s.total FROM (SELECT account_id, SUM(remaining) AS total "
                         "FROM points_lots WHERE tenant_id = :t GROUP BY account_id) s "
                         "WHERE ledger_accounts.id = s.account_id"),
        ]
        timings = {}
        for label, statement in steps:
            step = time.perf_counter()
            sql.run(statement, t)
            timings[label] = round(time.perf_counter() - step, 1)
            console.print(f"  {label}: {timings[label]:.1f}s", highlight=False)
        (lots,) = sql.one("SELECT COUNT(*) FROM points_lots WHERE tenant_id = :t", {"t": tenant})
    step = time.perf_counter()
    _vacuum(runtime)
    timings["vacuum analyze"] = round(time.perf_counter() - step, 1)
    return {"tenant_id": tenant, "members": n, "lots": lots, "as_of": as_of.isoformat(),
            "seconds": round(time.perf_counter() - started, 1), "steps_s": timings}


def _vacuum(runtime: Runtime) -> None:
    tables = ("members", "ledger_accounts", "ledger_entries", "ledger_postings", "points_lots")
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    else:
        with runtime.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


# --- the runs --------------------------------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Reset this process's resident-memory high-water mark (Linux); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_since_reset_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mb()  # the whole process's peak instead


def _counts(runtime: Runtime, kind: str, tenant_id: int, as_of) -> tuple[int, int]:
    """Members and lots a run handled, read back from what it wrote."""
    with runtime.transaction() as tx:
        sql = tx.sql()
        p = {"t": tenant_id, "as_of": sql.time(as_of)}
        if kind == tasks.VEST:
            return (sql.one("SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = :t AND kind = 'vest'", p)[0],
                    sql.one("SELECT COUNT(*) FROM points_lots WHERE tenant_id = :t AND status = 'active' "
                            "AND vests_at <= :as_of", p)[0])
        if kind == tasks.EXPIRE:
            return (sql.one("SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = :t AND kind = 'expire'", p)[0],
                    sql.one("SELECT COUNT(*) FROM points_lot_movements WHERE tenant_id = :t AND kind = 'expire'", p)[0])
        reminded = sql.one("SELECT COUNT(*) FROM points_expiry_reminders WHERE tenant_id = :t", p)[0]
        return reminded, reminded


def _open_jobs(runtime: Runtime, kind: str, tenant_id: int) -> int:
    """Jobs of the run still queued and due, or running."""
    with runtime.transaction() as tx:
        return tx.session.scalar(select(func.count()).select_from(Job).where(
            Job.kind == kind, Job.tenant_id == tenant_id, Job.status.in_(["queued", "running"]),
            Job.run_at <= runtime.clock()))


def run_night(runtime: Runtime, kind: str, *, tenant_id: int, day, chunk: int, parts: int,
              workers: int) -> dict[str, Any]:
    """One run of the night as workers do it: the night's job, then every chunk it chains, taken
    by ``workers`` threads (each a worker of its own, as ``liutong worker`` processes would be)."""
    with runtime.transaction() as tx:
        jobs.enqueue(tx, kind=kind, payload={"tenant_id": tenant_id, "day": day.isoformat(), "chunk": chunk,
                                             "parts": parts},
                     tenant_id=tenant_id, dedupe_key=f"bench:{tenant_id}:{day.isoformat()}")
    taken = [0] * workers

    def work(n: int) -> None:
        while True:
            if jobs.run_due(runtime, worker_id=f"bench-{n}", kinds=[kind], limit=1):
                taken[n] += 1
            elif _open_jobs(runtime, kind, tenant_id):
                time.sleep(0.02)  # another worker is on the chunk that will chain the next one
            else:
                return

    tracked = _reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with runtime.transaction() as tx:
        failed = tx.session.execute(text("SELECT COUNT(*) FROM jobs WHERE kind = :k AND status = 'failed'"),
                                    {"k": kind}).scalar_one()
    members, lots = _counts(runtime, kind, tenant_id, batch.local_midnight(day, TZ))
    return {
        "seconds": round(elapsed, 2), "members": members, "lots": lots, "jobs": sum(taken), "failed_jobs": failed,
        "workers": workers, "members_per_s": round(members / elapsed), "lots_per_s": round(lots / elapsed),
        "client_cpu_s": round(cpu, 2),
        "peak_rss_mb": _peak_rss_since_reset_mb() if tracked else peak_rss_mb(),
        "peak_rss_scope": "this run" if tracked else "whole process",
    }


def explain_chunks(runtime: Runtime, tenant_id: int, day, chunk: int) -> None:
    """EXPLAIN ANALYZE every statement of one chunk of each run, in a transaction rolled back."""
    import psycopg

    printed: list[str] = []

    class Explaining(psycopg.Cursor):
        def execute(self, query, params=None, **kw):
            statement = query if isinstance(query, str) else query.as_string(self)
            if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "WITH", "SELECT")):
                # measured in a savepoint rolled back, then run for real
                super().execute("SAVEPOINT explained")
                super().execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params, **kw)
                plan = "\n".join(r[0] for r in self.fetchall())
                super().execute("ROLLBACK TO SAVEPOINT explained")
                printed.append(f"{' '.join(statement.split())[:160]} …\n{plan}\n")
            return super().execute(query, params, **kw)

    tz = TZ
    for kind in tasks.KINDS:
        printed.clear()
        try:
            with runtime.transaction() as tx:
                tx.session.connection().connection.driver_connection.cursor_factory = Explaining
                tasks.run_chunk(tx, kind, tenant_id=tenant_id, day=day, tz=tz, after=0, members=chunk)
                tx.session.connection().connection.driver_connection.cursor_factory = psycopg.Cursor
                raise _RolledBack
        except _RolledBack:
            pass
        console.rule(f"EXPLAIN ANALYZE: one chunk of {kind}")
        for block in printed:
            print(block, flush=True)


class _RolledBack(Exception):
    pass


def bench(runtime: Runtime, *, backend: str, members: int, chunk: int, parts: int, workers: int, run_id: str,
          check: bool, explain: bool = False) -> dict[str, Any]:
    day = runtime.clock().astimezone(TZ).date()
    console.print(f"[bold]{backend}[/bold]: writing {members:,} members and their lots …")
    pop = populate(runtime, members, day, run_id)
    console.print(f"{backend}: {pop['lots']:,} lots in {pop['seconds']:.0f}s; tonight is {pop['as_of']}")
    result: dict[str, Any] = {"population": pop, "chunk": chunk, "parts": parts, "workers": workers}
    if explain and backend == "PostgreSQL":
        explain_chunks(runtime, pop["tenant_id"], day, chunk)
    for kind in tasks.KINDS:
        console.print(f"{backend}: {kind} …")
        result[kind] = run_night(runtime, kind, tenant_id=pop["tenant_id"], day=day, chunk=chunk, parts=parts,
                                 workers=workers)
        console.print(f"  {result[kind]['seconds']:.1f}s, {result[kind]['members_per_s']:,} members/s", highlight=False)
    with runtime.transaction() as tx:
        as_of = batch.local_midnight(day, TZ)
        again = (batch.vest_due(tx, tenant_id=pop["tenant_id"], as_of=as_of).members
                 + batch.expire_due(tx, tenant_id=pop["tenant_id"], as_of=as_of).members
                 + batch.remind_due(tx, tenant_id=pop["tenant_id"], on=day, days_before=[30, 7], tz=TZ).members)
    result["rerun_posted"] = again
    if check:
        console.print(f"{backend}: ledger verify …")
        started = time.perf_counter()
        with runtime.transaction() as tx:
            broken = {c.name: c.violations for c in verify(tx.session, pop["tenant_id"]) if not c.ok}
        result["verify"] = {"seconds": round(time.perf_counter() - started, 1), "broken": broken}
    return result


def bench_sqlite(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        runtime = bootstrap(settings_for(f"sqlite:///{(Path(tmp) / 'night.db').as_posix()}", Path(tmp), 2))
        try:
            upgrade(runtime.engine)
            # SQLite has one writer at a time: one worker
            return bench(runtime, backend="SQLite", members=args.sqlite_members, chunk=args.chunk, parts=args.parts,
                         workers=1, run_id=run_id, check=not args.skip_verify)
        finally:
            runtime.dispose()


def bench_postgres(args: argparse.Namespace, run_id: str) -> dict[str, Any] | None:
    url = make_url(args.pg_url)
    try:
        ensure_database(url, url.database or "liutong_bench_expiry")
    except DBAPIError as err:
        loud(f"PostgreSQL at {url.render_as_string(hide_password=True)} is unreachable:\n{str(err.orig).strip()}")
        return None
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        runtime = bootstrap(settings_for(args.pg_url, Path(tmp), args.workers + 2))
        try:
            fresh_schema(runtime.engine)
            result = bench(runtime, backend="PostgreSQL", members=args.members, chunk=args.chunk, parts=args.parts,
                           workers=args.workers, run_id=run_id, check=not args.skip_verify, explain=args.explain)
            with runtime.engine.connect() as conn:
                result["server"] = conn.scalar(text("SHOW server_version"))
                result["database_mb"] = round(conn.scalar(text("SELECT pg_database_size(current_database())"))
                                              / 2**20)
            return result
        finally:
            runtime.dispose()


# --- report ----------------------------------------------------------------------------------------


def summary(result: dict[str, Any]) -> None:
    title = "Nightly points runs" + (f" ({result['revision']})" if result.get("revision") else "")
    table = Table(title=title)
    for column, justify in (("Run", "left"), ("Members", "right"), ("Lots", "right"), ("Seconds", "right"),
                            ("Members/s", "right"), ("Lots/s", "right"), ("Jobs", "right"),
                            ("Peak RSS (MB)", "right"), ("Target", "right"), ("", "center")):
        table.add_column(column, justify=justify)
    for backend, name in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
        r = result.get(backend)
        if not r:
            continue
        for kind in tasks.KINDS:
            run = r[kind]
            targeted = backend == "postgres" and r["population"]["members"] >= PG_MEMBERS
            ok = run["seconds"] < TARGET_SECONDS and run["peak_rss_mb"] < TARGET_RSS_MB
            table.add_row(f"{name} {kind}", f"{run['members']:,}", f"{run['lots']:,}", f"{run['seconds']:.1f}",
                          f"{run['members_per_s']:,}", f"{run['lots_per_s']:,}", str(run["jobs"]),
                          f"{run['peak_rss_mb']:,.0f}",
                          f"< {TARGET_SECONDS:.0f} s, < {TARGET_RSS_MB:,.0f} MB" if targeted else "",
                          verdict(ok) if targeted else "")
    console.print(table)
    for backend, name in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
        r = result.get(backend)
        if not r:
            continue
        pop = r["population"]
        console.print(f"{name}: population {pop['members']:,} members, {pop['lots']:,} lots in {pop['seconds']:.0f}s; "
                      f"a rerun of the night posted {r['rerun_posted']}; "
                      + (f"ledger verify {'OK' if not r['verify']['broken'] else r['verify']['broken']} "
                         f"in {r['verify']['seconds']:.0f}s" if "verify" in r else "ledger verify skipped"),
                      highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=PG_MEMBERS, help=f"PostgreSQL members (default {PG_MEMBERS:,})")
    parser.add_argument("--sqlite-members", type=int, default=SQLITE_MEMBERS,
                        help=f"SQLite members (default {SQLITE_MEMBERS:,})")
    parser.add_argument("--chunk", type=int, default=batch.CHUNK, help=f"members per chunk (default {batch.CHUNK:,})")
    parser.add_argument("--parts", type=int, default=tasks.PARTS,
                        help=f"chains a night is split in (default {tasks.PARTS})")
    parser.add_argument("--workers", type=int, default=2,
                        help="workers taking the PostgreSQL jobs at once (default 2, one per core here)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL URL (default {DEFAULT_PG_URL})")
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--skip-verify", action="store_true", help="do not run ledger verify afterwards")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN ANALYZE the statements of one chunk of each run first (PostgreSQL)")
    args = parser.parse_args(argv)

    run_id = secrets.token_hex(4)
    result: dict[str, Any] = {"run": run_id, "revision": revision(), "chunk": args.chunk,
                              "targets": {"seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB}}
    result["postgres"] = None if args.skip_pg else bench_postgres(args, run_id)
    result["sqlite"] = None if args.skip_sqlite else bench_sqlite(args, run_id)
    result["peak_rss_mb"] = peak_rss_mb()
    summary(result)
    print("RESULT " + json.dumps(result, ensure_ascii=False, sort_keys=True, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
