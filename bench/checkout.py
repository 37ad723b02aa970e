"""Checkout throughput: SQLite (single process) and PostgreSQL (concurrent client processes),
measured against pgbench TPC-B on the same server.

    python bench/checkout.py                    # the whole run, a minute and a half
    python bench/checkout.py --skip-pg          # SQLite only
    python bench/checkout.py --commits 10000 --seconds 60 --pg-url postgresql+psycopg://user@host:5432/db
    python bench/checkout.py --profile          # add a cProfile pass over SQLite commits and their SQL

A tenant is set up through the services as an operator would: three legal entities (park,
hotel, mall), four venues of different formats (a theme park, a hotel, a mall and a food
street) and five merchants — park tickets, a hotel front desk, a restaurant, a fashion shop and
a coffee shop, each with a store and a till — then ``members.service.register`` registers the
member base and about half of the members are given points to spend (``ledger.earn_points``).

Each sale is what a till does: ``checkout.service.quote`` prices a basket of one to four lines
at one of the merchants (random products, prices and quantities), then
``checkout.service.commit`` posts it with a unique order number and, as payment, exactly the
payable the quote gave. About 15 % of the sales are guests without a membership; about 30 %
are members who pay part with points: they ask for a number of points at or under what the
quote says is usable (all of it half of the time), and the payable is the quote's less the
points' cash value. The rest are members who only earn. The quote runs in its own transaction
and is not part of the measured call; each commit runs in its own ``Runtime.transaction()``,
as an operator (``Principal`` with role ``operator_admin``) naming the till's terminal.

The measured call is the commit, transaction included (begin, statements, commit). Commits per
second are commits divided by the time the clients spent in commit calls (with several
clients, the sum of each client's rate); the wall-clock rate of whole sales, quotes included, is
given next to it. Client CPU per commit is the CPU time of the commit calls alone. Business
refusals (a payment that does not match, points beyond the balance, …) are counted and should
be zero; deadlocks and serialization failures are counted and should be zero. A first batch of
sales warms connections and caches and is left out. After each backend's run, a short census
run counts at the driver the statements (and on PostgreSQL the round trips, BEGIN and COMMIT
included) of one quote and of each kind of commit, and ``ledger verify`` checks every ledger
invariant of the tenant.

The PostgreSQL database named in ``--pg-url`` is created when missing; its ``public`` schema is
dropped and migrated afresh on every run. pgbench runs TPC-B (scale 10, in its own database)
with as many clients as the checkout run, as in ``bench/ledger.py``.

The last line of output is ``RESULT {json}`` with every figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import pstats
import random
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import (  # noqa: E402 - the bench folder is on the path from here
    _BUCKETS,
    REGISTER_BATCH,
    _Recorder,
    common_arguments,
    count_database_error,
    console,
    fresh_schema,
    peak_rss_mb,
    percentile,
    populate,
    postgres_with_baseline,
    revision,
    settings_for,
    verdict,
)
from rich.table import Table  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402

from liutong.bootstrap import Runtime, bootstrap, utc_now  # noqa: E402
from liutong.checkout import pricing  # noqa: E402
from liutong.checkout import service as checkout  # noqa: E402
from liutong.checkout.schemas import CartLine, CommitRequest, MemberRef, Payment, QuoteRequest  # noqa: E402
from liutong.errors import LiutongError  # noqa: E402
from liutong.ledger import service as ledger  # noqa: E402
from liutong.ledger.verify import verify  # noqa: E402
from liutong.migrate import upgrade  # noqa: E402
from liutong.organisation import service as org  # noqa: E402
from liutong.organisation.auth import Principal  # noqa: E402
from liutong.organisation.models import MerchantMode, Role, TerminalKind, VenueFormat  # noqa: E402
from liutong.organisation.schemas import MerchantCreate, StoreCreate, TerminalCreate, VenueCreate  # noqa: E402
from liutong.program import service as program_service  # noqa: E402
from liutong.program.rules import ProgramDocument  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/liutong_bench_checkout"

SQLITE_TARGET_CPS = 1_000.0  # commits per second, single process
PG_TARGET_RATIO = 0.5  # checkout commits per second / pgbench TPC-B tps, same client count

GUEST_SHARE = 0.15
POINTS_SHARE = 0.30
FUNDED_SHARE = 0.5  # members given points before the run
FUNDED_POINTS = (500, 8_000)
WARMUP_SALES = 200
CENSUS_SALES = 200
CHANNELS = ("wechat", "alipay", "unionpay", "cash")

# venue code, name, format, issuing entity (index into ledger.ENTITIES: park, hotel, mall)
VENUES = (
    ("park", "欢乐谷", VenueFormat.theme_park, 0),
    ("hotel", "湖畔酒店", VenueFormat.hotel, 1),
    ("mall", "六通里", VenueFormat.mall, 2),
    ("food", "美食街", VenueFormat.dining, 2),
)


@dataclass(frozen=True)
class Product:
    sku: str
    category: str
    price: tuple[int, int]  # fen, inclusive range
    qty: tuple[int, int]


@dataclass(frozen=True)
class Outlet:
    """A merchant with one store and one till, and what it sells."""

    code: str
    name: str
    mode: MerchantMode
    venue: str
    terminal_kind: TerminalKind
    weight: int
    products: tuple[Product, ...]


OUTLETS = (
    Outlet("tickets", "乐园票务", MerchantMode.self_operated, "park", TerminalKind.pos, 3, (
        Product("DAY-PASS", "tickets", (19_900, 39_900), (1, 4)),
        Product("FAST-PASS", "tickets", (8_000, 15_000), (1, 2)),
        Product("SOUVENIR", "retail", (2_900, 19_900), (1, 2)),
    )),
    Outlet("front-desk", "湖畔酒店前台", MerchantMode.self_operated, "hotel", TerminalKind.front_desk, 1, (
        Product("ROOM-NIGHT", "rooms", (49_900, 159_900), (1, 3)),
        Product("BREAKFAST", "food", (8_800, 12_800), (1, 4)),
        Product("MINIBAR", "drinks", (1_500, 9_800), (1, 3)),
    )),
    Outlet("noodles", "知味观", MerchantMode.third_party, "food", TerminalKind.pos, 3, (
        Product("NOODLES", "food", (1_800, 6_800), (1, 4)),
        Product("DUMPLINGS", "food", (2_200, 4_800), (1, 3)),
        Product("TEA", "drinks", (800, 3_800), (1, 4)),
    )),
    Outlet("fashion", "衣品时尚", MerchantMode.third_party, "mall", TerminalKind.pos, 2, (
        Product("SHIRT", "apparel", (9_900, 59_900), (1, 2)),
        Product("SHOES", "apparel", (29_900, 129_900), (1, 1)),
        Product("SCARF", "accessories", (4_900, 19_900), (1, 2)),
    )),
    Outlet("coffee", "星语咖啡", MerchantMode.third_party, "mall", TerminalKind.pos, 3, (
        Product("LATTE", "drinks", (2_800, 4_200), (1, 3)),
        Product("CAKE", "food", (2_600, 4_800), (1, 2)),
        Product("BEANS", "retail", (6_800, 16_800), (1, 1)),
    )),
)


# --- the tenant ---------------------------------------------------------------------------------


@dataclass
class Till:
    terminal_id: int
    outlet: Outlet


@dataclass
class Shop:
    """Everything a client needs to ring up sales; picklable, for the client processes."""

    tenant_id: int
    tills: list[Till]
    members: list[tuple[int, str]]  # (member id, phone)
    holders: list[int]  # indexes into members of those given points
    program: ProgramDocument
    setup_s: float

    @property
    def principal(self) -> Principal:
        return Principal(key_id=None, role=Role.operator_admin, tenant_id=self.tenant_id, name="bench")

    def slice(self, n: int, clients: int) -> Shop:
        """Client ``n``'s share of the members, so that no two clients sell to the same member."""
        mine = list(range(n, len(self.members), clients))
        position = {m: i for i, m in enumerate(mine)}
        return Shop(self.tenant_id, self.tills, [self.members[m] for m in mine],
                    [position[h] for h in self.holders if h in position], self.program, 0.0)


def build_shop(runtime: Runtime, n_members: int, run_id: str, seed: int) -> Shop:
    """The tenant, its venues, merchants, stores and tills, the members, and their points."""
    started = time.perf_counter()
    pop = populate(runtime, n_members, run_id)  # tenant, entities (park, hotel, mall), members
    tenant_id = pop.tenant_id
    tills: list[Till] = []
    with runtime.transaction() as tx:
        venues = {
            code: org.create_venue(tx, tenant_id=tenant_id, key=f"{run_id}:venue:{code}",
                                   data=VenueCreate(code=code, name=name, format=fmt,
                                                    entity_id=pop.entities[entity])).id
            for code, name, fmt, entity in VENUES
        }
        entity_of = {code: pop.entities[entity] for code, _, _, entity in VENUES}
        for o in OUTLETS:
            merchant = org.create_merchant(tx, tenant_id=tenant_id, key=f"{run_id}:merchant:{o.code}",
                                           data=MerchantCreate(code=o.code, name=o.name, mode=o.mode,
                                                               entity_id=entity_of[o.venue],
                                                               venue_id=venues[o.venue])).id
            store = org.create_store(tx, tenant_id=tenant_id, key=f"{run_id}:store:{o.code}",
                                     data=StoreCreate(code=f"{o.code}-1", name=f"{o.name}一号店",
                                                      merchant_id=merchant)).id
            terminal = org.create_terminal(tx, tenant_id=tenant_id, key=f"{run_id}:terminal:{o.code}",
                                           data=TerminalCreate(code=f"{o.code}-pos-1", kind=o.terminal_kind,
                                                               store_id=store)).id
            tills.append(Till(terminal, o))
        program = program_service.current(tx, tenant_id=tenant_id).document
    rng = random.Random(seed)
    holders = sorted(rng.sample(range(len(pop.members)), int(len(pop.members) * FUNDED_SHARE)))
    expires = utc_now() + timedelta(days=365)
    for start in range(0, len(holders), REGISTER_BATCH):
        with runtime.transaction() as tx:
            for i in holders[start:start + REGISTER_BATCH]:
                ledger.earn_points(tx, tenant_id=tenant_id, member_id=pop.members[i], issuer_entity_id=pop.entities[0],
                                   points=rng.randint(*FUNDED_POINTS), key=f"{run_id}:fund:{i}", expires_at=expires,
                                   memo="开卡礼 / welcome points")
    members = [(member_id, f"139{i:08d}") for i, member_id in enumerate(pop.members)]  # as populate registers them
    return Shop(tenant_id, tills, members, holders, program, time.perf_counter() - started)


# --- one sale -----------------------------------------------------------------------------------


@dataclass
class Tally:
    commits: int = 0
    guests: int = 0
    earn_only: int = 0
    with_points: int = 0
    points_used: int = 0
    points_unavailable: int = 0  # a points payer whose quote offered fewer than the minimum
    promotions: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    deadlocks: int = 0
    serialization_failures: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    commit_ms: list[float] = field(default_factory=list)
    quote_ms: list[float] = field(default_factory=list)
    commit_cpu_s: float = 0.0

    @property
    def commit_s(self) -> float:
        return sum(self.commit_ms) / 1000

    def merge(self, other: Tally) -> None:
        for name in ("commits", "guests", "earn_only", "with_points", "points_used", "points_unavailable",
                     "promotions", "deadlocks", "serialization_failures", "errors", "commit_cpu_s"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.refused.update(other.refused)
        self.commit_ms += other.commit_ms
        self.quote_ms += other.quote_ms
        self.error_samples += other.error_samples[: max(0, 5 - len(self.error_samples))]


@dataclass
class Sales:
    runtime: Runtime
    shop: Shop
    order_prefix: str
    seq: int = 0

    def basket(self, rng: random.Random, outlet: Outlet) -> list[CartLine]:
        picks = [rng.choice(outlet.products) for _ in range(rng.randint(1, 4))]
        return [CartLine(sku=f"{p.sku}-{rng.randint(1, 40):02d}", category=p.category, qty=rng.randint(*p.qty),
                         unit_price=rng.randint(*p.price)) for p in picks]

    def one(self, rng: random.Random, tally: Tally,
            observe: Callable[[str, str], None] | None = None) -> None:
        """Quote one basket, then commit it; only the commit is measured.

        ``observe(stage, kind)`` is called after the quote and after the commit (census)."""
        shop = self.shop
        till = rng.choices(shop.tills, weights=[t.outlet.weight for t in shop.tills])[0]
        lines = self.basket(rng, till.outlet)
        draw = rng.random()
        member: MemberRef | None = None
        wants_points = False
        if draw >= GUEST_SHARE:
            wants_points = draw < GUEST_SHARE + POINTS_SHARE and bool(shop.holders)
            pick = shop.holders[rng.randrange(len(shop.holders))] if wants_points else rng.randrange(len(shop.members))
            member = MemberRef(phone=shop.members[pick][1])
        principal = shop.principal
        started = time.perf_counter()
        with self.runtime.transaction() as tx:
            quoted = checkout.quote(tx, principal=principal,
                                    data=QuoteRequest(terminal_id=till.terminal_id, member=member, lines=lines))
        tally.quote_ms.append((time.perf_counter() - started) * 1000)
        points, payable = 0, quoted.payable
        if wants_points:
            usable = quoted.points.max_usable
            if usable >= shop.program.redeem.min_points:
                points = usable if rng.random() < 0.5 else rng.randint(shop.program.redeem.min_points, usable)
                payable -= pricing.fen_per_points(shop.program, points)
            else:
                tally.points_unavailable += 1
        kind = "guest" if member is None else ("points" if points else "earn")
        if observe is not None:
            observe("quote", kind)
        self.seq += 1
        order_no = f"{self.order_prefix}-{self.seq:07d}"
        request = CommitRequest(terminal_id=till.terminal_id, member=member, lines=lines, points=points,
                                order_no=order_no, payment=Payment(channel=rng.choice(CHANNELS),
                                                                   reference=f"pay-{order_no}", amount=payable))
        cpu, started = time.process_time(), time.perf_counter()
        try:
            with self.runtime.transaction() as tx:
                done = checkout.commit(tx, principal=principal, data=request, actor=principal.actor)
        except LiutongError as err:
            tally.refused[err.code] += 1
            if len(tally.error_samples) < 5:
                tally.error_samples.append(f"{kind}: {err.code}: {err}")
        except DBAPIError as err:
            count_database_error(tally, kind, err)
        else:
            tally.commits += 1
            if kind == "guest":
                tally.guests += 1
            elif kind == "points":
                tally.with_points += 1
                tally.points_used += points
            else:
                tally.earn_only += 1
            tally.promotions += done.promoted_to is not None
        finally:
            tally.commit_ms.append((time.perf_counter() - started) * 1000)
            tally.commit_cpu_s += time.process_time() - cpu
            if observe is not None:
                observe("commit", kind)

    def run(self, rng: random.Random, tally: Tally, *, sales: int | None = None,
            deadline: float | None = None) -> None:
        done = 0
        while (sales is None or done < sales) and (deadline is None or time.perf_counter() < deadline):
            done += 1
            self.one(rng, tally)


def _process_client(url: str, secret: str, shop: Shop, n: int, clients: int, seed: int, prefix: str,
                    start_at: float, seconds: float) -> tuple[Tally, float, float]:
    """One client process: its own runtime and connection, its own slice of the members.
    Returns its tally, its CPU seconds over the run and its peak RSS in MB."""
    try:
        return _client_run(url, secret, shop, n, clients, seed, prefix, start_at, seconds)
    except BaseException:  # not every exception survives the trip back to the parent
        import traceback

        raise RuntimeError(f"client {n} failed:\n{traceback.format_exc()}") from None


def _client_run(url: str, secret: str, shop: Shop, n: int, clients: int, seed: int, prefix: str,
                start_at: float, seconds: float) -> tuple[Tally, float, float]:
    with tempfile.TemporaryDirectory(prefix="liutong-bench-client-") as tmp:
        runtime = bootstrap(settings_for(url, Path(tmp), 2, secret))
        try:
            mine = shop.slice(n, clients)
            Sales(runtime, mine, f"{prefix}-w{n}").run(random.Random(seed * 7919 + n), Tally(),
                                                        sales=max(1, WARMUP_SALES // clients))
            time.sleep(max(0.0, start_at - time.time()))
            tally, cpu = Tally(), time.process_time()
            Sales(runtime, mine, f"{prefix}-{n}").run(random.Random(seed * 1000 + n), tally,
                                                       deadline=time.perf_counter() + seconds)
            return tally, time.process_time() - cpu, peak_rss_mb()
        finally:
            runtime.dispose()


def run_processes(url: str, secret: str, shop: Shop, clients: int, prefix: str, seed: int,
                  seconds: float) -> tuple[Tally, float, float, float, float]:
    """Sell from ``clients`` processes at once (as a server runs several workers); returns the
    merged tally, the wall time, the clients' CPU seconds, the sum of the clients' commit rates
    and the largest client peak RSS."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3 + clients  # time for every process to start and warm up
    with context.Pool(clients) as pool:
        jobs = [pool.apply_async(_process_client, (url, secret, shop, n, clients, seed, prefix, start_at, seconds))
                for n in range(clients)]
        results = [job.get(timeout=seconds + 300) for job in jobs]
    total, cpu, rate, rss = Tally(), 0.0, 0.0, 0.0
    for tally, used, peak in results:
        total.merge(tally)
        cpu += used
        rate += tally.commits / tally.commit_s if tally.commit_s else 0.0
        rss = max(rss, peak)
    return total, seconds, cpu, rate, rss


# --- figures, census, invariants ----------------------------------------------------------------


def figures(tally: Tally, wall: float, cpu: float, commits_per_s: float) -> dict[str, Any]:
    lat = sorted(tally.commit_ms)
    quotes = sorted(tally.quote_ms)
    return {
        "commits": tally.commits,
        "guests": tally.guests,
        "earn_only": tally.earn_only,
        "with_points": tally.with_points,
        "points_share": round(tally.with_points / tally.commits, 3) if tally.commits else None,
        "points_used": tally.points_used,
        "points_unavailable": tally.points_unavailable,
        "promotions": tally.promotions,
        "seconds": round(wall, 3),
        "commit_seconds": round(tally.commit_s, 3),
        "commits_per_s": round(commits_per_s, 1),
        "sales_per_s_wall": round(tally.commits / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(lat, 50), 3),
        "p95_ms": round(percentile(lat, 95), 3),
        "p99_ms": round(percentile(lat, 99), 3),
        "max_ms": round(lat[-1], 3) if lat else None,
        "quote_p50_ms": round(percentile(quotes, 50), 3),
        "quote_p95_ms": round(percentile(quotes, 95), 3),
        "client_cpu_ms_per_commit": round(tally.commit_cpu_s * 1000 / tally.commits, 3) if tally.commits else None,
        "client_cpu_ms_per_sale": round(cpu * 1000 / tally.commits, 3) if tally.commits else None,
        "client_cpu_cores": round(cpu / wall, 2) if wall else None,
        "refused": dict(tally.refused),
        "deadlocks": tally.deadlocks,
        "serialization_failures": tally.serialization_failures,
        "other_errors": tally.errors,
        "error_samples": tally.error_samples,
    }


def census(sales: Sales, seed: int, n: int = CENSUS_SALES) -> dict[str, Any]:
    """Statements (and round trips) of one quote and of each kind of commit, counted at the driver."""
    statements: dict[str, list[int]] = defaultdict(list)
    trips: dict[str, list[int]] = defaultdict(list)
    sample: dict[str, list[str]] = {}
    postgres = sales.runtime.engine.dialect.name == "postgresql"
    with _Recorder(sales.runtime.engine) as rec:

        def observe(stage: str, kind: str) -> None:
            label = "quote" if stage == "quote" else kind
            statements[label].append(len(rec.statements))
            trips[label].append(rec.round_trips)
            sample.setdefault(label, list(rec.statements))
            rec.reset()

        rng = random.Random(seed)
        for _ in range(n):
            rec.reset()
            sales.one(rng, Tally(), observe)

    def mean(values: list[int]) -> float:
        return round(sum(values) / len(values), 2) if values else 0.0

    return {"statements": {k: mean(v) for k, v in statements.items()},
            "round_trips": {k: mean(v) for k, v in trips.items()} if postgres else {},
            "sample": sample}


def check_invariants(runtime: Runtime, tenant_id: int) -> dict[str, Any]:
    started = time.perf_counter()
    with runtime.transaction() as tx:
        checks = verify(tx.session, tenant_id)
    broken = {c.name: c.violations[:3] for c in checks if not c.ok}
    return {"held": not broken, "checks": len(checks), "broken": broken,
            "seconds": round(time.perf_counter() - started, 2)}


def profile(sales: Sales, seed: int, n: int) -> dict[str, Any]:
    """cProfile over the commit calls only (the quotes run unprofiled)."""
    profiler = cProfile.Profile()
    original = checkout.commit

    def profiled(*args: Any, **kwargs: Any) -> Any:
        profiler.enable()
        try:
            return original(*args, **kwargs)
        finally:
            profiler.disable()

    checkout.commit = profiled
    try:
        sales.run(random.Random(seed), Tally(), sales=n)
    finally:
        checkout.commit = original
    stats = pstats.Stats(profiler)
    own: Counter[str] = Counter()
    total = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        total += tottime
        where = f"{filename}:{name}".lower()
        own[next((label for label, marks in _BUCKETS if any(m in where for m in marks)), "other")] += tottime
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(30)
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
    return {"commits": n, "profiled_ms_per_commit": round(total * 1000 / n, 3),
            "own_time_share": {k: round(v / total, 3) for k, v in own.most_common()}, "report": buf.getvalue()}


def print_sql(backend: str, sample: dict[str, list[str]]) -> None:
    for kind, shapes in sample.items():
        console.print(f"{backend} SQL of one {kind if kind == 'quote' else kind + ' commit'} "
                      f"({len(shapes)} statements):", markup=False)
        for shape, count in Counter(shapes).items():
            console.print(f"    {count} × {shape}", markup=False)


# --- backends -----------------------------------------------------------------------------------


def bench_sqlite(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        data_dir = Path(tmp)
        runtime = bootstrap(settings_for(f"sqlite:///{(data_dir / 'checkout.db').as_posix()}", data_dir, 4,
                                         secrets.token_hex(32)))
        try:
            upgrade(runtime.engine)
            console.print(f"[bold]SQLite[/bold]: setting up the tenant and {args.members:,} members …")
            shop = build_shop(runtime, args.members, run_id, args.seed)
            Sales(runtime, shop, f"{run_id}-SW").run(random.Random(args.seed - 1), Tally(), sales=WARMUP_SALES)
            console.print(f"SQLite: setup {shop.setup_s:.1f}s; {args.commits:,} sales (quote, then commit), "
                          "one client …")
            tally = Tally()
            cpu, started = time.process_time(), time.perf_counter()
            Sales(runtime, shop, f"{run_id}-S").run(random.Random(args.seed), tally, sales=args.commits)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            result = figures(tally, wall, cpu, tally.commits / tally.commit_s if tally.commit_s else 0.0)
            result["peak_rss_mb"] = peak_rss_mb()
            result["setup_s"] = round(shop.setup_s, 2)
            result["members"] = len(shop.members)
            result["invariants"] = check_invariants(runtime, shop.tenant_id)
            counted = census(Sales(runtime, shop, f"{run_id}-SC"), args.seed + 1)
            result["statements_per_commit"] = counted["statements"]
            if args.profile:
                prof = profile(Sales(runtime, shop, f"{run_id}-SP"), args.seed + 2, min(args.commits, 1_000))
                console.rule("SQLite profile (commit calls)")
                print(prof.pop("report"), flush=True)
                print_sql("SQLite", counted["sample"])
                result["profile"] = prof
            return result
        finally:
            runtime.dispose()


def bench_postgres(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liutong-bench-") as tmp:
        secret = secrets.token_hex(32)
        runtime = bootstrap(settings_for(args.pg_url, Path(tmp), max(8, args.clients), secret))
        try:
            fresh_schema(runtime.engine)
            console.print(f"[bold]PostgreSQL[/bold]: setting up the tenant and {args.members:,} members …")
            shop = build_shop(runtime, args.members, run_id, args.seed)
            console.print(f"PostgreSQL: setup {shop.setup_s:.1f}s; selling for {args.seconds}s "
                          f"with {args.clients} client processes …")
            tally, wall, cpu, rate, client_rss = run_processes(args.pg_url, secret, shop, args.clients,
                                                               f"{run_id}-P", args.seed, args.seconds)
            result = figures(tally, wall, cpu, rate)
            result["clients"] = args.clients
            result["client_peak_rss_mb"] = client_rss
            result["setup_s"] = round(shop.setup_s, 2)
            result["members"] = len(shop.members)
            with runtime.engine.connect() as conn:
                result["server"] = conn.scalar(text("SHOW server_version"))
            result["invariants"] = check_invariants(runtime, shop.tenant_id)
            counted = census(Sales(runtime, shop, f"{run_id}-PC"), args.seed + 1)
            result["statements_per_commit"] = counted["statements"]
            result["round_trips_per_commit"] = counted["round_trips"]
            if args.profile:
                print_sql("PostgreSQL", counted["sample"])
            return result
        finally:
            runtime.dispose()


# --- report -------------------------------------------------------------------------------------


def summary(result: dict[str, Any]) -> None:
    title = "Checkout benchmark" + (f" ({result['revision']})" if result.get("revision") else "")
    table = Table(title=title, show_lines=False)
    table.add_column("Figure")
    table.add_column("Value", justify="right")
    table.add_column("Target", justify="right")
    table.add_column("", justify="center")

    def per_kind(counts: dict[str, float]) -> str:
        return " / ".join(f"{counts.get(k, 0):.1f}" for k in ("guest", "earn", "points", "quote"))

    def common(label: str, r: dict[str, Any]) -> None:
        table.add_row(f"{label} sales/s, wall clock (quote + commit)", f"{r['sales_per_s_wall']:,.0f}", "", "")
        table.add_row(f"{label} commit latency p50 / p95 / p99 (ms)",
                      f"{r['p50_ms']:.2f} / {r['p95_ms']:.2f} / {r['p99_ms']:.2f}", "", "")
        table.add_row(f"{label} quote latency p50 / p95 (ms)", f"{r['quote_p50_ms']:.2f} / {r['quote_p95_ms']:.2f}",
                      "", "")
        table.add_row(f"{label} commits (guest / earn only / with points)",
                      f"{r['guests']:,} / {r['earn_only']:,} / {r['with_points']:,} ({r['points_share']:.0%})", "", "")
        table.add_row(f"{label} statements per commit (guest / earn / points / quote)",
                      per_kind(r["statements_per_commit"]), "", "")
        if r.get("round_trips_per_commit"):
            table.add_row(f"{label} round trips (guest / earn / points / quote)", per_kind(r["round_trips_per_commit"]),
                          "", "")
        table.add_row(f"{label} client CPU per commit (per sale)",
                      f"{r['client_cpu_ms_per_commit']:.2f} ms ({r['client_cpu_ms_per_sale']:.2f} ms, "
                      f"{r['client_cpu_cores']:.2f} cores busy)", "", "")
        refused = sum(r["refused"].values())
        table.add_row(f"{label} business refusals", str(refused) + (f" {r['refused']}" if refused else ""), "0",
                      verdict(refused == 0))
        inv = r["invariants"]
        table.add_row(f"{label} ledger invariants after the run",
                      f"{inv['checks'] - len(inv['broken'])} of {inv['checks']} held", "all", verdict(inv["held"]))

    lite = result.get("sqlite")
    if lite:
        cps = lite["commits_per_s"]
        table.add_row("SQLite commits/s (1 client)", f"{cps:,.0f}", f"≥ {SQLITE_TARGET_CPS:,.0f}",
                      verdict(cps >= SQLITE_TARGET_CPS))
        common("SQLite", lite)
        table.add_row("Peak RSS after SQLite run (MB)", f"{lite['peak_rss_mb']:,.1f}", "", "")
    pg = result.get("postgres")
    bench = result.get("pgbench")
    if pg:
        ratio = result.get("ratio")
        table.add_row(f"PostgreSQL commits/s ({pg['clients']} client processes)", f"{pg['commits_per_s']:,.0f}",
                      f"≥ {PG_TARGET_RATIO}× pgbench" + (f" = {PG_TARGET_RATIO * bench['tps']:,.0f}" if bench else ""),
                      verdict(None if ratio is None else ratio >= PG_TARGET_RATIO))
        common("PostgreSQL", pg)
        table.add_row("Deadlocks / serialization failures", f"{pg['deadlocks']} / {pg['serialization_failures']}",
                      "0 / 0", verdict(pg["deadlocks"] == 0 and pg["serialization_failures"] == 0))
        table.add_row("Other database errors", str(pg["other_errors"]), "0", verdict(pg["other_errors"] == 0))
        table.add_row("Peak RSS of a PostgreSQL client process (MB)", f"{pg['client_peak_rss_mb']:,.1f}", "", "")
    if bench:
        table.add_row(f"pgbench TPC-B tps (scale {bench['scale']}, {bench['clients']} clients)",
                      f"{bench['tps']:,.0f}", "", "")
    if result.get("ratio") is not None:
        table.add_row("Checkout commits/s ÷ pgbench tps", f"{result['ratio']:.3f}×", f"≥ {PG_TARGET_RATIO}×",
                      verdict(result["ratio"] >= PG_TARGET_RATIO))
        table.add_row("Wall-clock sales/s ÷ pgbench tps", f"{result['ratio_wall']:.3f}×", "", "")
    table.add_row("Peak RSS, main process, whole run (MB)", f"{result['peak_rss_mb']:,.1f}", "", "")
    console.print(table)
    for name in ("sqlite", "postgres"):
        r = result.get(name) or {}
        for sample in r.get("error_samples", []):
            console.print(f"[red]{name} error:[/red] {sample}", markup=True)
        for check, violations in (r.get("invariants") or {}).get("broken", {}).items():
            console.print(f"[red]{name} invariant broken:[/red] {check}: {violations}", markup=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=3_000, help="sales committed in the SQLite run (default 3000)")
    common_arguments(parser, what="checkout", default_seconds=20, default_pg_url=DEFAULT_PG_URL,
                     default_seed=20_241_124)
    parser.add_argument("--profile", action="store_true",
                        help="also profile the SQLite commits (cProfile) and print the SQL of a quote and of "
                             "each kind of commit")
    args = parser.parse_args(argv)

    run_id = secrets.token_hex(4)
    result: dict[str, Any] = {
        "run": run_id, "revision": revision(), "members": args.members,
        "mix": {"guest_share": GUEST_SHARE, "points_share": POINTS_SHARE, "funded_share": FUNDED_SHARE,
                "basket_lines": [1, 4], "merchants": [o.code for o in OUTLETS]},
        "targets": {"sqlite_commits_per_s": SQLITE_TARGET_CPS, "pg_vs_pgbench_ratio": PG_TARGET_RATIO},
    }
    result["sqlite"] = bench_sqlite(args, run_id)

    result["postgres"], result["pgbench"] = postgres_with_baseline(
        args, what="checkout", default_database="liutong_bench_checkout", run=lambda: bench_postgres(args, run_id))
    if result.get("postgres") and result.get("pgbench"):
        result["ratio"] = round(result["postgres"]["commits_per_s"] / result["pgbench"]["tps"], 3)
        result["ratio_wall"] = round(result["postgres"]["sales_per_s_wall"] / result["pgbench"]["tps"], 3)
    else:
        result["ratio"] = result["ratio_wall"] = None
    result["peak_rss_mb"] = peak_rss_mb()

    summary(result)
    print("RESULT " + json.dumps(result, ensure_ascii=False, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
