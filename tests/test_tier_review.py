"""The tier period review: who keeps their tier at year end, who drops, and why."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from liutong.jobs import service as jobs
from liutong.jobs.models import Job, OutboxEvent
from liutong.members import tier_review, tiers
from liutong.members.models import TierChange, TierReview
from liutong.members.schemas import PaidUpgradeIn
from liutong.program.rules import ReviewSchedule
from liutong.program.tiers import Override, last_period_ended, period_of
from tests.conftest import key
from tests.tier_programs import (
    MID_2026,
    SHANGHAI,
    YEAR_END_2026,
    history_of,
    member_at,
    park_ladder,
    publish,
    spend,
    tier_of,
)


@pytest.fixture
def park(runtime, world):
    runtime.clock = lambda: MID_2026
    publish(runtime, world, park_ladder())
    return world


def review_2026(runtime, world, **kwargs):
    return tier_review.run(runtime, tenant_id=world.tenant_id, as_of=YEAR_END_2026, **kwargs)


# --- periods -------------------------------------------------------------------------------------


def test_review_periods_follow_the_calendar_in_the_tenants_local_time():
    year, quarter = ReviewSchedule(every="year"), ReviewSchedule(every="quarter")
    assert period_of(year, date(2026, 7, 1)).key == "2026"
    assert period_of(quarter, date(2026, 11, 23)).end_day == date(2027, 1, 1)
    assert period_of(ReviewSchedule(every="half_year"), date(2026, 7, 1)).key == "2026-H2"
    assert period_of(ReviewSchedule(every="month"), date(2026, 12, 5)).key == "2026-12"
    # 16:30 UTC on 31 December is already 1 January in Shanghai: the 2026 year is over there
    shanghai_new_year = datetime(2026, 12, 31, 16, 30, tzinfo=UTC).astimezone(SHANGHAI)
    assert last_period_ended(year, shanghai_new_year).key == "2026"
    assert last_period_ended(year, datetime(2026, 12, 31, 23, 59, tzinfo=SHANGHAI)).key == "2025"
    assert period_of(year, date(2026, 5, 1)).ends_at(SHANGHAI) == YEAR_END_2026


def test_retention_that_asks_more_than_qualification_or_on_the_entry_tier_is_refused():
    document = park_ladder().model_dump(mode="json")
    document["tiers"][2]["retain"]["spend_fen"] = 2_500_000  # more than the 2,000,000 that earns gold
    with pytest.raises(ValidationError, match="keeping the tier asks more than earning it"):
        park_ladder().model_validate(document)
    document = park_ladder().model_dump(mode="json")
    document["tiers"][0]["retain"] = {"visits": 1}
    with pytest.raises(ValidationError, match="lowest tier"):
        park_ladder().model_validate(document)


# --- who keeps and who drops -------------------------------------------------------------------


def test_a_gold_member_who_spent_too_little_this_year_drops_to_silver_at_year_end(runtime, park):
    m = member_at(runtime, park, "13900000001", "gold")
    spend(runtime, park, m, 400_000, date(2026, 3, 1), visits=4)  # ¥4,000 over 4 visits: silver keeps, gold not
    done = review_2026(runtime, park)
    assert tier_of(runtime, m) == "silver"
    assert history_of(runtime, m) == [("gold", "silver", "review", "年度保级未达标 / annual review: retention not met")]
    assert (done.period, done.reviewed, done.demoted) == ("2026", 1, 1)


def test_a_gold_member_who_kept_visiting_keeps_gold(runtime, park):
    m = member_at(runtime, park, "13900000002", "gold")
    spend(runtime, park, m, 100_000, date(2026, 2, 1), visits=20)  # 20 visits keep gold
    review_2026(runtime, park)
    assert tier_of(runtime, m) == "gold"
    assert history_of(runtime, m) == []


def test_activity_before_the_window_or_after_the_year_does_not_count(runtime, park):
    m = member_at(runtime, park, "13900000003", "silver")
    spend(runtime, park, m, 900_000, date(2025, 12, 31))  # a day too early for the 365 days of 2026
    spend(runtime, park, m, 900_000, date(2027, 1, 1))  # the new year's first day
    review_2026(runtime, park)
    assert tier_of(runtime, m) == "normal"


def test_a_diamond_member_with_nothing_this_year_drops_to_the_tier_they_still_keep(runtime, park):
    m = member_at(runtime, park, "13900000004", "diamond")
    spend(runtime, park, m, 0, date(2026, 4, 1), visits=7)  # 7 visits: silver's retention, not gold's
    review_2026(runtime, park)
    assert tier_of(runtime, m) == "silver"


def test_with_one_step_reviews_a_diamond_member_drops_one_tier_a_year(runtime, park):
    publish(runtime, park, park_ladder(every="year", one_step=True))
    m = member_at(runtime, park, "13900000005", "diamond")
    review_2026(runtime, park)
    assert tier_of(runtime, m) == "gold"


def test_a_member_who_still_qualifies_keeps_the_tier_whatever_its_retention(runtime, park):
    m = member_at(runtime, park, "13900000006", "silver")
    spend(runtime, park, m, 0, date(2026, 1, 10), visits=10)  # silver's qualification, by visits
    review_2026(runtime, park)
    assert tier_of(runtime, m) == "silver"


# --- overrides and paid upgrades ---------------------------------------------------------------


def test_a_locked_member_keeps_their_tier_through_the_review(runtime, park):
    m = member_at(runtime, park, "13900000011", "diamond", tier_locked=True)
    review_2026(runtime, park)
    assert tier_of(runtime, m) == "diamond"
    assert history_of(runtime, m) == []


def test_a_floor_holds_a_member_who_spent_nothing_at_the_floor(runtime, park):
    m = member_at(runtime, park, "13900000012", "diamond", tier_floor="gold",
                  tier_override_expires_at=datetime(2027, 6, 30, tzinfo=SHANGHAI))
    review_2026(runtime, park)
    assert tier_of(runtime, m) == "gold"
    assert history_of(runtime, m)[0][3] == ("年度保级未达标；保持保底等级 / annual review: retention not met; "
                                            "held at the override floor")


def test_an_expired_override_is_cleared_at_the_review_with_a_history_line(runtime, park):
    lapsed = datetime(2026, 10, 1, tzinfo=SHANGHAI)
    kept = member_at(runtime, park, "13900000013", "gold", tier_floor="gold", tier_override_expires_at=lapsed)
    spend(runtime, park, kept, 1_500_000, date(2026, 5, 1))
    dropped = member_at(runtime, park, "13900000014", "gold", tier_locked=True, tier_override_expires_at=lapsed)
    done = review_2026(runtime, park)
    assert history_of(runtime, kept) == [("gold", "gold", "review", "人工调整到期 / manual override expired")]
    assert history_of(runtime, dropped) == [(
        "gold", "normal", "review",
        "人工调整到期；年度保级未达标 / manual override expired; annual review: retention not met")]
    with runtime.transaction() as tx:
        for m in (kept, dropped):
            o = tiers.override_of(tiers.members.get(tx, tenant_id=park.tenant_id, member_id=m))
            assert o == Override()
    assert (done.demoted, done.overrides_cleared) == (1, 2)


def test_a_paid_upgrade_lasts_until_its_period_ends(runtime, park):
    m = member_at(runtime, park, "13900000015", "normal")
    with runtime.transaction() as tx:
        bought = tiers.buy_upgrade(tx, tenant_id=park.tenant_id, member_id=m, key=key(), actor="front-desk",
                                   data=PaidUpgradeIn(tier_code="gold", payment={
                                       "channel": "wechat", "reference": "wx-4200001", "amount": 99_900}))
    assert (bought.tier_before, bought.tier_after) == ("normal", "gold")
    assert bought.ends_at == datetime(2027, 6, 16, tzinfo=SHANGHAI)  # 12 months, to the end of 15 June 2027
    assert history_of(runtime, m)[0][:3] == ("normal", "gold", "paid_upgrade")
    assert "付费升级金卡至 2027-06-15" in history_of(runtime, m)[0][3]
    review_2026(runtime, park)  # no activity at all, but paid for until June 2027
    assert tier_of(runtime, m) == "gold"
    assert history_of(runtime, m)[1:] == []
    tier_review.run(runtime, tenant_id=park.tenant_id, as_of=datetime(2028, 1, 1, tzinfo=SHANGHAI))
    assert tier_of(runtime, m) == "normal"  # the 2027 review: the upgrade has ended


def test_a_member_promoted_after_the_year_ended_is_not_demoted_by_its_review(runtime, park):
    m = member_at(runtime, park, "13900000016", "silver")
    runtime.clock = lambda: datetime(2027, 1, 1, 2, tzinfo=UTC)  # 10:00 on New Year's Day in Shanghai
    spend(runtime, park, m, 2_100_000, date(2027, 1, 1))
    with runtime.transaction() as tx:
        assert tiers.check_promotion(tx, tenant_id=park.tenant_id, member_id=m, at=tx.now(),
                                     reason="消费升级 / purchase") == "gold"
    review_2026(runtime, park)  # the review of 2026 runs late, after the purchase
    assert tier_of(runtime, m) == "gold"


# --- visits --------------------------------------------------------------------------------------


def test_a_gate_entry_counts_as_a_visit_towards_a_tier(runtime, park):
    m = member_at(runtime, park, "13900000021", None)
    with runtime.transaction() as tx:
        for day in range(10):  # ten days through the park gate, no purchase
            at = datetime(2026, 5, 1 + day, 9, 30, tzinfo=SHANGHAI)
            tiers.member_activity.record(tx, tenant_id=park.tenant_id, member_id=m, at=at, visit=True)
            tiers.member_activity.record(tx, tenant_id=park.tenant_id, member_id=m, at=at + timedelta(hours=5),
                                         visit=True)  # back in after lunch: the same visit
        promoted = tiers.check_promotion(tx, tenant_id=park.tenant_id, member_id=m,
                                         at=datetime(2026, 5, 10, 12, tzinfo=SHANGHAI), reason="入园 / gate entry")
    assert promoted == "silver"


# --- running it ----------------------------------------------------------------------------------


def test_rerunning_the_review_changes_nothing(runtime, park):
    members = [member_at(runtime, park, f"139000001{i:02d}", "gold") for i in range(5)]
    first = review_2026(runtime, park)
    before = [(tier_of(runtime, m), history_of(runtime, m)) for m in members]
    with runtime.transaction() as tx:
        events = tx.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.tenant_id == park.tenant_id, OutboxEvent.topic == "tier_changed"))
    again = review_2026(runtime, park)
    assert again == first
    assert [(tier_of(runtime, m), history_of(runtime, m)) for m in members] == before
    with runtime.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.tenant_id == park.tenant_id, OutboxEvent.topic == "tier_changed")) == events == 5


def test_a_review_that_stopped_half_way_resumes_where_it_was(runtime, park):
    members = [member_at(runtime, park, f"139000002{i:02d}", "gold") for i in range(7)]
    spend(runtime, park, members[3], 1_300_000, date(2026, 8, 8))
    with runtime.transaction() as tx:
        first = tier_review.review_chunk(tx, tenant_id=park.tenant_id, as_of=YEAR_END_2026, limit=3)
    assert (first.done, first.reviewed, first.cursor) == (False, 3, members[2])
    assert [tier_of(runtime, m) for m in members] == ["normal"] * 3 + ["gold"] * 4
    chunks = []
    done = review_2026(runtime, park, limit=3, on_chunk=chunks.append)
    assert [c.chunk for c in chunks] == [3, 1, 0]
    assert (done.reviewed, done.demoted) == (7, 6)
    assert [tier_of(runtime, m) for m in members] == ["normal"] * 3 + ["gold"] + ["normal"] * 3


def test_each_change_writes_one_history_line_and_one_tier_changed_event(runtime, park):
    m = member_at(runtime, park, "13900000031", "gold")
    review_2026(runtime, park)
    with runtime.transaction() as tx:
        events = tx.session.execute(select(OutboxEvent.payload).where(
            OutboxEvent.tenant_id == park.tenant_id, OutboxEvent.topic == "tier_changed")).scalars().all()
        review = tx.session.scalars(select(TierReview).where(TierReview.tenant_id == park.tenant_id)).one()
        lines = tx.session.scalars(select(TierChange).where(TierChange.member_id == m)).all()
    assert [e["member_id"] for e in events] == [m]
    assert events[0] | {"reason": None} == {"member_id": m, "from": "gold", "to": "normal", "reason": None,
                                            "cause": "review", "review": "2026"}
    assert [(line.review_id, line.at) for line in lines] == [(review.id, YEAR_END_2026.astimezone(UTC))]


def test_the_review_job_runs_at_year_end_in_chunks_and_schedules_the_next_year(runtime, park, monkeypatch):
    monkeypatch.setattr(tier_review, "CHUNK", 2)
    members = [member_at(runtime, park, f"139000003{i:02d}", "silver") for i in range(5)]
    with runtime.transaction() as tx:
        scheduled = tx.session.scalars(select(Job).where(Job.tenant_id == park.tenant_id,
                                                         Job.kind == tier_review.JOB_KIND)).all()
    assert {j.payload["period"] for j in scheduled} == {"2026"}
    assert {j.run_at for j in scheduled} == {YEAR_END_2026.astimezone(UTC)}
    new_year = YEAR_END_2026 + timedelta(minutes=1)
    assert jobs.run_due(runtime, worker_id="w1", kinds=[tier_review.JOB_KIND], now=YEAR_END_2026 - timedelta(seconds=1)) == 0
    while jobs.run_due(runtime, worker_id="w1", kinds=[tier_review.JOB_KIND], now=new_year):
        pass
    assert [tier_of(runtime, m) for m in members] == ["normal"] * 5
    with runtime.transaction() as tx:
        review = tx.session.scalars(select(TierReview).where(TierReview.tenant_id == park.tenant_id)).one()
        queued = tx.session.scalars(select(Job).where(Job.tenant_id == park.tenant_id, Job.kind == tier_review.JOB_KIND,
                                                      Job.status == "queued")).all()
        failed = tx.session.scalar(select(func.count()).select_from(Job).where(
            Job.tenant_id == park.tenant_id, Job.kind == tier_review.JOB_KIND, Job.status == "failed"))
    assert (review.status, review.reviewed, review.demoted) == ("done", 5, 5)
    assert failed == 0
    assert [(j.payload["period"], j.run_at) for j in queued] == [("2027", datetime(2028, 1, 1, tzinfo=SHANGHAI)
                                                                   .astimezone(UTC))]


def test_a_quarterly_program_reviews_each_quarter_and_says_so(runtime, park):
    publish(runtime, park, park_ladder(every="quarter"))
    document = park_ladder(every="quarter").model_dump(mode="json")
    assert document["tier_review"] == {"every": "quarter", "one_step": False}
    m = member_at(runtime, park, "13900000041", "silver")
    done = tier_review.run(runtime, tenant_id=park.tenant_id, as_of=datetime(2026, 10, 2, tzinfo=SHANGHAI))
    assert done.period == "2026-Q3"
    assert history_of(runtime, m)[0][3] == "季度保级未达标 / quarterly review: retention not met"


def test_a_merged_members_visits_count_for_the_member_kept(runtime, park):
    from liutong.members import service as members
    from liutong.members.models import ActivityDay

    kept = member_at(runtime, park, "13900000051", "silver")
    duplicate = member_at(runtime, park, "13900000052", None)
    spend(runtime, park, kept, 100_000, date(2026, 3, 1), visits=3)
    spend(runtime, park, duplicate, 50_000, date(2026, 3, 3), visits=3)  # 3 and 4 March: both members came
    with runtime.transaction() as tx:
        members.merge(tx, tenant_id=park.tenant_id, source_id=duplicate, target_id=kept, reason="同一人", key=key(),
                      actor="test")
        days = tx.session.execute(select(ActivityDay.member_id, func.count(), func.sum(ActivityDay.spend_fen))
                                  .where(ActivityDay.member_id.in_([kept, duplicate]))
                                  .group_by(ActivityDay.member_id)).all()
    assert [tuple(d) for d in days] == [(kept, 5, 150_000)]
    review_2026(runtime, park)
    assert tier_of(runtime, kept) == "normal"  # 5 visits, ¥1,500: short of silver's 6 visits or ¥3,000
