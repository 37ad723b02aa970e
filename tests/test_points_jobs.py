"""The nightly points runs as operators rely on them: points lapse at local midnight into the
issuers' breakage, pending points vest after their refund window, members are reminded before
their points lapse — for every member, set-wise, once, and again after a crash only where it
stopped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from liutong.jobs import service as jobs
from liutong.jobs.models import Job, OutboxEvent
from liutong.jobs.worker import Worker
from liutong.kit.idempotency import system_key
from liutong.ledger import batch, queries, tasks
from liutong.ledger import service as ledger
from liutong.ledger.models import (
    Account,
    ExpiryReminder,
    JournalEntry,
    LotMovement,
    PointsLot,
    Posting,
)
from liutong.ledger.verify import verify
from tests.conftest import build_world, key, register

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = date(2027, 1, 11)
MIDNIGHT = datetime(2027, 1, 11, tzinfo=SHANGHAI)  # 2027-01-10 16:00 UTC
EARNED = datetime(2026, 1, 10, 15, 0, tzinfo=SHANGHAI)  # a year before the afternoon the points lapse


class Rollback(Exception):
    """Leaves a unit of work without committing it (to compare two ways of doing one thing)."""


@pytest.fixture(autouse=True)
def _just_after_midnight(runtime):
    runtime.clock = lambda: MIDNIGHT + timedelta(minutes=1)


def _earn(tx, world, member_id, points, *, expires_at, issuer=None, at=EARNED, vests_at=None):
    return ledger.earn_points(tx, tenant_id=world.tenant_id, member_id=member_id,
                              issuer_entity_id=issuer or world.park_entity, points=points, key=key(),
                              effective_at=at, expires_at=expires_at, vests_at=vests_at)


def _members(tx, world, n, first=13500000000):
    return [register(tx, world, str(first + i)).id for i in range(n)]


def _night(runtime, kinds=tasks.KINDS) -> int:
    """Run every due points job, as a worker would overnight; returns how many ran."""
    ran = 0
    while taken := jobs.run_due(runtime, worker_id="night", kinds=kinds, now=runtime.clock()):
        ran += taken
    return ran


def _schedule(runtime, world, day=NIGHT):
    with runtime.transaction() as tx:
        return tasks.schedule_day(tx, tenant_id=world.tenant_id, day=day, tz=SHANGHAI)


def _entries(tx, world, kind):
    return tx.session.execute(
        select(JournalEntry).where(JournalEntry.tenant_id == world.tenant_id, JournalEntry.kind == kind)
        .order_by(JournalEntry.member_id)
    ).scalars().all()


def _assert_invariants(runtime, world):
    with runtime.transaction() as tx:
        broken = [(c.name, c.violations) for c in verify(tx.session, world.tenant_id) if not c.ok]
    assert not broken


def _entity_account(tx, world, entity_id, kind):
    return tx.session.scalar(select(Account.id).where(
        Account.tenant_id == world.tenant_id, Account.owner_type == "entity", Account.owner_id == entity_id,
        Account.kind == kind))


# --- expiry ---------------------------------------------------------------------------------------


def test_points_earned_a_year_ago_expire_at_midnight_and_go_to_the_issuers_breakage(runtime, world):
    lapse = datetime(2027, 1, 10, 15, 0, tzinfo=SHANGHAI)
    with runtime.transaction() as tx:
        m = register(tx, world, "13500000001").id
        park = _earn(tx, world, m, 500, expires_at=lapse)
        hotel = _earn(tx, world, m, 200, expires_at=lapse, issuer=world.hotel_entity)
        _earn(tx, world, m, 100, expires_at=datetime(2027, 1, 11, 15, 0, tzinfo=SHANGHAI))  # lapses tonight: tomorrow
    _schedule(runtime, world)

    assert _night(runtime) >= 3
    with runtime.transaction() as tx:
        [entry] = _entries(tx, world, "expire")
        assert entry.member_id == m
        assert entry.effective_at == MIDNIGHT.astimezone(UTC), "dated at the local midnight of the run"
        assert entry.idempotency_key == system_key("expire", m, MIDNIGHT.isoformat())
        postings = tx.session.execute(
            select(Posting.account_id, Posting.amount, Posting.balance_after)
            .where(Posting.entry_id == entry.id).order_by(Posting.id)).all()
        park_breakage = _entity_account(tx, world, world.park_entity, "points_expired")
        hotel_breakage = _entity_account(tx, world, world.hotel_entity, "points_expired")
        assert [(a, n, b) for a, n, b in postings[1:]] == [(park_breakage, 500, None), (hotel_breakage, 200, None)]
        assert (postings[0].amount, postings[0].balance_after) == (-700, 100)
        assert queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 100
        lots = {lot.id: (lot.status, lot.remaining) for lot in queries.lots(tx, tenant_id=world.tenant_id,
                                                                             member_id=m, open_only=False)}
        assert lots[park.lots[0].lot_id] == lots[hotel.lots[0].lot_id] == ("expired", 0)
        moved = tx.session.execute(select(LotMovement.lot_id, LotMovement.amount, LotMovement.kind)
                                   .where(LotMovement.entry_id == entry.id).order_by(LotMovement.lot_id)).all()
        assert moved == [(park.lots[0].lot_id, -500, "expire"), (hotel.lots[0].lot_id, -200, "expire")]
    _assert_invariants(runtime, world)


def test_rerunning_the_expiry_job_posts_nothing(runtime, world):
    with runtime.transaction() as tx:
        members = _members(tx, world, 7)
        for m in members:
            _earn(tx, world, m, 300, expires_at=MIDNIGHT - timedelta(days=1))
    _schedule(runtime, world)
    _night(runtime)
    # an operator runs the same night again, through a job scheduled by hand and at the command line
    with runtime.transaction() as tx:
        jobs.enqueue(tx, kind=tasks.EXPIRE, payload={"tenant_id": world.tenant_id, "day": NIGHT.isoformat(),
                                                     "chunk": 3}, tenant_id=world.tenant_id)
    _night(runtime)
    with runtime.transaction() as tx:
        assert ledger.expire_due_points(tx, tenant_id=world.tenant_id, as_of=MIDNIGHT) == 0
        assert len(_entries(tx, world, "expire")) == 7
        assert batch.expire_chunk(tx, tenant_id=world.tenant_id, as_of=MIDNIGHT) == batch.Chunk(after=None)
    _assert_invariants(runtime, world)


def test_a_crash_after_the_first_chunk_resumes_where_it_stopped(runtime, world, monkeypatch):
    with runtime.transaction() as tx:
        members = _members(tx, world, 5)
        for m in members:
            _earn(tx, world, m, 100, expires_at=MIDNIGHT - timedelta(hours=2))
        jobs.enqueue(tx, kind=tasks.EXPIRE, tenant_id=world.tenant_id,
                     payload={"tenant_id": world.tenant_id, "day": NIGHT.isoformat(), "chunk": 2, "parts": 1})

    class WorkerCrashed(BaseException):
        """The process dies in the middle of a chunk: nothing in the worker catches it."""

    real, calls = batch.expire_chunk, []

    def crash_on_second_chunk(tx, **kwargs):
        calls.append(kwargs["after"])
        done = real(tx, **kwargs)  # the chunk's work is done …
        if len(calls) == 2:
            raise WorkerCrashed()  # … and lost with the process before it commits
        return done

    monkeypatch.setattr(batch, "expire_chunk", crash_on_second_chunk)
    now = runtime.clock()
    assert jobs.run_due(runtime, worker_id="w1", kinds=[tasks.EXPIRE], now=now, limit=2) == 2  # opens, 1st chunk
    with pytest.raises(WorkerCrashed):
        jobs.run_due(runtime, worker_id="w1", kinds=[tasks.EXPIRE], now=now, limit=1)
    with runtime.transaction() as tx:
        assert [e.member_id for e in _entries(tx, world, "expire")] == members[:2], "the first chunk committed"

    # another worker takes the lost chunk over when its lease runs out, and finishes the run
    while jobs.run_due(runtime, worker_id="w2", kinds=[tasks.EXPIRE], now=now + jobs.LEASE):
        pass
    assert calls == [members[0] - 1, members[1], members[1], members[3]], "the lost chunk ran again, then the last"
    with runtime.transaction() as tx:
        assert [e.member_id for e in _entries(tx, world, "expire")] == members
        chain = tx.session.execute(select(Job.status, Job.attempts).where(
            Job.kind == tasks.EXPIRE, Job.tenant_id == world.tenant_id).order_by(Job.id)).all()
    assert [s for s, _ in chain if s != "queued"] == ["done"] * 4
    assert [a for s, a in chain if s == "done"] == [1, 1, 2, 1], "only the crashed chunk was attempted twice"
    _assert_invariants(runtime, world)


def test_a_chain_of_chunks_covers_every_member_once(runtime, world):
    with runtime.transaction() as tx:
        members = _members(tx, world, 11)
        for i, m in enumerate(members):
            if i % 4 != 3:  # some members have nothing due
                _earn(tx, world, m, 10 + i, expires_at=MIDNIGHT - timedelta(days=i))
            _earn(tx, world, m, 50, expires_at=MIDNIGHT + timedelta(days=40))
        jobs.enqueue(tx, kind=tasks.EXPIRE, tenant_id=world.tenant_id,
                     payload={"tenant_id": world.tenant_id, "day": NIGHT.isoformat(), "chunk": 3, "parts": 1})
    _night(runtime, kinds=[tasks.EXPIRE])
    with runtime.transaction() as tx:
        expired = [e.member_id for e in _entries(tx, world, "expire")]
        assert expired == [m for i, m in enumerate(members) if i % 4 != 3]
        assert all(queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 50 for m in members)
        last = tx.session.execute(select(Job.payload).where(Job.kind == tasks.EXPIRE, Job.tenant_id == world.tenant_id)
                                  .order_by(Job.id.desc()).limit(1)).scalar_one()
    # nine members due, three a chunk: the fourth job finds the walk over; its payload adds up the first three
    assert (last["members"], last["points"], last["chunks"]) == (9, sum(10 + i for i in range(11) if i % 4 != 3), 3)
    _assert_invariants(runtime, world)


def test_a_night_split_in_parts_for_several_workers_posts_each_member_once(runtime, world):
    with runtime.transaction() as tx:
        members = _members(tx, world, 10)
        for m in members:
            _earn(tx, world, m, 25, expires_at=MIDNIGHT - timedelta(hours=5))
        jobs.enqueue(tx, kind=tasks.EXPIRE, tenant_id=world.tenant_id,
                     payload={"tenant_id": world.tenant_id, "day": NIGHT.isoformat(), "chunk": 2, "parts": 3})
    for worker in ("w1", "w2"):  # two workers take turns
        jobs.run_due(runtime, worker_id=worker, kinds=[tasks.EXPIRE], now=runtime.clock(), limit=3)
    _night(runtime, kinds=[tasks.EXPIRE])
    with runtime.transaction() as tx:
        assert [e.member_id for e in _entries(tx, world, "expire")] == members
        chains = {(p["from"], p["until"]) for p in tx.session.scalars(select(Job.payload).where(
            Job.kind == tasks.EXPIRE, Job.tenant_id == world.tenant_id)) if "until" in p}
    assert chains == set(tasks.parts_of((members[0], members[-1]), 3)) and len(chains) == 3
    _assert_invariants(runtime, world)


def test_member_ranges_split_evenly_and_cover_every_id_once():
    assert tasks.parts_of((1, 10), 3) == [(0, 4), (4, 8), (8, 10)]
    assert tasks.parts_of((7, 7), 4) == [(6, 7)]
    covered = [i for after, until in tasks.parts_of((100, 1_234), 4) for i in range(after + 1, until + 1)]
    assert covered == list(range(100, 1_235))


def test_frozen_members_points_lapse_too(runtime, world):
    from liutong.members.models import Member

    with runtime.transaction() as tx:
        m = register(tx, world, "13500000002").id
        _earn(tx, world, m, 80, expires_at=MIDNIGHT - timedelta(hours=1))
        tx.session.get(Member, m).status = "frozen"
    with runtime.transaction() as tx:
        assert ledger.expire_due_points(tx, tenant_id=world.tenant_id, as_of=MIDNIGHT) == 1
        assert queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 0


# --- vesting --------------------------------------------------------------------------------------


def test_pending_points_vest_at_the_first_midnight_after_their_refund_window(runtime, world):
    with runtime.transaction() as tx:
        ready, waiting = _members(tx, world, 2)
        _earn(tx, world, ready, 800, at=MIDNIGHT - timedelta(days=8), vests_at=MIDNIGHT - timedelta(days=1),
              expires_at=MIDNIGHT + timedelta(days=300), issuer=world.hotel_entity)
        _earn(tx, world, ready, 200, at=MIDNIGHT - timedelta(days=8), vests_at=MIDNIGHT - timedelta(hours=3),
              expires_at=MIDNIGHT + timedelta(days=300))
        _earn(tx, world, waiting, 300, at=MIDNIGHT - timedelta(days=2), vests_at=MIDNIGHT + timedelta(days=5),
              expires_at=MIDNIGHT + timedelta(days=300))
    _schedule(runtime, world)
    _night(runtime)
    with runtime.transaction() as tx:
        [entry] = _entries(tx, world, "vest")
        assert (entry.member_id, entry.idempotency_key) == (ready, system_key("vest", ready, MIDNIGHT.isoformat()))
        legs = tx.session.execute(select(Account.kind, Posting.amount, Posting.balance_after)
                                  .join(Account, Account.id == Posting.account_id)
                                  .where(Posting.entry_id == entry.id).order_by(Posting.id)).all()
        assert legs == [("points_pending", -1000, 0), ("points", 1000, 1000)]
        b = queries.balances(tx, tenant_id=world.tenant_id, member_id=ready)
        assert (b.points, b.points_pending) == (1000, 0)
        b = queries.balances(tx, tenant_id=world.tenant_id, member_id=waiting)
        assert (b.points, b.points_pending) == (0, 300)
        ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=ready, points=1000, key=key())
    _assert_invariants(runtime, world)


# --- the same entries as member by member ---------------------------------------------------------


def _snapshot(tx, world, members):
    """Everything expiry and vesting write for ``members``, without the ids that depend on order."""
    accounts = {a.id: (a.owner_type, a.owner_id, a.kind) for a in tx.session.scalars(
        select(Account).where(Account.tenant_id == world.tenant_id))}
    entries = tx.session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == world.tenant_id, JournalEntry.member_id.in_(members),
        JournalEntry.kind.in_(["expire", "vest"]))).all()
    keyed = {e.id: e.idempotency_key for e in entries}
    out = {}
    for e in entries:
        postings = tx.session.execute(select(Posting.account_id, Posting.asset, Posting.amount, Posting.balance_after)
                                      .where(Posting.entry_id == e.id).order_by(Posting.id)).all()
        out[e.idempotency_key] = (e.kind, e.member_id, e.effective_at, e.recorded_at, e.memo, e.ref, e.reverses_id,
                                  [(accounts[a], s, n, b) for a, s, n, b in postings])
    lots = tx.session.execute(select(PointsLot.id, PointsLot.status, PointsLot.remaining, PointsLot.account_id)
                              .where(PointsLot.member_id.in_(members)).order_by(PointsLot.id)).all()
    moves = tx.session.execute(select(LotMovement.lot_id, LotMovement.entry_id, LotMovement.amount, LotMovement.kind)
                               .where(LotMovement.entry_id.in_(keyed)).order_by(LotMovement.id)).all()
    balances = sorted((accounts[a.id], a.balance) for a in tx.session.scalars(
        select(Account).where(Account.tenant_id == world.tenant_id, Account.owner_type == "member",
                              Account.owner_id.in_(members))))
    return (out, [(i, s, r, accounts[a]) for i, s, r, a in lots],
            [(lot, keyed[e], n, k) for lot, e, n, k in moves], balances)


def _member_by_member(runtime, world, members, as_of):
    with pytest.raises(Rollback), runtime.transaction() as tx:
        for m in members:
            ledger.vest_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=as_of,
                               key=system_key("vest", m, as_of.isoformat()))
        for m in members:
            ledger.expire_points(tx, tenant_id=world.tenant_id, member_id=m, as_of=as_of,
                                 key=system_key("expire", m, as_of.isoformat()))
        seen = _snapshot(tx, world, members)
        raise Rollback
    return seen


def _set_wise(runtime, world, members, as_of, chunk):
    with pytest.raises(Rollback), runtime.transaction() as tx:
        batch.vest_due(tx, tenant_id=world.tenant_id, as_of=as_of, members=chunk)
        batch.expire_due(tx, tenant_id=world.tenant_id, as_of=as_of, members=chunk)
        seen = _snapshot(tx, world, members)
        raise Rollback
    return seen


def test_the_nightly_run_posts_exactly_what_member_by_member_expiry_and_vesting_post(runtime, world):
    with runtime.transaction() as tx:
        a, b, c, d = _members(tx, world, 4)
        for issuer in (world.mall_entity, world.park_entity, world.hotel_entity):
            _earn(tx, world, a, 100, expires_at=MIDNIGHT - timedelta(days=2), issuer=issuer)
        _earn(tx, world, a, 40, expires_at=MIDNIGHT + timedelta(days=2))
        _earn(tx, world, b, 500, expires_at=MIDNIGHT - timedelta(hours=1))
        _earn(tx, world, b, 500, expires_at=MIDNIGHT + timedelta(days=9))
        # spent from last winter on: 300 of the lot that lapses tonight
        ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=b, points=300, key=key(), effective_at=EARNED)
        _earn(tx, world, c, 70, at=MIDNIGHT - timedelta(days=3), vests_at=MIDNIGHT - timedelta(days=1),
              expires_at=MIDNIGHT + timedelta(days=90))
        _earn(tx, world, c, 30, at=MIDNIGHT - timedelta(days=3), vests_at=MIDNIGHT + timedelta(days=1),
              expires_at=MIDNIGHT + timedelta(days=90))
        _earn(tx, world, d, 60, expires_at=MIDNIGHT + timedelta(days=1))
    expected = _member_by_member(runtime, world, [a, b, c, d], MIDNIGHT)
    assert len(expected[0]) == 3, "a and b expire, c vests, d has nothing due"
    for chunk in (1, 2, 5000):
        assert _set_wise(runtime, world, [a, b, c, d], MIDNIGHT, chunk) == expected


# --- reminders ------------------------------------------------------------------------------------


def _expiring_events(tx, world):
    return [e.payload for e in tx.session.scalars(
        select(OutboxEvent).where(OutboxEvent.tenant_id == world.tenant_id, OutboxEvent.topic == "points_expiring")
        .order_by(OutboxEvent.id))]


def test_members_are_reminded_thirty_and_seven_days_before_once_each(runtime, world):
    lapse = datetime(2027, 2, 10, 18, 30, tzinfo=SHANGHAI)  # 10 February, local
    with runtime.transaction() as tx:
        ada, bo, cai = _members(tx, world, 3)
        _earn(tx, world, ada, 300, expires_at=lapse)
        _earn(tx, world, ada, 200, expires_at=lapse.replace(hour=9), issuer=world.mall_entity)
        _earn(tx, world, ada, 999, expires_at=lapse + timedelta(days=1))  # another day: another reminder
        _earn(tx, world, bo, 120, expires_at=lapse - timedelta(days=23))  # 18 January: 7 days after the 11th
        _earn(tx, world, cai, 50, expires_at=lapse + timedelta(days=5))  # not tonight
    events = []
    for day in (NIGHT, NIGHT, NIGHT + timedelta(days=1), date(2027, 2, 3), date(2027, 2, 3)):
        runtime.clock = lambda day=day: datetime(day.year, day.month, day.day, 0, 1, tzinfo=SHANGHAI)
        with runtime.transaction() as tx:
            tasks.schedule_day(tx, tenant_id=world.tenant_id, day=day, tz=SHANGHAI, kinds=(tasks.REMIND,))
        _night(runtime, kinds=[tasks.REMIND])
        with runtime.transaction() as tx:  # an operator reruns it by hand too
            batch.remind_due(tx, tenant_id=world.tenant_id, on=day, days_before=[30, 7], tz=SHANGHAI, members=1)
            events = _expiring_events(tx, world)
    assert events == [
        {"member_id": ada, "points": 500, "expires_on": "2027-02-10", "days_before": 30},
        {"member_id": bo, "points": 120, "expires_on": "2027-01-18", "days_before": 7},
        {"member_id": ada, "points": 999, "expires_on": "2027-02-11", "days_before": 30},
        # the nights between 12 January and 3 February were caught up in order: 16 January told cai
        {"member_id": cai, "points": 50, "expires_on": "2027-02-15", "days_before": 30},
        {"member_id": ada, "points": 500, "expires_on": "2027-02-10", "days_before": 7},
    ]
    with runtime.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(ExpiryReminder)
                                 .where(ExpiryReminder.tenant_id == world.tenant_id)) == 5


def test_spent_points_and_closed_members_are_not_announced(runtime, world):
    from liutong.members.models import Member

    lapse = datetime(2027, 2, 10, 12, 0, tzinfo=SHANGHAI)
    with runtime.transaction() as tx:
        spender, closed = _members(tx, world, 2)
        _earn(tx, world, spender, 300, expires_at=lapse)
        ledger.spend_points(tx, tenant_id=world.tenant_id, member_id=spender, points=260, key=key())
        _earn(tx, world, closed, 300, expires_at=lapse)
        tx.session.get(Member, closed).status = "closed"
    with runtime.transaction() as tx:
        batch.remind_due(tx, tenant_id=world.tenant_id, on=NIGHT, days_before=[30], tz=SHANGHAI)
        assert _expiring_events(tx, world) == [
            {"member_id": spender, "points": 40, "expires_on": "2027-02-10", "days_before": 30}]


# --- scheduling -----------------------------------------------------------------------------------


def test_each_tenant_gets_one_run_per_local_midnight_however_many_workers_start(runtime, world):
    from liutong.organisation import service as org
    from liutong.organisation.schemas import TenantCreate

    with runtime.transaction() as tx:
        tokyo = org.create_tenant(tx, data=TenantCreate(code=f"tokyo-{key()}", name="東京", timezone="Asia/Tokyo"),
                                  key=key()).id
    for _ in range(2):  # two workers start
        Worker(runtime, worker_id="w").schedule()
    with runtime.transaction() as tx:
        runs = tx.session.execute(select(Job.tenant_id, Job.kind, Job.run_at).where(
            Job.tenant_id.in_([world.tenant_id, tokyo]), Job.kind.in_(tasks.KINDS)).order_by(Job.id)).all()
    assert len(runs) == 12, "three kinds, today and tomorrow, two tenants, once each"
    assert {r.run_at for r in runs if r.tenant_id == world.tenant_id} == {
        MIDNIGHT.astimezone(UTC), (MIDNIGHT + timedelta(days=1)).astimezone(UTC)}
    tokyo_midnight = datetime(2027, 1, 11, tzinfo=ZoneInfo("Asia/Tokyo"))  # its "today" at 00:01 in Shanghai
    assert {r.run_at for r in runs if r.tenant_id == tokyo} == {
        tokyo_midnight.astimezone(UTC), (tokyo_midnight + timedelta(days=1)).astimezone(UTC)}


def test_a_night_schedules_the_next_one_and_the_worker_knows_the_points_jobs(runtime, world):
    assert set(tasks.KINDS) <= set(jobs._HANDLERS), "importing the worker registers the points handlers"
    _schedule(runtime, world)
    _night(runtime)
    runtime.clock = lambda: MIDNIGHT + timedelta(days=1, minutes=1)
    assert _night(runtime) == 3, "tomorrow's runs were scheduled by tonight's"
    with runtime.transaction() as tx:
        days = tx.session.execute(select(Job.payload).where(
            Job.tenant_id == world.tenant_id, Job.kind == tasks.EXPIRE)).scalars().all()
    assert sorted(p["day"] for p in days) == ["2027-01-11", "2027-01-12", "2027-01-13"]


# --- the command line -----------------------------------------------------------------------------


def test_an_operator_expires_and_vests_from_the_command_line_and_a_second_run_posts_nothing(tmp_path, monkeypatch):
    from liutong.bootstrap import bootstrap
    from liutong.cli import app
    from liutong.config import Settings

    db = tmp_path / "points.db"
    monkeypatch.setenv("LIUTONG_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("LIUTONG_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    runtime = bootstrap(Settings(database_url=f"sqlite:///{db}", data_dir=tmp_path))
    with runtime.transaction() as tx:
        world = build_world(tx)
        members = _members(tx, world, 3)
        for m in members:
            _earn(tx, world, m, 100, expires_at=MIDNIGHT - timedelta(days=1))
            _earn(tx, world, m, 10, at=MIDNIGHT - timedelta(days=9), vests_at=MIDNIGHT - timedelta(days=2),
                  expires_at=MIDNIGHT + timedelta(days=100))

    for _ in range(2):
        result = runner.invoke(app, ["points", "expire", "--as-of", "2027-01-11", "--chunk", "2"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["points", "vest", "--as-of", "2027-01-11", "--tenant", str(world.tenant_id)])
        assert result.exit_code == 0, result.output
    assert "积分解冻 / points vested" in result.output
    with runtime.transaction() as tx:
        assert len(_entries(tx, world, "expire")) == len(_entries(tx, world, "vest")) == 3
        assert {e.idempotency_key for e in _entries(tx, world, "expire")} == {
            system_key("expire", m, MIDNIGHT.isoformat()) for m in members}, "the keys tonight's job would use"
        assert all(queries.balances(tx, tenant_id=world.tenant_id, member_id=m).points == 10 for m in members)
        broken = [c.name for c in verify(tx.session, world.tenant_id) if not c.ok]
    assert not broken
    runtime.dispose()
