"""Background work as the business relies on it: what follows a purchase is scheduled in the
purchase's own transaction, runs once whichever worker gets to it, is retried when it fails,
and events reach their subscribers in order."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from liutong.bootstrap import utc_now
from liutong.errors import MemberNotFound
from liutong.jobs import service as jobs
from liutong.jobs.models import Job, OutboxEvent
from liutong.jobs.worker import Worker

TENANT = 7  # jobs and events carry a tenant id but no foreign key


def unique(name: str) -> str:
    """Kinds and topics per test: the PostgreSQL test database is shared by the whole suite."""
    return f"{name}-{secrets.token_hex(4)}"


def recording_handler(kind: str) -> list[dict]:
    calls: list[dict] = []
    jobs.handler(kind)(lambda _tx, payload: calls.append(payload))
    return calls


def load(runtime, job_id: int) -> Job:
    with runtime.transaction() as tx:
        return tx.session.get(Job, job_id)


def schedule(runtime, **kwargs) -> int:
    with runtime.transaction() as tx:
        return jobs.enqueue(tx, **kwargs)


class WorkerCrashed(BaseException):
    """Stands for the process dying mid-job: nothing in the worker catches it."""


# --- jobs ------------------------------------------------------------------------------------


def test_a_job_scheduled_in_a_purchase_that_rolls_back_never_runs(runtime):
    kind = unique("welcome-journey")
    calls = recording_handler(kind)
    with pytest.raises(RuntimeError), runtime.transaction() as tx:
        jobs.enqueue(tx, kind=kind, payload={"member_id": 1}, tenant_id=TENANT)
        raise RuntimeError("the purchase failed after scheduling its journey")

    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=utc_now() + timedelta(days=1)) == 0
    assert calls == []
    with runtime.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind)) == 0


def test_a_committed_job_runs_once_when_due_and_is_done(runtime):
    kind = unique("birthday-gift")
    calls = recording_handler(kind)
    now = utc_now()
    job_id = schedule(runtime, kind=kind, payload={"member_id": 42}, tenant_id=TENANT, run_at=now + timedelta(hours=1))

    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=now) == 0, "not due yet"
    assert calls == []
    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=now + timedelta(hours=1)) == 1
    assert calls == [{"member_id": 42}]
    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=now + timedelta(days=1)) == 0
    assert calls == [{"member_id": 42}], "a done job never runs again"

    job = load(runtime, job_id)
    assert (job.status, job.attempts, job.locked_by, job.locked_until) == ("done", 1, None, None)
    assert job.finished_at == now + timedelta(hours=1)
    assert job.tenant_id == TENANT


def test_a_handlers_writes_commit_with_its_job_and_roll_back_when_it_fails(runtime):
    kind, topic = unique("points-earned-message"), unique("message-sent")
    attempts = []

    @jobs.handler(kind)
    def send(tx, payload):
        attempts.append(payload)
        jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"try": len(attempts)})
        if len(attempts) == 1:
            raise RuntimeError("SMS gateway timed out")

    schedule(runtime, kind=kind, payload={"member_id": 5})
    now = utc_now()
    jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=now)
    jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=now + jobs.backoff(1))
    assert len(attempts) == 2
    with runtime.transaction() as tx:
        written = tx.session.scalars(select(OutboxEvent.payload).where(OutboxEvent.topic == topic)).all()
    assert written == [{"try": 2}], "the failed attempt's write was rolled back"


def test_a_failing_job_is_retried_with_growing_waits_then_marked_failed(runtime):
    kind = unique("tier-review")
    calls = []

    @jobs.handler(kind)
    def review(_tx, payload):
        calls.append(payload)
        raise MemberNotFound()

    job_id = schedule(runtime, kind=kind, payload={"member_id": 9}, max_attempts=3)
    t0 = utc_now()

    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=t0) == 1
    job = load(runtime, job_id)
    assert (job.status, job.attempts, job.locked_by) == ("queued", 1, None)
    assert job.run_at == t0 + timedelta(seconds=30)
    assert job.last_error.startswith("member_not_found")

    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=t0 + timedelta(seconds=29)) == 0, "still waiting"
    t1 = t0 + timedelta(seconds=30)
    assert jobs.run_due(runtime, worker_id="w2", kinds=[kind], now=t1) == 1
    job = load(runtime, job_id)
    assert (job.status, job.attempts, job.run_at) == ("queued", 2, t1 + timedelta(seconds=60)), "the wait doubles"

    t2 = t1 + timedelta(seconds=60)
    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=t2) == 1
    job = load(runtime, job_id)
    assert (job.status, job.attempts, job.finished_at) == ("failed", 3, t2)
    assert jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=t2 + timedelta(days=1)) == 0
    assert len(calls) == 3


def test_a_job_that_fails_once_succeeds_on_its_retry(runtime):
    kind = unique("webhook")
    calls = []

    @jobs.handler(kind)
    def deliver(_tx, payload):
        calls.append(payload)
        if len(calls) == 1:
            raise ConnectionError("merchant endpoint refused the connection")

    job_id = schedule(runtime, kind=kind, payload={"event_id": 1})
    t0 = utc_now()
    jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=t0)
    jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=t0 + jobs.backoff(1))
    job = load(runtime, job_id)
    assert (job.status, job.attempts) == ("done", 2)
    assert "ConnectionError" in job.last_error, "the error it overcame is kept"
    assert jobs.backoff(30) == jobs.BACKOFF_CAP


def test_scheduling_the_same_logical_job_twice_is_a_no_op(runtime):
    kind = unique("birthday-gift")
    calls = recording_handler(kind)
    with runtime.transaction() as tx:
        first = jobs.enqueue(tx, kind=kind, payload={"member_id": 1}, dedupe_key="member:1:2026")
        assert first is not None
        assert jobs.enqueue(tx, kind=kind, payload={"member_id": 1}, dedupe_key="member:1:2026") is None
        assert jobs.enqueue(tx, kind=unique("other-kind"), payload={}, dedupe_key="member:1:2026") is not None
    jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=utc_now())
    with runtime.transaction() as tx:
        assert jobs.enqueue(tx, kind=kind, payload={"member_id": 1}, dedupe_key="member:1:2026") is None, (
            "still a no-op after the job ran"
        )
        assert tx.session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind)) == 1
    assert calls == [{"member_id": 1}]


def test_a_job_whose_worker_died_is_taken_over_when_its_lease_expires(runtime):
    kind = unique("settlement")
    calls = []

    @jobs.handler(kind)
    def settle(_tx, payload):
        calls.append(payload)
        if len(calls) == 1:
            raise WorkerCrashed()

    job_id = schedule(runtime, kind=kind, payload={"merchant_id": 3})
    t0 = utc_now()
    with pytest.raises(WorkerCrashed):
        jobs.run_due(runtime, worker_id="dead", kinds=[kind], now=t0)
    job = load(runtime, job_id)
    assert (job.status, job.locked_by, job.locked_until) == ("running", "dead", t0 + jobs.LEASE)

    assert jobs.run_due(runtime, worker_id="alive", kinds=[kind], now=t0 + jobs.LEASE - timedelta(seconds=1)) == 0, (
        "a lease still running is respected"
    )
    assert jobs.run_due(runtime, worker_id="alive", kinds=[kind], now=t0 + jobs.LEASE) == 1
    job = load(runtime, job_id)
    assert (job.status, job.attempts) == ("done", 2)
    assert len(calls) == 2


def test_a_job_that_keeps_killing_its_worker_is_given_up(runtime):
    kind = unique("poison")
    calls = []

    @jobs.handler(kind)
    def crash(_tx, payload):
        calls.append(payload)
        raise WorkerCrashed()

    job_id = schedule(runtime, kind=kind, payload={}, max_attempts=1)
    t0 = utc_now()
    with pytest.raises(WorkerCrashed):
        jobs.run_due(runtime, worker_id="w1", kinds=[kind], now=t0)
    assert jobs.run_due(runtime, worker_id="w2", kinds=[kind], now=t0 + jobs.LEASE) == 1
    job = load(runtime, job_id)
    assert (job.status, job.attempts, job.locked_by) == ("failed", 1, None)
    assert "lease expired" in job.last_error
    assert len(calls) == 1, "not run again"


def test_a_worker_leaves_jobs_it_has_no_handler_for(runtime):
    known, unknown = unique("known"), unique("from-a-newer-version")
    calls = recording_handler(known)
    unknown_id = schedule(runtime, kind=unknown, payload={})
    schedule(runtime, kind=known, payload={"n": 1})
    assert jobs.run_due(runtime, worker_id="w1", kinds=[known, unknown], now=utc_now()) == 1
    assert calls == [{"n": 1}]
    assert load(runtime, unknown_id).status == "queued"


# --- outbox ----------------------------------------------------------------------------------


def test_events_of_a_rolled_back_purchase_are_never_dispatched_and_committed_ones_arrive_in_order(runtime):
    topic = unique("purchase")
    seen = []
    jobs.subscriber(topic)(lambda _tx, event: seen.append((event.tenant_id, event.payload["order_id"])))

    with runtime.transaction() as tx:
        jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"order_id": 1})
    with pytest.raises(RuntimeError), runtime.transaction() as tx:
        jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"order_id": 2})
        raise RuntimeError("payment declined")
    with runtime.transaction() as tx:
        jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"order_id": 3})
        jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"order_id": 4})

    assert jobs.dispatch_outbox(runtime) == 3
    assert seen == [(TENANT, 1), (TENANT, 3), (TENANT, 4)]
    assert jobs.dispatch_outbox(runtime) == 0
    assert len(seen) == 3, "a dispatched event is not delivered again"
    with runtime.transaction() as tx:
        undispatched = tx.session.scalar(
            select(func.count()).select_from(OutboxEvent)
            .where(OutboxEvent.topic == topic, OutboxEvent.dispatched_at.is_(None)))
    assert undispatched == 0


def test_a_failing_subscriber_holds_back_its_own_topic_and_not_the_others(runtime):
    flaky, steady = unique("tier_changed"), unique("benefit_used")
    delivered: list[tuple[str, int]] = []
    outage = {"on": True}

    @jobs.subscriber(flaky)
    def notify_crm(tx, event):
        jobs.emit(tx, tenant_id=TENANT, topic=unique("side-effect"), payload={})  # rolled back on failure
        if outage["on"]:
            raise ConnectionError("CRM is down")
        delivered.append((flaky, event.payload["n"]))

    jobs.subscriber(steady)(lambda _tx, event: delivered.append((steady, event.payload["n"])))

    with runtime.transaction() as tx:
        for n, topic in enumerate([flaky, steady, flaky, steady]):
            jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"n": n})

    assert jobs.dispatch_outbox(runtime) == 2
    assert delivered == [(steady, 1), (steady, 3)]

    outage["on"] = False
    assert jobs.dispatch_outbox(runtime) == 2
    assert delivered[2:] == [(flaky, 0), (flaky, 2)], "the held-back topic resumes in order"


def test_a_worker_pass_delivers_an_event_and_runs_the_job_its_subscriber_schedules(runtime):
    topic, kind = unique("points_earned"), unique("points-message")
    calls = recording_handler(kind)

    @jobs.subscriber(topic)
    def schedule_message(tx, event):
        jobs.enqueue(tx, kind=kind, payload={"member_id": event.payload["member_id"]}, tenant_id=event.tenant_id,
                     dedupe_key=f"event:{event.id}")

    with runtime.transaction() as tx:
        jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"member_id": 11, "points": 120})

    assert Worker(runtime, worker_id="w1").run_once() >= 2
    assert calls == [{"member_id": 11}]


# --- the worker ------------------------------------------------------------------------------


def test_the_in_process_worker_thread_runs_committed_jobs_and_stops_cleanly(runtime):
    kind = unique("welcome-journey")
    ran = threading.Event()
    jobs.handler(kind)(lambda _tx, _payload: ran.set())
    job_id = schedule(runtime, kind=kind, payload={"member_id": 1})

    worker = Worker(runtime, worker_id="in-process", poll_seconds=0.05).start()
    try:
        assert ran.wait(10), "the background worker picked the job up"
    finally:
        worker.stop(timeout=10)
    assert worker.stopping
    assert not any(t.name.startswith("liutong-worker-in-process") for t in threading.enumerate())
    assert load(runtime, job_id).status == "done"


def test_the_worker_command_runs_one_pass(tmp_path, monkeypatch):
    from liutong.bootstrap import bootstrap
    from liutong.cli import app
    from liutong.config import Settings

    db = tmp_path / "worker.db"
    monkeypatch.setenv("LIUTONG_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("LIUTONG_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    kind = unique("expiry-reminder")
    calls = recording_handler(kind)
    runtime = bootstrap(Settings(database_url=f"sqlite:///{db}", data_dir=tmp_path))
    job_id = schedule(runtime, kind=kind, payload={"member_id": 3})

    result = runner.invoke(app, ["worker", "--once", "--worker-id", "cli"])
    assert result.exit_code == 0, result.output
    assert "handled 1" in result.output
    assert calls == [{"member_id": 3}]
    assert load(runtime, job_id).status == "done"
    runtime.dispose()


# --- several workers at once (PostgreSQL) -----------------------------------------------------


def _together(n: int, fn) -> None:
    barrier = threading.Barrier(n)

    def go(i: int) -> None:
        barrier.wait()
        fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        for f in [pool.submit(go, i) for i in range(n)]:
            f.result()


@pytest.mark.postgres
def test_concurrent_workers_run_each_of_200_jobs_exactly_once(committed_runtime):
    rt = committed_runtime
    kind, topic = unique("journey-step"), unique("journey-step-done")
    executions: Counter[int] = Counter()
    by_worker: Counter[str] = Counter()
    lock = threading.Lock()

    @jobs.handler(kind)
    def step(tx, payload):
        with lock:
            executions[payload["n"]] += 1
            by_worker[threading.current_thread().name] += 1
        jobs.emit(tx, tenant_id=TENANT, topic=topic, payload={"n": payload["n"]})

    with rt.transaction() as tx:
        for n in range(200):
            jobs.enqueue(tx, kind=kind, payload={"n": n}, tenant_id=TENANT)

    def work(i: int) -> None:
        while jobs.run_due(rt, worker_id=f"w{i}", kinds=[kind], limit=5):
            pass

    _together(4, work)

    assert sorted(executions) == list(range(200))
    assert set(executions.values()) == {1}, "no job ran twice"
    assert len(by_worker) > 1, "the work was shared"
    with rt.transaction() as tx:
        statuses = dict(tx.session.execute(
            select(Job.status, func.count()).where(Job.kind == kind).group_by(Job.status)).all())
        effects = tx.session.scalars(select(OutboxEvent.payload).where(OutboxEvent.topic == topic)).all()
    assert statuses == {"done": 200}
    assert sorted(e["n"] for e in effects) == list(range(200)), "each job's writes committed once"


@pytest.mark.postgres
def test_concurrent_dispatchers_deliver_each_event_once_and_each_topic_in_order(committed_runtime):
    rt = committed_runtime
    topics = [unique("purchase"), unique("points_earned")]
    seen: dict[str, list[int]] = {t: [] for t in topics}
    lock = threading.Lock()

    def record(_tx, event):
        with lock:
            seen[event.topic].append(event.id)
        time.sleep(0.0005)  # keep deliveries overlapping

    for t in topics:
        jobs.subscriber(t)(record)
    with rt.transaction() as tx:
        ids = {t: [] for t in topics}
        for n in range(200):
            t = topics[n % 3 == 0]
            ids[t].append(jobs.emit(tx, tenant_id=TENANT, topic=t, payload={"n": n}))

    def dispatch(i: int) -> None:
        # Batches of different sizes, so a dispatcher sees events beyond what another holds.
        deadline = time.monotonic() + 30
        while sum(map(len, seen.values())) < 200 and time.monotonic() < deadline:
            if not jobs.dispatch_outbox(rt, limit=5 * (i + 1)):
                time.sleep(0.001)

    _together(4, dispatch)

    assert seen == ids, "every event once, each topic in id order"
