"""Tier period review over a million members: elapsed time, members per second, peak memory.

    python bench/tier_review.py                          # PostgreSQL, 1,000,000 members; SQLite, 100,000
    python bench/tier_review.py --skip-pg                # SQLite only
    python bench/tier_review.py --members 200000 --sqlite-members 20000 --chunk 20000
    python bench/tier_review.py --phases                 # also time each step of a chunk

The population is written by SQL, not through the services (registering a million members one
by one would take hours and measure registration): one tenant set up through the services, a
theme park's ladder published as its program (普通 / 银卡 / 金卡 / 钻石, earned by spend, visits or
growth over 365 days, kept by less spend or fewer visits), then ``--members`` members:

* 55 % at the entry tier, 25 % silver, 13 % gold, 5 % diamond; 1 % gold with a floor until
  mid-2027, 0.5 % diamond and locked, 0.5 % silver whose floor expired in October;
* 1 % of the entry-tier members paid for gold until mid-2027 (``member_tier_purchases``);
* a year of activity days (``member_activity_days``) — from 0–3 days for the entry tier to
  12–59 for diamond, ¥20–¥620 a day — inserted in date order, as purchases arrive, so a
  member's days are spread over the whole table as they are in production;
* a growth account per member above the entry tier (its balance set directly: the entries that
  would have earned it are not posted, so do not run ``ledger verify`` on this database).

Every figure comes from a deterministic hash of the member id, so both backends and every run
see the same members. On PostgreSQL the activity table's key is built after the load rather
than during it (setup time only), then everything gets ``VACUUM ANALYZE``, as autovacuum
would have done by the year end.

The measured part is ``members.tier_review.run`` for the year 2026 — the loop ``liutong tiers
review`` runs: one transaction per chunk of members, each reading activity, growth and paid
upgrades set-based and writing members, history lines and ``tier_changed`` events in bulk.
"Members/s" is all members of the tenant over the elapsed time; "judged" are those the review
had anything to decide for (above the entry tier or with an override). Peak memory is the
benchmark process's peak RSS (``ru_maxrss``), population included (which runs in the
database). A second run of the same review checks that it changes nothing.

The PostgreSQL database named in ``--pg-url`` is created when missing; its ``public`` schema is
dropped and migrated afresh on every run. The last line of output is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import (  # noqa: E402 - the bench folder is on the path from here
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
from liutong.jobs.models import OutboxEvent  # noqa: E402
from liutong.members import tier_review  # noqa: E402
from liutong.members.models import Member, TierChange  # noqa: E402
from liutong.migrate import upgrade  # noqa: E402
from liutong.organisation import service as org  # noqa: E402
from liutong.organisation.schemas import TenantCreate  # noqa: E402
from liutong.program import service as program_service  # noqa: E402
from liutong.program.defaults import default_program  # noqa: E402
from liutong.program.rules import ProgramDocument  # noqa: E402
from liutong.program.schemas import ProgramPublish  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/liutong_tiers_bench"
PG_TARGET_S = 60.0
MEMORY_TARGET_MB = 1024.0
SHANGHAI = ZoneInfo("Asia/Shanghai")
YEAR_END_2026 = datetime(2027, 1, 1, tzinfo=SHANGHAI)


def bench_program() -> ProgramDocument:
    document = default_program().model_dump(mode="json")
    document["tiers"] = [
        {"code": "normal", "name": "普通会员", "rank": 0},
        {"code": "silver", "name": "银卡", "rank": 1, "earn_multiplier": "1.2",
         "qualify": {"combine": "any", "window_days": 365, "spend_fen": 500_000, "visits": 12, "growth": 20_000},
         "retain": {"combine": "any", "window_days": 365, "spend_fen": 300_000, "visits": 6}},
        {"code": "gold", "name": "金卡", "rank": 2, "earn_multiplier": "1.5",
         "qualify": {"combine": "any", "window_days": 365, "spend_fen": 2_000_000, "visits": 30, "growth": 80_000},
         "retain": {"combine": "any", "window_days": 365, "spend_fen": 1_200_000, "visits": 20},
         "paid": {"price_fen": 99_900, "months": 12}},
        {"code": "diamond", "name": "钻石卡", "rank": 3, "earn_multiplier": "2",
         "qualify": {"combine": "any", "window_days": 365, "spend_fen": 5_000_000, "visits": 60, "growth": 200_000},
         "retain": {"combine": "any", "window_days": 365, "spend_fen": 3_000_000, "visits": 40}},
    ]
    return ProgramDocument.model_validate(document)


# --- the population, in SQL both backends understand -----------------------------------------------

#: A deterministic, roughly uniform hash of an integer into 0 … 1,000,002.
def _h(expr: str, salt: int) -> str:
    return f"((({expr}) * 2654435761 + {salt * 40503}) % 1000003)"


def _series(name: str, n: int) -> str:
    return (f"WITH RECURSIVE {name}(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM {name} WHERE i < {n}) ")


TIER_OF = f"""CASE
    WHEN {_h('i', 1)} % 1000 < 550 THEN NULL
    WHEN {_h('i', 1)} % 1000 < 800 THEN 'silver'
    WHEN {_h('i', 1)} % 1000 < 930 THEN 'gold'
    WHEN {_h('i', 1)} % 1000 < 980 THEN 'diamond'
    WHEN {_h('i', 1)} % 1000 < 990 THEN 'gold'
    WHEN {_h('i', 1)} % 1000 < 995 THEN 'diamond'
    ELSE 'silver' END"""
FLOOR_OF = f"CASE WHEN {_h('i', 1)} % 1000 BETWEEN 980 AND 989 THEN 'gold' " \
           f"WHEN {_h('i', 1)} % 1000 >= 995 THEN 'silver' END"
LOCKED_OF = f"CASE WHEN {_h('i', 1)} % 1000 BETWEEN 990 AND 994 THEN 1 ELSE 0 END"
EXPIRES_OF = f"CASE WHEN {_h('i', 1)} % 1000 BETWEEN 980 AND 989 THEN :floor_until " \
             f"WHEN {_h('i', 1)} % 1000 >= 995 THEN :floor_lapsed END"
DAYS_OF = """CASE COALESCE(m.tier_code, 'normal')
    WHEN 'normal' THEN {h} % 4 WHEN 'silver' THEN 2 + {h} % 10
    WHEN 'gold' THEN 6 + {h} % 24 ELSE 12 + {h} % 48 END"""


def populate(runtime: Runtime, n: int, run_id: str) -> dict[str, Any]:
    started = time.perf_counter()
    with runtime.transaction() as tx:
        tenant = org.create_tenant(tx, data=TenantCreate(code=f"bench-{run_id}", name="西湖文旅集团"),
                                   key=f"{run_id}:tenant")
        version = program_service.publish(tx, tenant_id=tenant.id, key=f"{run_id}:program", actor="bench",
                                          data=ProgramPublish(document=bench_program(), note="乐园等级体系")).id
    engine = runtime.engine
    postgres = engine.dialect.name == "postgresql"

    def ts(value: datetime) -> Any:
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive if postgres else naive.strftime("%Y-%m-%d %H:%M:%S.%f")

    params = {"t": tenant.id, "now": ts(datetime(2026, 6, 1, tzinfo=UTC)),
              "floor_until": ts(datetime(2027, 7, 1, tzinfo=SHANGHAI)),
              "floor_lapsed": ts(datetime(2026, 10, 1, tzinfo=SHANGHAI)), "v": version,
              "paid_from": ts(datetime(2026, 7, 1, tzinfo=SHANGHAI)), "paid_until": ts(datetime(2027, 7, 1, tzinfo=SHANGHAI))}
    locked = LOCKED_OF if not postgres else f"({LOCKED_OF}) = 1"
    series = (f"generate_series(1, {n}) AS s(i)" if postgres else "s")
    head = "" if postgres else _series("s", n)
    steps: list[tuple[str, str]] = [
        ("members", head + f"""
            INSERT INTO members (tenant_id, member_no, status, gender, tier_code, tier_floor, tier_locked,
                                 tier_override_expires_at, code_epoch, source, registered_at, updated_at)
            SELECT :t, 'B' || i, 'active', 'unknown', {TIER_OF}, {FLOOR_OF}, {locked}, {EXPIRES_OF}, 0, 'bench',
                   :now, :now
            FROM {series}"""),
    ]
    day_zero = "DATE '2026-01-01'" if postgres else "julianday('2026-01-01')"
    as_date = (lambda e: f"({day_zero} + ({e})::int)") if postgres else (lambda e: f"date({day_zero} + ({e}))")
    # k distinct days per member: one in each of k equal stretches of the year
    stretch = "(365 / (m.k + 1))"
    day = as_date(f"(j.i - 1) * {stretch} + {_h('m.id * 64 + j.i', 3)} % {stretch}")
    spend = f"(20 + {_h('m.id * 64 + j.i', 4)} % 600) * 100"
    numbers = "generate_series(1, 64) AS j(i)" if postgres else "j"
    head = "" if postgres else _series("j", 64)
    steps.append(("activity days", head + f"""
        INSERT INTO member_activity_days (tenant_id, member_id, day, spend_fen, points_earned, purchases, visited)
        SELECT :t, m.id, {day} AS day, {spend}, {spend} / 100, 1, 1
        FROM (SELECT m.id, {DAYS_OF.format(h=_h('m.id', 2))} AS k FROM members m WHERE m.tenant_id = :t) m
        JOIN {numbers} ON j.i <= m.k
        ORDER BY day"""))
    steps.append(("growth accounts", f"""
        INSERT INTO ledger_accounts (tenant_id, owner_type, owner_id, kind, asset, balance, tracks_balance,
                                     min_balance, created_at)
        SELECT :t, 'member', m.id, 'growth', 'GROWTH', {_h('m.id', 5)} % 150000, {'true' if postgres else 1}, 0, :now
        FROM members m WHERE m.tenant_id = :t AND m.tier_code IS NOT NULL"""))
    steps.append(("paid upgrades", f"""
        INSERT INTO member_tier_purchases (tenant_id, member_id, tier_code, starts_at, ends_at, price_fen,
                                           payment_channel, payment_ref, program_version_id, created_by, created_at)
        SELECT :t, m.id, 'gold', :paid_from, :paid_until, 99900, 'wechat', 'wx-' || m.id, :v, 'bench', :paid_from
        FROM members m WHERE m.tenant_id = :t AND m.tier_code IS NULL AND {_h('m.id', 6)} % 100 = 0"""))
    if postgres:  # build the activity key once after the load rather than row by row during it
        steps.insert(1, ("drop activity key", "ALTER TABLE member_activity_days DROP CONSTRAINT pk_member_activity_days"))
        steps.insert(3, ("build activity key", "ALTER TABLE member_activity_days ADD CONSTRAINT pk_member_activity_days "
                         "PRIMARY KEY (tenant_id, member_id, day) INCLUDE (spend_fen, points_earned, visited)"))
    timings = {}
    for name, sql in steps:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            if postgres:
                conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text(sql), params)
        timings[name] = round(time.perf_counter() - t0, 1)
        console.print(f"  {name}: {timings[name]}s")
    t0 = time.perf_counter()
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    timings["vacuum analyze"] = round(time.perf_counter() - t0, 1)
    with engine.connect() as conn:
        counts = {
            "members": conn.scalar(text("SELECT count(*) FROM members WHERE tenant_id = :t"), params),
            "activity_days": conn.scalar(text("SELECT count(*) FROM member_activity_days WHERE tenant_id = :t"),
                                         params),
            "paid_upgrades": conn.scalar(text("SELECT count(*) FROM member_tier_purchases WHERE tenant_id = :t"),
                                         params),
        }
    return {"tenant_id": tenant.id, "seconds": round(time.perf_counter() - started, 1), "steps": timings, **counts}


# --- measuring --------------------------------------------------------------------------------------


class Phases:
    """Wraps the review's steps with timers (``--phases``): where a chunk's time goes."""

    NAMES = ("_members", "_activity", "_growth", "_paid_floors", "_changed_since", "_write")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.NAMES, 0.0)
        self._saved = {}

    def __enter__(self) -> Phases:
        for name in self.NAMES:
            fn = getattr(tier_review, name)
            self._saved[name] = fn

            def timed(*args, _fn=fn, _name=name, **kwargs):
                t0 = time.perf_counter()
                try:
                    return _fn(*args, **kwargs)
                finally:
                    self.seconds[_name] += time.perf_counter() - t0

            setattr(tier_review, name, timed)
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self._saved.items():
            setattr(tier_review, name, fn)


def measure(runtime: Runtime, tenant_id: int, chunk: int, phases: bool) -> dict[str, Any]:
    chunks = 0

    def counted(_progress) -> None:
        nonlocal chunks
        chunks += 1

    timer = Phases() if phases else None
    started = time.perf_counter()
    if timer:
        with timer:
            done = tier_review.run(runtime, tenant_id=tenant_id, as_of=YEAR_END_2026, limit=chunk, on_chunk=counted)
    else:
        done = tier_review.run(runtime, tenant_id=tenant_id, as_of=YEAR_END_2026, limit=chunk, on_chunk=counted)
    elapsed = time.perf_counter() - started
    rss = peak_rss_mb()
    again_started = time.perf_counter()
    again = tier_review.run(runtime, tenant_id=tenant_id, as_of=YEAR_END_2026, limit=chunk)
    again_s = time.perf_counter() - again_started
    with runtime.transaction() as tx:
        members = tx.session.scalar(select(func.count()).select_from(Member).where(Member.tenant_id == tenant_id))
        lines = tx.session.scalar(select(func.count()).select_from(TierChange).where(
            TierChange.tenant_id == tenant_id, TierChange.review_id == done.review_id))
        events = tx.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.tenant_id == tenant_id, OutboxEvent.topic == "tier_changed"))
        tier = func.coalesce(Member.tier_code, "normal")
        tiers = dict(tx.session.execute(select(tier, func.count()).where(Member.tenant_id == tenant_id)
                                        .group_by(tier)).all())
    result = {
        "members": members,
        "judged": done.reviewed,
        "demoted": done.demoted,
        "overrides_cleared": done.overrides_cleared,
        "history_lines": lines,
        "tier_changed_events": events,
        "tiers_after": tiers,
        "chunk": chunk,
        "chunks": chunks,
        "seconds": round(elapsed, 2),
        "members_per_s": round(members / elapsed),
        "judged_per_s": round(done.reviewed / elapsed),
        "peak_rss_mb": rss,
        "rerun_seconds": round(again_s, 3),
        "rerun_changed_nothing": again == done,
    }
    if timer:
        result["phases_s"] = {k.strip("_"): round(v, 2) for k, v in timer.seconds.items()}
        result["phases_s"]["decide_and_rest"] = round(elapsed - sum(timer.seconds.values()), 2)
    return result


def bench_sqlite(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        data_dir = Path(tmp)
        runtime = bootstrap(settings_for(f"sqlite:///{(data_dir / 'tiers.db').as_posix()}", data_dir, pool=2))
        try:
            upgrade(runtime.engine)
            console.print(f"[bold]SQLite[/bold]: populating {args.sqlite_members:,} members …")
            population = populate(runtime, args.sqlite_members, run_id)
            console.print(f"SQLite: reviewing 2026 in chunks of {args.chunk:,} …")
            result = measure(runtime, population["tenant_id"], args.chunk, args.phases)
            result["population"] = population
            return result
        finally:
            runtime.dispose()


def bench_postgres(args: argparse.Namespace, run_id: str) -> dict[str, Any] | None:
    url = make_url(args.pg_url)
    try:
        ensure_database(url, url.database or "liutong_tiers_bench")
    except DBAPIError as err:
        loud(f"PostgreSQL at {url.render_as_string(hide_password=True)} is unreachable:\n{str(err.orig).strip()}")
        return None
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        runtime = bootstrap(settings_for(args.pg_url, Path(tmp), pool=2))
        try:
            fresh_schema(runtime.engine)
            console.print(f"[bold]PostgreSQL[/bold]: populating {args.members:,} members …")
            population = populate(runtime, args.members, run_id)
            console.print(f"PostgreSQL: reviewing 2026 in chunks of {args.chunk:,} …")
            result = measure(runtime, population["tenant_id"], args.chunk, args.phases)
            result["population"] = population
            with runtime.engine.connect() as conn:
                result["server"] = conn.scalar(text("SHOW server_version"))
            return result
        finally:
            runtime.dispose()


def summary(result: dict[str, Any]) -> None:
    table = Table(title="等级周期复核 / tier period review (year 2026)")
    for column in ("backend", "members", "judged", "demoted", "seconds", "members/s", "peak RSS", "rerun", "target"):
        table.add_column(column, justify="right" if column not in ("backend", "target") else "left")
    for backend in ("postgresql", "sqlite"):
        r = result.get(backend)
        if not r:
            continue
        if backend == "postgresql":
            ok = r["seconds"] < PG_TARGET_S and r["peak_rss_mb"] < MEMORY_TARGET_MB
            target = f"< {PG_TARGET_S:.0f} s, < 1 GiB: {verdict(ok)}"
        else:
            target = "[dim]smaller run[/dim]"
        table.add_row(backend, f"{r['members']:,}", f"{r['judged']:,}", f"{r['demoted']:,}", f"{r['seconds']:.1f}",
                      f"{r['members_per_s']:,}", f"{r['peak_rss_mb']:.0f} MB",
                      f"{r['rerun_seconds']:.2f} s, " + ("no change" if r["rerun_changed_nothing"] else "[red]CHANGED[/red]"),
                      target)
    console.print(table)
    for backend in ("postgresql", "sqlite"):
        r = result.get(backend)
        if r and "phases_s" in r:
            console.print(f"{backend} phases (s): {r['phases_s']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000, help="PostgreSQL members (default 1,000,000)")
    parser.add_argument("--sqlite-members", type=int, default=100_000, help="SQLite members (default 100,000)")
    parser.add_argument("--chunk", type=int, default=tier_review.CHUNK,
                        help=f"members judged per transaction (default {tier_review.CHUNK:,})")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL URL (default {DEFAULT_PG_URL})")
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--phases", action="store_true", help="time each step of the chunks")
    args = parser.parse_args(argv)
    run_id = secrets.token_hex(4)
    result: dict[str, Any] = {"revision": revision(), "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if not args.skip_pg:
        result["postgresql"] = bench_postgres(args, run_id)
    if not args.skip_sqlite:
        result["sqlite"] = bench_sqlite(args, run_id)
    summary(result)
    print("RESULT " + json.dumps(result, ensure_ascii=False), flush=True)
    pg = result.get("postgresql")
    return 0 if not pg or (pg["seconds"] < PG_TARGET_S and pg["peak_rss_mb"] < MEMORY_TARGET_MB) else 1


if __name__ == "__main__":
    sys.exit(main())
