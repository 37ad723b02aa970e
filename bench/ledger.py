"""Points ledger throughput: SQLite (single process) and PostgreSQL (concurrent clients),
measured against pgbench TPC-B on the same server.

    python bench/ledger.py                      # the whole run, a minute or two
    python bench/ledger.py --skip-pg            # SQLite only
    python bench/ledger.py --entries 20000 --seconds 60 --pg-url postgresql+psycopg://user@host:5432/db
    python bench/ledger.py --profile            # add a cProfile pass and the SQL of one earn and one spend

Everything goes through the real services: a tenant with three legal entities and a base of
registered members is set up with ``organisation.service`` and ``members.service.register``,
then a mix of about 70 % ``earn_points`` (a lot expiring in twelve months, issued by one of the
entities) and 30 % ``spend_points`` (a small amount, on a member known to hold that much) is
posted, one entry per ``Runtime.transaction()``, each with its own idempotency key.
Spends that still overdraw are counted as business rejections; deadlocks and serialization
failures are counted (and should be zero).

Throughput counts committed entries. Latency is the wall time of one call, transaction
included (begin, statements, commit). A first batch of entries warms connections and
statement caches and is left out of the figures. After each measured run, a short census run
counts, at the driver, the statements that one earn and one spend execute (and on PostgreSQL
the round trips, BEGIN and COMMIT included), so that the counting does not slow the measured
run. Client CPU per entry is the benchmark process's CPU time over the run, all threads.

The PostgreSQL database named in ``--pg-url`` is created when missing; its ``public`` schema is
dropped and migrated afresh on every run. pgbench initialises its own database
(``liutong_pgbench``, scale 10) and runs TPC-B with as many clients as the ledger run.

The last line of output is ``RESULT {json}`` with every figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import math
import os
import pstats
import random
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError

from liutong.bootstrap import Runtime, bootstrap, utc_now
from liutong.config import Settings
from liutong.errors import InsufficientBalance
from liutong.ledger import service as ledger
from liutong.members import service as members
from liutong.members.schemas import MemberRegister
from liutong.migrate import upgrade
from liutong.organisation import service as org
from liutong.organisation.schemas import EntityCreate, TenantCreate

DEFAULT_PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/liutong_bench"
PGBENCH_DATABASE = "liutong_pgbench"
PGBENCH_SCALE = 10

SQLITE_TARGET_EPS = 3_000.0  # entries per second, single process
PG_TARGET_RATIO = 0.5  # ledger entries per second / pgbench TPC-B tps, same client count

SPEND_SHARE = 0.30
EARN_POINTS = (20, 500)
SPEND_POINTS = (10, 80)
REGISTER_BATCH = 250  # members registered per transaction while setting up
WARMUP_ENTRIES = 200
CENSUS_ENTRIES = 200
ENTITIES = (("park", "乐园公司"), ("hotel", "酒店公司"), ("mall", "商管公司"))
ISSUER_WEIGHTS = (5, 2, 3)  # park issues most of the points, then the mall, then the hotel

DEADLOCK = "40P01"
SERIALIZATION_FAILURE = "40001"

console = Console(highlight=False, width=shutil.get_terminal_size((120, 40)).columns)


# --- the member base ----------------------------------------------------------------------------


@dataclass
class Population:
    tenant_id: int
    entities: list[int]
    members: list[int]
    setup_s: float


def populate(runtime: Runtime, n_members: int, run_id: str) -> Population:
    """One tenant, its legal entities and ``n_members`` registered members, via the services."""
    started = time.perf_counter()
    with runtime.transaction() as tx:
        tenant = org.create_tenant(tx, data=TenantCreate(code=f"bench-{run_id}", name="西湖文旅集团"),
                                   key=f"{run_id}:tenant")
        entities = [
            org.create_entity(tx, tenant_id=tenant.id, key=f"{run_id}:entity:{code}",
                              data=EntityCreate(code=code, name=name)).id
            for code, name in ENTITIES
        ]
    member_ids: list[int] = []
    for start in range(0, n_members, REGISTER_BATCH):
        with runtime.transaction() as tx:
            for i in range(start, min(n_members, start + REGISTER_BATCH)):
                out = members.register(tx, tenant_id=tenant.id, key=f"{run_id}:member:{i}", actor="bench",
                                       data=MemberRegister(phone=f"139{i:08d}", source="bench"))
                member_ids.append(out.id)
    return Population(tenant.id, entities, member_ids, time.perf_counter() - started)


class Wallets:
    """What the driver knows each member can spend, so that spends rarely overdraw.

    A spend reserves its amount before it is posted (and gives it back if the entry fails);
    an earn is credited only once committed. Known balances therefore never exceed the
    ledger's, even with several clients.
    """

    def __init__(self, member_ids: list[int]) -> None:
        self._lock = threading.Lock()
        self._balance = dict.fromkeys(member_ids, 0)
        self._funded: list[int] = []
        self._slot: dict[int, int] = {}

    def credit(self, member_id: int, points: int) -> None:
        with self._lock:
            self._balance[member_id] += points
            if member_id not in self._slot:
                self._slot[member_id] = len(self._funded)
                self._funded.append(member_id)

    def reserve(self, rng: random.Random, wanted: int) -> tuple[int, int] | None:
        with self._lock:
            if not self._funded:
                return None
            member_id = self._funded[rng.randrange(len(self._funded))]
            points = min(wanted, self._balance[member_id])
            self._balance[member_id] -= points
            if self._balance[member_id] == 0:
                last = self._funded.pop()
                slot = self._slot.pop(member_id)
                if last != member_id:
                    self._funded[slot] = last
                    self._slot[last] = slot
            return member_id, points

    def release(self, member_id: int, points: int) -> None:
        self.credit(member_id, points)


# --- the earn / spend mix ------------------------------------------------------------------------


@dataclass
class Tally:
    earns: int = 0
    spends: int = 0
    insufficient: int = 0
    deadlocks: int = 0
    serialization_failures: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    @property
    def committed(self) -> int:
        return self.earns + self.spends

    def merge(self, other: Tally) -> None:
        for name in ("earns", "spends", "insufficient", "deadlocks", "serialization_failures", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies_ms += other.latencies_ms
        self.error_samples += other.error_samples[: max(0, 5 - len(self.error_samples))]


@dataclass
class Mix:
    runtime: Runtime
    population: Population
    wallets: Wallets

    def one(self, rng: random.Random, key: str, tally: Tally,
            observe: Callable[[str], None] | None = None) -> None:
        """Post one entry of the mix and account for its outcome and latency."""
        pop = self.population
        spend = self.wallets.reserve(rng, rng.randint(*SPEND_POINTS)) if rng.random() < SPEND_SHARE else None
        if spend is None:
            member_id = pop.members[rng.randrange(len(pop.members))]
            issuer = rng.choices(pop.entities, weights=ISSUER_WEIGHTS)[0]
            points = rng.randint(*EARN_POINTS)
        else:
            member_id, points = spend
        kind = "spend" if spend else "earn"
        started = time.perf_counter()
        try:
            with self.runtime.transaction() as tx:
                if spend:
                    ledger.spend_points(tx, tenant_id=pop.tenant_id, member_id=member_id, points=points, key=key)
                else:
                    ledger.earn_points(tx, tenant_id=pop.tenant_id, member_id=member_id, issuer_entity_id=issuer,
                                       points=points, key=key, expires_at=utc_now() + relativedelta(months=12))
        except InsufficientBalance:
            tally.insufficient += 1
            if spend:
                self.wallets.release(member_id, points)
        except DBAPIError as err:
            count_database_error(tally, kind, err)
            if spend:
                self.wallets.release(member_id, points)
        else:
            if spend:
                tally.spends += 1
            else:
                tally.earns += 1
                self.wallets.credit(member_id, points)
        finally:
            tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            if observe is not None:
                observe(kind)

    def run(self, rng: random.Random, prefix: str, tally: Tally, *, entries: int | None = None,
            deadline: float | None = None) -> None:
        seq = 0
        while (entries is None or seq < entries) and (deadline is None or time.perf_counter() < deadline):
            seq += 1
            self.one(rng, f"{prefix}:{seq}", tally)


def run_threads(mix: Mix, clients: int, prefix: str, seed: int, *, entries_per_client: int | None = None,
                seconds: float | None = None) -> tuple[Tally, float]:
    """Drive the mix from ``clients`` threads; returns the merged tally and the wall time."""
    tallies = [Tally() for _ in range(clients)]
    failures: list[BaseException] = []
    gate = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def client(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        gate.wait()
        try:
            mix.run(rng, f"{prefix}:{n}", tallies[n], entries=entries_per_client,
                    deadline=deadline[0] if deadline else None)
        except BaseException as err:  # noqa: BLE001 - reported by the caller
            failures.append(err)

    threads = [threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(clients)]
    for t in threads:
        t.start()
    if seconds is not None:
        deadline.append(time.perf_counter() + seconds)
    started = time.perf_counter()
    gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    total = Tally()
    for t in tallies:
        total.merge(t)
    return total, elapsed


def _process_client(url: str, pop: Population, n: int, clients: int, seed: int, prefix: str,
                    start_at: float, seconds: float) -> tuple[Tally, float]:
    """One client process: its own runtime and connection, its own slice of the members."""
    with tempfile.TemporaryDirectory(prefix="liutong-bench-client-") as tmp:
        runtime = bootstrap(settings_for(url, Path(tmp), 2))
        try:
            mine = Population(pop.tenant_id, pop.entities, pop.members[n::clients], 0.0)
            mix = Mix(runtime, mine, Wallets(mine.members))
            mix.run(random.Random(seed * 7919 + n), f"{prefix}:warmup:{n}", Tally(),
                    entries=max(1, WARMUP_ENTRIES // clients))
            time.sleep(max(0.0, start_at - time.time()))
            tally, cpu = Tally(), time.process_time()
            mix.run(random.Random(seed * 1000 + n), f"{prefix}:{n}", tally, deadline=time.perf_counter() + seconds)
            return tally, time.process_time() - cpu
        finally:
            runtime.dispose()


def run_processes(url: str, pop: Population, clients: int, prefix: str, seed: int,
                  seconds: float) -> tuple[Tally, float, float]:
    """Drive the mix from ``clients`` processes (as a server runs several workers), all starting
    together; returns the merged tally, the wall time and the clients' CPU seconds."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3 + clients  # time for every process to start and warm up
    with context.Pool(clients) as pool:
        jobs = [pool.apply_async(_process_client, (url, pop, n, clients, seed, prefix, start_at, seconds))
                for n in range(clients)]
        results = [job.get(timeout=seconds + 300) for job in jobs]
    total, cpu = Tally(), 0.0
    for tally, used in results:
        total.merge(tally)
        cpu += used
    return total, seconds, cpu


# --- statement census and profile ----------------------------------------------------------------


@dataclass
class Census:
    statements: dict[str, float]  # statements the database executed, BEGIN / COMMIT excluded
    round_trips: dict[str, float]  # client ↔ server round trips, BEGIN / COMMIT included (PostgreSQL)
    sample: dict[str, list[str]]


_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


def _shape(statement: str) -> str:
    """A short label for a statement: its verb and the tables it touches."""
    words = " ".join(statement.split())
    verb = words.split(" ", 1)[0].upper()
    ctes = {c.lower() for c in re.findall(r"(?:WITH|,)\s+(\w+)\s+AS\s*\(", words, re.I)}
    tables = [t for t in re.findall(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+\"?(\w+)", words, re.I)
              if t.lower() not in ctes and t.upper() != "OF"]
    shape = f"{verb} " + ",".join(dict.fromkeys(tables))
    if "FOR UPDATE" in words.upper():
        shape += " FOR UPDATE"
    if "ON CONFLICT" in words.upper():
        shape += " ON CONFLICT"
    return shape


class _Recorder:
    """Statements seen at the driver, whichever layer sent them (SQLAlchemy or plain cursors).

    SQLite reports every statement it executes (``set_trace_callback``); on PostgreSQL every
    cursor of the connection is a counting one (psycopg's ``cursor_factory``), and psycopg's
    own BEGIN and COMMIT are added as the two round trips they are.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.statements: list[str] = []
        self.round_trips = 0
        self._cursor_class: Any = None

    def reset(self) -> None:
        self.statements, self.round_trips = [], 0

    def _sqlite_trace(self, statement: str) -> None:
        if statement.startswith("--"):  # statements run by triggers
            return
        if not _TX_CONTROL.match(statement):
            self.statements.append(_shape(statement))

    def _counting_cursor(self) -> type:
        import psycopg

        recorder = self

        class CountingCursor(psycopg.Cursor):
            def execute(self, query, params=None, **kw):
                text_ = query if isinstance(query, str) else query.as_string(self)
                if not _TX_CONTROL.match(text_):
                    recorder.statements.append(_shape(text_))
                recorder.round_trips += 1
                return super().execute(query, params, **kw)

            def executemany(self, query, params_seq, **kw):
                rows = list(params_seq)
                text_ = query if isinstance(query, str) else query.as_string(self)
                recorder.statements += [_shape(text_) + " (batched)"] * len(rows)
                recorder.round_trips += 1  # pipelined: one round trip for the batch
                return super().executemany(query, rows, **kw)

        return CountingCursor

    def _checkout(self, dbapi_conn, _record, _proxy) -> None:
        if self.postgres:
            self._cursor_class = self._cursor_class or self._counting_cursor()
            dbapi_conn.cursor_factory = self._cursor_class
            self.round_trips += 2  # BEGIN (sent by psycopg before the first statement) and COMMIT
        else:
            dbapi_conn.set_trace_callback(self._sqlite_trace)

    def _checkin(self, dbapi_conn, _record) -> None:
        if dbapi_conn is None:
            return
        if self.postgres:
            import psycopg

            dbapi_conn.cursor_factory = psycopg.Cursor
        else:
            dbapi_conn.set_trace_callback(None)

    def __enter__(self) -> _Recorder:
        event.listen(self.engine, "checkout", self._checkout)
        event.listen(self.engine, "checkin", self._checkin)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "checkout", self._checkout)
        event.remove(self.engine, "checkin", self._checkin)


def census(mix: Mix, prefix: str, seed: int, entries: int = CENSUS_ENTRIES) -> Census:
    """Count the statements and round trips of each kind of entry, at the driver."""
    statements: dict[str, list[int]] = defaultdict(list)
    trips: dict[str, list[int]] = defaultdict(list)
    sample: dict[str, list[str]] = {}
    tally = Tally()
    with _Recorder(mix.runtime.engine) as rec:

        def observe(kind: str) -> None:
            statements[kind].append(len(rec.statements))
            trips[kind].append(rec.round_trips)
            sample.setdefault(kind, list(rec.statements))
            rec.reset()

        rng = random.Random(seed)
        for seq in range(1, entries + 1):
            rec.reset()
            mix.one(rng, f"{prefix}:{seq}", tally, observe)

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 2) if values else 0.0

    return Census(
        statements={k: mean(v) for k, v in statements.items()},
        round_trips={k: mean(v) for k, v in trips.items()} if mix.runtime.engine.dialect.name == "postgresql" else {},
        sample=sample,
    )


_BUCKETS = (
    ("database driver", ("sqlite3", "psycopg")),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("pydantic", ("pydantic",)),
    ("json / hashing", ("json", "hashlib", "sha256", "hexdigest")),
    ("liutong", ("liutong",)),
)


def profile(mix: Mix, prefix: str, seed: int, entries: int) -> dict[str, Any]:
    """A cProfile pass over the mix: the hottest functions, and own time per library."""
    profiler = cProfile.Profile()
    rng = random.Random(seed)
    tally = Tally()
    profiler.enable()
    for seq in range(1, entries + 1):
        mix.one(rng, f"{prefix}:{seq}", tally)
    profiler.disable()
    stats = pstats.Stats(profiler)
    own: Counter[str] = Counter()
    total = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        total += tottime
        where = f"{filename}:{name}".lower()
        bucket = next((label for label, marks in _BUCKETS if any(m in where for m in marks)), "other")
        own[bucket] += tottime
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(30)
    buf.write("\n")
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
    return {
        "entries": entries,
        "profiled_ms_per_entry": round(total * 1000 / entries, 3),
        "own_time_share": {k: round(v / total, 3) for k, v in own.most_common()},
        "report": buf.getvalue(),
    }


# --- figures -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[rank]


def figures(tally: Tally, elapsed: float, cpu: float) -> dict[str, Any]:
    """``cpu`` is the client process's CPU time over the run (all threads)."""
    lat = sorted(tally.latencies_ms)
    return {
        "entries": tally.committed,
        "earns": tally.earns,
        "spends": tally.spends,
        "seconds": round(elapsed, 3),
        "entries_per_s": round(tally.committed / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 50), 3),
        "p95_ms": round(percentile(lat, 95), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "max_ms": round(lat[-1], 3) if lat else None,
        "client_cpu_ms_per_entry": round(cpu * 1000 / tally.committed, 3) if tally.committed else None,
        "client_cpu_cores": round(cpu / elapsed, 2) if elapsed else None,
        "insufficient_balance": tally.insufficient,
        "deadlocks": tally.deadlocks,
        "serialization_failures": tally.serialization_failures,
        "other_errors": tally.errors,
        "error_samples": tally.error_samples,
    }


def peak_rss_mb() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def revision() -> str | None:
    """The source revision measured (``-dirty`` when the working tree has changes)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def loud(message: str) -> None:
    console.print(Panel(message, title="SKIPPED", style="bold red"))


def settings_for(url: str, data_dir: Path, pool: int, secret_key: str | None = None) -> Settings:
    """Client processes of one run pass the run's ``secret_key``: members' phone numbers are
    found by a blind index keyed by it."""
    return Settings(database_url=url, data_dir=data_dir, secret_key=secret_key or secrets.token_hex(32),
                    db_pool_size=pool)


def count_database_error(tally: Any, kind: str, err: DBAPIError) -> None:
    """Count a failed transaction as a deadlock, a serialization failure or another error (with
    the first few kept as samples); ``tally`` has those three counters and ``error_samples``."""
    state = getattr(err.orig, "sqlstate", None)
    if state == DEADLOCK:
        tally.deadlocks += 1
    elif state == SERIALIZATION_FAILURE:
        tally.serialization_failures += 1
    else:
        tally.errors += 1
        if len(tally.error_samples) < 5:
            tally.error_samples.append(f"{kind}: {type(err.orig).__name__}: {str(err.orig).splitlines()[0]}")


# --- SQLite --------------------------------------------------------------------------------------


def bench_sqlite(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        data_dir = Path(tmp)
        runtime = bootstrap(settings_for(f"sqlite:///{(data_dir / 'ledger.db').as_posix()}", data_dir, 4))
        try:
            upgrade(runtime.engine)
            console.print(f"[bold]SQLite[/bold]: registering {args.members:,} members …")
            pop = populate(runtime, args.members, run_id)
            mix = Mix(runtime, pop, Wallets(pop.members))
            warm = Tally()
            mix.run(random.Random(args.seed - 1), f"{run_id}:sqlite:warmup", warm, entries=WARMUP_ENTRIES)
            console.print(f"SQLite: setup {pop.setup_s:.1f}s; posting {args.entries:,} entries, one client …")
            tally = Tally()
            rng = random.Random(args.seed)
            cpu, started = time.process_time(), time.perf_counter()
            mix.run(rng, f"{run_id}:sqlite", tally, entries=args.entries)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            result = figures(tally, elapsed, cpu)
            result["peak_rss_mb"] = peak_rss_mb()
            result["setup_s"] = round(pop.setup_s, 2)
            result["members"] = len(pop.members)
            counted = census(mix, f"{run_id}:sqlite:census", args.seed + 1)
            result["statements_per_entry"] = counted.statements
            result["round_trips_per_entry"] = counted.round_trips
            if args.profile:
                prof = profile(mix, f"{run_id}:sqlite:profile", args.seed + 2, min(args.entries, 2_000))
                console.rule("SQLite profile")
                print(prof.pop("report"), flush=True)
                for kind, shapes in counted.sample.items():
                    console.print(f"SQL of one {kind} ({len(shapes)} statements):", markup=False)
                    for s in shapes:
                        console.print(f"    {s}", markup=False)
                result["profile"] = prof
            return result
        finally:
            runtime.dispose()


# --- PostgreSQL ----------------------------------------------------------------------------------


def ensure_database(url: URL, name: str) -> None:
    """Create database ``name`` on the server of ``url`` when it does not exist."""
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f"CREATE DATABASE {admin.dialect.identifier_preparer.quote(name)}"))
    finally:
        admin.dispose()


def fresh_schema(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)


def bench_postgres(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        runtime = bootstrap(settings_for(args.pg_url, Path(tmp), max(8, args.clients)))
        try:
            assert runtime.engine.pool.size() >= args.clients, "the pool must hold a connection per client"
            fresh_schema(runtime.engine)
            console.print(f"[bold]PostgreSQL[/bold]: registering {args.members:,} members …")
            pop = populate(runtime, args.members, run_id)
            mix = Mix(runtime, pop, Wallets(pop.members))
            mode = "threads" if args.threads else "processes"
            console.print(f"PostgreSQL: setup {pop.setup_s:.1f}s; posting for {args.seconds}s "
                          f"with {args.clients} client {mode} …")
            if args.threads:
                run_threads(mix, args.clients, f"{run_id}:pg:warmup", args.seed - 1,
                            entries_per_client=max(1, WARMUP_ENTRIES // args.clients))
                cpu = time.process_time()
                tally, elapsed = run_threads(mix, args.clients, f"{run_id}:pg", args.seed, seconds=args.seconds)
                cpu = time.process_time() - cpu
            else:
                tally, elapsed, cpu = run_processes(args.pg_url, pop, args.clients, f"{run_id}:pg", args.seed,
                                                    args.seconds)
            result = figures(tally, elapsed, cpu)
            result["clients"] = args.clients
            result["client_mode"] = mode
            result["setup_s"] = round(pop.setup_s, 2)
            result["members"] = len(pop.members)
            with runtime.engine.connect() as conn:
                result["server"] = conn.scalar(text("SHOW server_version"))
            counted = census(mix, f"{run_id}:pg:census", args.seed + 1)
            result["statements_per_entry"] = counted.statements
            result["round_trips_per_entry"] = counted.round_trips
            if args.profile:
                for kind, shapes in counted.sample.items():
                    console.print(f"PostgreSQL SQL of one {kind} ({len(shapes)} statements):", markup=False)
                    for s in shapes:
                        console.print(f"    {s}", markup=False)
            return result
        finally:
            runtime.dispose()


def bench_pgbench(args: argparse.Namespace) -> dict[str, Any] | None:
    exe = shutil.which("pgbench") or ("/usr/bin/pgbench" if os.path.exists("/usr/bin/pgbench") else None)
    if exe is None:
        loud("pgbench was not found: the TPC-B baseline and the ratio are skipped.")
        return None
    url = make_url(args.pg_url)
    ensure_database(url, PGBENCH_DATABASE)
    conn = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "root"]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    console.print(f"[bold]pgbench[/bold]: initialising {PGBENCH_DATABASE} at scale {PGBENCH_SCALE} …")
    init = subprocess.run([exe, "-i", "-s", str(PGBENCH_SCALE), "-q", *conn, PGBENCH_DATABASE],
                          capture_output=True, text=True, env=env, timeout=900)
    if init.returncode:
        loud(f"pgbench -i failed ({init.returncode}):\n{init.stderr.strip()[-800:]}")
        return None
    console.print(f"pgbench: TPC-B for {args.seconds}s with {args.clients} clients …")
    command = [exe, "-c", str(args.clients), "-j", str(args.clients), "-T", str(args.seconds), "-n", *conn,
               PGBENCH_DATABASE]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.seconds + 300)
    tps = re.search(r"^tps = ([\d.]+)", run.stdout, re.M)
    if run.returncode or not tps:
        loud(f"pgbench failed ({run.returncode}):\n{(run.stderr or run.stdout).strip()[-800:]}")
        return None
    latency = re.search(r"^latency average = ([\d.]+) ms", run.stdout, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", run.stdout, re.M)
    return {
        "tps": round(float(tps.group(1)), 1),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
        "clients": args.clients,
        "scale": PGBENCH_SCALE,
        "seconds": args.seconds,
        "command": "pgbench " + " ".join(command[1:]),
    }


# --- report --------------------------------------------------------------------------------------


def postgres_with_baseline(args: argparse.Namespace, *, what: str, default_database: str,
                           run: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Run ``run`` against PostgreSQL, then pgbench TPC-B on the same server; either part is
    skipped with a loud message (never a crash) when PostgreSQL or pgbench cannot be reached."""
    if args.skip_pg:
        console.print("PostgreSQL and pgbench skipped (--skip-pg).")
        return None, None
    url = make_url(args.pg_url)
    try:
        ensure_database(url, url.database or default_database)
    except DBAPIError as err:
        loud(f"PostgreSQL at {url.render_as_string(hide_password=True)} is unreachable:\n"
             f"{str(err.orig).strip()}\nThe PostgreSQL {what} run and pgbench are skipped.")
        return None, None
    measured = run()
    try:
        return measured, bench_pgbench(args)
    except (DBAPIError, OSError, subprocess.TimeoutExpired) as err:
        loud(f"pgbench could not run: {err}")
        return measured, None


def verdict(ok: bool | None) -> str:
    return "[dim]n/a[/dim]" if ok is None else ("[bold green]met[/bold green]" if ok else "[bold red]missed[/bold red]")


def summary(result: dict[str, Any]) -> None:
    title = "Points ledger benchmark" + (f" ({result['revision']})" if result.get("revision") else "")
    table = Table(title=title, show_lines=False)
    table.add_column("Figure")
    table.add_column("Value", justify="right")
    table.add_column("Target", justify="right")
    table.add_column("", justify="center")

    def latency_row(label: str, r: dict[str, Any]) -> None:
        table.add_row(label, f"{r['p50_ms']:.2f} / {r['p95_ms']:.2f} / {r['p99_ms']:.2f}", "", "")

    def statements_row(label: str, r: dict[str, Any]) -> None:
        s = r["statements_per_entry"]
        table.add_row(label, f"{s.get('earn', 0):.1f} / {s.get('spend', 0):.1f}", "", "")
        if r.get("round_trips_per_entry"):
            t = r["round_trips_per_entry"]
            table.add_row(label.replace("statements", "round trips"),
                          f"{t.get('earn', 0):.1f} / {t.get('spend', 0):.1f}", "", "")

    def cpu_row(label: str, r: dict[str, Any]) -> None:
        if r.get("client_cpu_ms_per_entry") is not None:
            table.add_row(label, f"{r['client_cpu_ms_per_entry']:.2f} ms ({r['client_cpu_cores']:.2f} cores busy)", "", "")

    lite = result.get("sqlite")
    if lite:
        eps = lite["entries_per_s"]
        table.add_row("SQLite entries/s (1 client)", f"{eps:,.0f}", f"≥ {SQLITE_TARGET_EPS:,.0f}",
                      verdict(eps >= SQLITE_TARGET_EPS))
        latency_row("SQLite latency p50 / p95 / p99 (ms)", lite)
        table.add_row("SQLite entries (earn / spend)", f"{lite['earns']:,} / {lite['spends']:,}", "", "")
        statements_row("SQLite statements per earn / spend", lite)
        cpu_row("SQLite client CPU per entry", lite)
        table.add_row("Peak RSS after SQLite run (MB)", f"{lite['peak_rss_mb']:,.1f}", "", "")
    pg = result.get("postgres")
    bench = result.get("pgbench")
    if pg:
        ratio = result.get("ratio")
        table.add_row(f"PostgreSQL entries/s ({pg['clients']} client {pg.get('client_mode', 'threads')})", f"{pg['entries_per_s']:,.0f}",
                      f"≥ {PG_TARGET_RATIO}× pgbench" + (f" = {PG_TARGET_RATIO * bench['tps']:,.0f}" if bench else ""),
                      verdict(None if ratio is None else ratio >= PG_TARGET_RATIO))
        latency_row("PostgreSQL latency p50 / p95 / p99 (ms)", pg)
        table.add_row("PostgreSQL entries (earn / spend)", f"{pg['earns']:,} / {pg['spends']:,}", "", "")
        statements_row("PostgreSQL statements per earn / spend", pg)
        cpu_row("PostgreSQL client CPU per entry", pg)
        table.add_row("Deadlocks / serialization failures", f"{pg['deadlocks']} / {pg['serialization_failures']}",
                      "0 / 0", verdict(pg["deadlocks"] == 0 and pg["serialization_failures"] == 0))
        table.add_row("Other database errors", str(pg["other_errors"]), "0", verdict(pg["other_errors"] == 0))
    if bench:
        table.add_row(f"pgbench TPC-B tps (scale {bench['scale']}, {bench['clients']} clients)",
                      f"{bench['tps']:,.0f}", "", "")
    if result.get("ratio") is not None:
        table.add_row("Ledger entries/s ÷ pgbench tps", f"{result['ratio']:.3f}×", f"≥ {PG_TARGET_RATIO}×",
                      verdict(result["ratio"] >= PG_TARGET_RATIO))
    rejected = sum(r["insufficient_balance"] for r in (lite, pg) if r)
    table.add_row("InsufficientBalance (business rejections)", str(rejected), "", "")
    table.add_row("Peak RSS, whole run (MB)", f"{result['peak_rss_mb']:,.1f}", "", "")
    console.print(table)
    for name in ("sqlite", "postgres"):
        for sample in (result.get(name) or {}).get("error_samples", []):
            console.print(f"[red]{name} error:[/red] {sample}", markup=True)


def common_arguments(parser: argparse.ArgumentParser, *, what: str, default_seconds: int, default_pg_url: str,
                     default_seed: int) -> None:
    """The options every benchmark here shares: PostgreSQL, pgbench, population, seed."""
    parser.add_argument("--seconds", type=int, default=default_seconds,
                        help=f"duration of the PostgreSQL {what} run and of pgbench (default {default_seconds})")
    parser.add_argument("--pg-url", default=default_pg_url, help=f"PostgreSQL URL (default {default_pg_url})")
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only")
    parser.add_argument("--members", type=int, default=2_000, help="members registered per backend (default 2000)")
    parser.add_argument("--clients", type=int, default=4, help="PostgreSQL clients and pgbench clients (default 4)")
    parser.add_argument("--seed", type=int, default=default_seed, help="random seed of the mix")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5_000, help="entries posted in the SQLite run (default 5000)")
    common_arguments(parser, what="ledger", default_seconds=30, default_pg_url=DEFAULT_PG_URL,
                     default_seed=20_240_601)
    parser.add_argument("--threads", action="store_true",
                        help="run the PostgreSQL clients as threads of one process instead of processes")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the SQLite mix (cProfile) and print the SQL of one earn and one spend")
    args = parser.parse_args(argv)

    run_id = secrets.token_hex(4)
    result: dict[str, Any] = {"run": run_id, "revision": revision(), "members": args.members,
                              "spend_share": SPEND_SHARE,
                              "targets": {"sqlite_entries_per_s": SQLITE_TARGET_EPS,
                                          "pg_vs_pgbench_ratio": PG_TARGET_RATIO}}
    result["sqlite"] = bench_sqlite(args, run_id)

    result["postgres"], result["pgbench"] = postgres_with_baseline(
        args, what="ledger", default_database="liutong_bench", run=lambda: bench_postgres(args, run_id))
    if result.get("postgres") and result.get("pgbench"):
        result["ratio"] = round(result["postgres"]["entries_per_s"] / result["pgbench"]["tps"], 3)
    else:
        result["ratio"] = None
    result["peak_rss_mb"] = peak_rss_mb()

    summary(result)
    print("RESULT " + json.dumps(result, ensure_ascii=False, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
