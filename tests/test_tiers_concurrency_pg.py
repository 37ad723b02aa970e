"""Tiers under real concurrency on PostgreSQL: the rollup loses no purchase, the review runs once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from liutong.checkout import service as checkout
from liutong.checkout.schemas import CommitRequest
from liutong.jobs import service as jobs
from liutong.jobs.models import OutboxEvent
from liutong.members import tier_review
from liutong.members.models import ActivityDay, Member, TierChange, TierReview
from liutong.organisation.auth import Principal
from liutong.organisation.models import Role
from tests.conftest import key, register
from tests.test_concurrency_pg import _run_together
from tests.tier_programs import YEAR_END_2026, park_ladder, publish

pytestmark = pytest.mark.postgres
N = 8


def test_purchases_of_one_member_at_the_same_moment_all_land_in_the_rollup(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    rt.clock = lambda: datetime(2026, 8, 8, 4, tzinfo=UTC)  # a Saturday: weekend double points
    with rt.transaction() as tx:
        m = register(tx, world, "13600009001").id
    who = Principal(key_id=None, role=Role.operator_admin, tenant_id=world.tenant_id, name="test")

    def buy(i):
        body = CommitRequest(order_no=f"POS-{key()}", terminal_id=world.coffee_terminal, member={"member_id": m},
                             lines=[{"sku": "LATTE", "category": "drinks", "qty": 1, "unit_price": 3_200}],
                             payment={"channel": "wechat", "amount": 3_200})
        with rt.transaction() as tx:
            checkout.commit(tx, principal=who, data=body, actor="test")

    _run_together(buy, N)
    with rt.transaction() as tx:
        day = tx.session.scalars(select(ActivityDay).where(ActivityDay.tenant_id == world.tenant_id,
                                                           ActivityDay.member_id == m)).one()
    assert (day.spend_fen, day.purchases, day.visited, day.points_earned) == (3_200 * N, N, 1, 64 * N)


def test_two_workers_running_the_review_together_change_each_member_once(committed_runtime, pg_world):
    rt, world = committed_runtime, pg_world
    rt.clock = lambda: datetime(2026, 6, 15, 4, tzinfo=UTC)
    publish(rt, world, park_ladder())
    with rt.transaction() as tx:
        members = [register(tx, world, f"136000092{i:02d}").id for i in range(60)]
        tx.session.execute(update(Member).where(Member.id.in_(members)).values(tier_code="gold"))
    rt.clock = lambda: datetime(2027, 1, 1, 0, 5, tzinfo=UTC)

    def worker(i):
        if i % 2:
            return tier_review.run(rt, tenant_id=world.tenant_id, as_of=YEAR_END_2026, limit=7).reviewed
        while jobs.run_due(rt, worker_id=f"w{i}", kinds=[tier_review.JOB_KIND], limit=1):
            pass
        return None

    _run_together(worker, 4)
    with rt.transaction() as tx:
        review = tx.session.scalars(select(TierReview).where(TierReview.tenant_id == world.tenant_id)).one()
        lines = tx.session.execute(select(TierChange.member_id, func.count()).where(
            TierChange.tenant_id == world.tenant_id, TierChange.review_id == review.id)
            .group_by(TierChange.member_id)).all()
        events = tx.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.tenant_id == world.tenant_id, OutboxEvent.topic == "tier_changed"))
        tiers = set(tx.session.scalars(select(Member.tier_code).where(Member.id.in_(members))))
    assert (review.status, review.reviewed, review.demoted) == ("done", 60, 60)
    assert sorted(m for m, _ in lines) == sorted(members) and {n for _, n in lines} == {1}
    assert events == 60
    assert tiers == {"normal"}
