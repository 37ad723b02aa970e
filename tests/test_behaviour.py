"""Members earn for what they do, not only for what they buy — within the program's limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from liutong.jobs.models import Job
from liutong.ledger import queries
from liutong.ledger.verify import verify
from liutong.program import behaviour
from liutong.program import service as program_service
from liutong.program.defaults import default_program
from liutong.program.schemas import ProgramPublish
from tests.conftest import key, register

MONDAY_NOON = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def _at(runtime, when):
    runtime.clock = lambda: when


def _sign_in(client, world, phone="13700137000", idem=None):
    return client.post("/v1/behaviour", json={"member": {"phone": phone}, "event": "sign_in"},
                       headers=world.headers(idem=idem or key()))


def _points(runtime, world, member_id):
    with runtime.transaction() as tx:
        return queries.balances(tx, tenant_id=world.tenant_id, member_id=member_id)


def _member(runtime, world, phone="13700137000", **extra):
    with runtime.transaction() as tx:
        return register(tx, world, phone, **extra)


def test_a_member_signs_in_once_a_day_and_the_seventh_day_in_a_row_brings_the_streak_bonus(client, world, runtime):
    m = _member(runtime, world)
    for day in range(7):
        _at(runtime, MONDAY_NOON + timedelta(days=day))
        r = _sign_in(client, world)
        assert r.status_code == 200, r.text
        assert r.json()["awards"][0]["streak"] == day + 1
    assert r.json()["points"] == 25  # 5 + 连续签到7天 20
    assert "连续签到7天 20" in r.json()["awards"][0]["explanation"]
    again = _sign_in(client, world)
    assert again.status_code == 409 and again.json()["error"]["code"] == "behaviour_limit_reached"
    assert "每日签到" in again.json()["error"]["message_zh"]
    b = _points(runtime, world, m.id)
    assert (b.points, b.growth) == (6 * 5 + 25, 7)


def test_a_missed_day_starts_the_streak_again(client, world, runtime):
    _member(runtime, world)
    for day in (0, 1, 3):
        _at(runtime, MONDAY_NOON + timedelta(days=day))
        streak = _sign_in(client, world).json()["awards"][0]["streak"]
    assert streak == 1


def test_a_sign_in_replayed_with_its_key_posts_nothing_twice(client, world, runtime):
    m = _member(runtime, world)
    _at(runtime, MONDAY_NOON)
    first = _sign_in(client, world, idem="signin-1")
    replay = _sign_in(client, world, idem="signin-1")
    assert replay.status_code == 200 and replay.json() == first.json()
    assert _points(runtime, world, m.id).points == 5


def test_the_day_is_the_members_local_day(client, world, runtime):
    """23:30 and 00:30 in Shanghai are two days, although both are the same UTC day."""
    _member(runtime, world)
    _at(runtime, datetime(2026, 11, 23, 15, 30, tzinfo=UTC))  # 23:30 Shanghai
    assert _sign_in(client, world).status_code == 200
    _at(runtime, datetime(2026, 11, 23, 16, 30, tzinfo=UTC))  # 00:30 the next day
    r = _sign_in(client, world)
    assert r.status_code == 200 and r.json()["awards"][0]["streak"] == 2


def test_reviews_earn_three_times_a_day_at_most(client, world, runtime):
    m = _member(runtime, world)
    _at(runtime, MONDAY_NOON)
    body = {"member": {"member_id": m.id}, "event": "review", "venue": "park", "ref": "review-1"}
    codes = [client.post("/v1/behaviour", json=body, headers=world.headers(idem=key())).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 409]
    b = _points(runtime, world, m.id)
    assert (b.points, b.growth) == (30, 15)


def test_a_referral_pays_both_sides_once(client, world, runtime):
    _at(runtime, MONDAY_NOON)
    old = _member(runtime, world, "13700137001")
    new = _member(runtime, world, "13700137002", referred_by=old.member_no)
    assert _points(runtime, world, old.id).points == 50
    assert _points(runtime, world, new.id).points == 50
    again = client.post("/v1/behaviour", headers=world.headers(idem=key()), json={
        "member": {"member_id": old.id}, "event": "referral", "referee": {"member_id": new.id}})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_referred"


def test_an_unknown_referrer_refuses_the_registration(client, world, runtime):
    r = client.post("/v1/members", headers=world.headers(idem=key()),
                    json={"phone": "13700137003", "referred_by": "9999999999"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_reference"
    assert client.get("/v1/members/lookup", headers=world.headers(),
                      params={"kind": "phone", "value": "13700137003"}).status_code == 404


def test_a_task_is_rewarded_once_in_a_lifetime(client, world, runtime):
    m = _member(runtime, world)
    _at(runtime, MONDAY_NOON)
    body = {"member": {"member_id": m.id}, "event": "task", "task": "profile"}
    assert client.post("/v1/behaviour", json=body, headers=world.headers(idem=key())).json()["points"] == 50
    _at(runtime, MONDAY_NOON + timedelta(days=400))
    assert client.post("/v1/behaviour", json=body, headers=world.headers(idem=key())).status_code == 409
    other = client.post("/v1/behaviour", json={**body, "task": "first-stay"}, headers=world.headers(idem=key()))
    assert other.status_code == 409 and other.json()["error"]["code"] == "behaviour_not_rewarded"


def test_a_referral_without_a_referee_is_malformed(client, world, runtime):
    m = _member(runtime, world)
    r = client.post("/v1/behaviour", json={"member": {"member_id": m.id}, "event": "referral"},
                    headers=world.headers(idem=key()))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_registration_points_when_the_operator_adds_a_rule(client, world, runtime):
    doc = default_program().model_dump(mode="json")
    doc["earn"]["behaviours"].append({"code": "welcome", "name": "注册有礼", "event": "registration", "points": 88,
                                      "limit": {"times": 1, "per": "lifetime"}})
    doc["earn"]["behaviour_issuer"] = "mall"
    with runtime.transaction() as tx:
        program_service.publish(tx, tenant_id=world.tenant_id, key=key(), actor="test",
                                data=ProgramPublish(document=doc, note="注册送88积分"))
    m = _member(runtime, world)
    assert _points(runtime, world, m.id).points == 88
    with runtime.transaction() as tx:
        lots = queries.lots(tx, tenant_id=world.tenant_id, member_id=m.id)
        assert [lot.issuer_entity_id for lot in lots] == [world.mall_entity]
        assert all(c.ok for c in verify(tx.session, world.tenant_id))


def test_birthday_points_come_on_the_birthday_and_once_a_year(client, world, runtime):
    m = _member(runtime, world, birthday=date(1990, 11, 24))
    _at(runtime, MONDAY_NOON)  # the 23rd
    body = {"member": {"member_id": m.id}, "event": "birthday"}
    assert client.post("/v1/behaviour", json=body, headers=world.headers(idem=key())).json()["error"]["code"] == "not_birthday"
    _at(runtime, MONDAY_NOON + timedelta(days=1))
    assert client.post("/v1/behaviour", json=body, headers=world.headers(idem=key())).json()["points"] == 200
    assert client.post("/v1/behaviour", json=body, headers=world.headers(idem=key())).status_code == 409


def test_a_leap_day_birthday_is_kept_on_the_28th_of_february():
    assert behaviour.is_birthday(date(2000, 2, 29), date(2027, 2, 28))
    assert not behaviour.is_birthday(date(2000, 2, 29), date(2028, 2, 28))
    assert behaviour.is_birthday(date(2000, 2, 29), date(2028, 2, 29))


def test_the_daily_birthday_run_rewards_todays_birthdays_once_and_schedules_tomorrow(world, runtime):
    today = date(2026, 11, 24)
    _at(runtime, datetime(2026, 11, 24, 0, 30, tzinfo=UTC))
    born_today = _member(runtime, world, "13700137010", birthday=date(1988, 11, 24))
    _member(runtime, world, "13700137011", birthday=date(1988, 11, 25))
    _member(runtime, world, "13700137012")
    for _ in range(2):  # a rerun after a crash gives nothing twice
        with runtime.transaction() as tx:
            behaviour.reward_birthdays(tx, {"tenant_id": world.tenant_id, "day": today.isoformat()})
    assert _points(runtime, world, born_today.id).points == 200
    with runtime.transaction() as tx:
        tomorrow = tx.session.query(Job).filter(Job.kind == "behaviour.birthdays",
                                                Job.dedupe_key == f"birthdays:{world.tenant_id}:2026-11-25").one()
        assert tomorrow.run_at.astimezone(tx.tz).hour == 8


def test_workers_schedule_todays_birthday_run_once_per_tenant(world, runtime):
    _at(runtime, MONDAY_NOON)
    with runtime.transaction() as tx:
        first = behaviour.schedule_birthday_runs(tx)
        again = behaviour.schedule_birthday_runs(tx)
        assert first >= 1 and again == 0
        assert tx.session.query(Job).filter(Job.dedupe_key == f"birthdays:{world.tenant_id}:2026-11-23").count() == 1
