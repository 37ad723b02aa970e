"""Tiers over the API: the member centre's progress, the history, operators' overrides and
paid upgrades at the front desk."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from liutong.members.models import ActivityDay
from liutong.organisation.models import AuditRecord
from tests.conftest import key
from tests.tier_programs import MID_2026, SHANGHAI, member_at, park_ladder, publish, spend, tier_of


@pytest.fixture
def park(runtime, world):
    runtime.clock = lambda: MID_2026
    publish(runtime, world, park_ladder())
    return world


def test_the_member_centre_shows_what_the_next_tier_still_needs(client, runtime, park):
    m = member_at(runtime, park, "13700000001", "silver")
    spend(runtime, park, m, 800_000, date(2026, 3, 1), visits=8)
    r = client.get(f"/v1/members/{m}/tier", headers=park.headers(park.coffee_cashier_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == {"code": "silver", "name": "银卡", "rank": 1}
    up = body["next_tier"]
    assert (up["tier"]["code"], up["combine"], up["window_days"], up["met"]) == ("gold", "any", 365, False)
    assert {g["dimension"]: (g["required"], g["current"], g["missing"]) for g in up["gaps"]} == {
        "spend_fen": (2_000_000, 800_000, 1_200_000), "visits": (30, 8, 22)}
    keep = body["retention"]
    assert keep["met"] is True and keep["tier"]["code"] == "silver"
    assert body["next_review"] == {"period": "2026", "at": "2026-12-31T16:00:00Z"}
    assert body["override"] is None and body["paid_upgrade"] is None


def test_the_tier_history_is_newest_first_with_reasons_and_pages(client, runtime, park):
    m = member_at(runtime, park, "13700000002", "normal")
    headers = park.headers(idem=None)
    for floor in ("silver", "gold", "diamond"):
        r = client.put(f"/v1/members/{m}/tier/override", headers=park.headers(idem=key()),
                       json={"floor": floor, "reason": "大客户维护"})
        assert r.status_code == 200, r.text
    first = client.get(f"/v1/members/{m}/tier/history?limit=2", headers=headers).json()
    assert [(i["from_tier"], i["to_tier"]) for i in first["items"]] == [("gold", "diamond"), ("silver", "gold")]
    assert first["items"][0]["cause"] == "override"
    assert first["items"][0]["reason"] == "人工调整（保底 diamond）：大客户维护 / manual override: 大客户维护"
    rest = client.get(f"/v1/members/{m}/tier/history?limit=2&cursor={first['next_cursor']}", headers=headers).json()
    assert [(i["from_tier"], i["to_tier"]) for i in rest["items"]] == [("normal", "silver")]
    assert rest["next_cursor"] is None
    bad = client.get(f"/v1/members/{m}/tier/history?cursor=nonsense", headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_an_operator_locks_a_member_at_gold_until_a_date_and_it_is_audited(client, runtime, park):
    m = member_at(runtime, park, "13700000003", "silver")
    body = {"tier_code": "gold", "locked": True, "expires_at": "2027-03-31T16:00:00Z", "reason": "投诉补偿"}
    r = client.put(f"/v1/members/{m}/tier/override", json=body, headers=park.headers(idem=key()))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["tier_code"] == "gold"
    assert out["override"] == {"floor": None, "locked": True, "expires_at": "2027-03-31T16:00:00Z", "active": True}
    with runtime.transaction() as tx:
        audit = tx.session.get(AuditRecord, out["audit_id"])
    assert (audit.action, audit.subject_id, audit.data["tier_before"], audit.data["reason"]) == (
        "member.tier_override", m, "silver", "投诉补偿")
    progress = client.get(f"/v1/members/{m}/tier", headers=park.headers()).json()
    assert progress["override"]["locked"] is True
    cleared = client.post(f"/v1/members/{m}/tier/override/clear", json={"reason": "补偿结束"},
                          headers=park.headers(idem=key()))
    assert cleared.status_code == 200 and cleared.json()["override"] is None
    assert tier_of(runtime, m) == "gold"  # kept until the review judges them


def test_only_staff_who_may_change_the_program_set_overrides(client, runtime, park):
    m = member_at(runtime, park, "13700000004", "silver")
    for api_key in (park.coffee_cashier_key, park.coffee_manager_key, park.analyst_key):
        r = client.put(f"/v1/members/{m}/tier/override", json={"floor": "gold", "reason": "想要金卡"},
                       headers=park.headers(api_key, idem=key()))
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    assert tier_of(runtime, m) == "silver"


@pytest.mark.parametrize(("body", "code"), [
    ({"floor": "platinum", "reason": "x"}, "unknown_tier"),
    ({"tier_code": "silver", "floor": "gold", "reason": "x"}, "invalid_override"),
    ({"locked": False, "reason": "x"}, "invalid_override"),
    ({"floor": "gold", "expires_at": "2026-01-01T00:00:00Z", "reason": "x"}, "invalid_override"),
])
def test_an_override_that_cannot_mean_anything_is_a_coded_400(client, runtime, park, body, code):
    m = member_at(runtime, park, "13700000005", "silver")
    r = client.put(f"/v1/members/{m}/tier/override", json=body, headers=park.headers(idem=key()))
    assert r.status_code == 400 and r.json()["error"]["code"] == code


def test_a_paid_upgrade_at_the_front_desk_is_idempotent_and_checks_the_price(client, runtime, park):
    m = member_at(runtime, park, "13700000006", "normal")
    url = f"/v1/members/{m}/tier/paid-upgrades"
    headers = park.headers(park.coffee_cashier_key, idem=key())
    payment = {"channel": "alipay", "reference": "ali-2026061500001", "amount": 99_900}
    wrong = client.post(url, json={"tier_code": "gold", "payment": {**payment, "amount": 9_990}},
                        headers=park.headers(park.coffee_cashier_key, idem=key()))
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "payment_mismatch"
    silver = client.post(url, json={"tier_code": "silver", "payment": payment},
                         headers=park.headers(park.coffee_cashier_key, idem=key()))
    assert silver.status_code == 409 and silver.json()["error"]["code"] == "tier_not_for_sale"
    unknown = client.post(url, json={"tier_code": "black", "payment": payment},
                          headers=park.headers(park.coffee_cashier_key, idem=key()))
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_tier"
    first = client.post(url, json={"tier_code": "gold", "payment": payment}, headers=headers)
    assert first.status_code == 201, first.text
    assert (first.json()["tier_before"], first.json()["tier_after"]) == ("normal", "gold")
    again = client.post(url, json={"tier_code": "gold", "payment": payment}, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    reused = client.post(url, json={"tier_code": "gold", "payment": payment},
                         headers=park.headers(park.coffee_cashier_key, idem=key()))
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "payment_already_used"
    progress = client.get(f"/v1/members/{m}/tier", headers=park.headers()).json()
    assert progress["paid_upgrade"] == {"tier_code": "gold", "ends_at": "2027-06-15T16:00:00Z"}


def test_a_renewed_paid_upgrade_starts_when_the_running_one_ends(client, runtime, park):
    m = member_at(runtime, park, "13700000007", "normal")
    url = f"/v1/members/{m}/tier/paid-upgrades"
    ends = []
    for ref in ("wx-1", "wx-2"):
        r = client.post(url, json={"tier_code": "gold", "payment": {"channel": "wechat", "reference": ref,
                                                                   "amount": 99_900}},
                        headers=park.headers(idem=key()))
        assert r.status_code == 201, r.text
        ends.append(r.json()["ends_at"])
    assert ends == ["2027-06-15T16:00:00Z", "2028-06-16T16:00:00Z"]


def test_a_locked_member_cannot_buy_an_upgrade(client, runtime, park):
    m = member_at(runtime, park, "13700000008", "silver", tier_locked=True)
    r = client.post(f"/v1/members/{m}/tier/paid-upgrades", headers=park.headers(idem=key()),
                    json={"tier_code": "gold", "payment": {"channel": "cash", "reference": "c-1", "amount": 99_900}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "tier_locked"


def test_purchases_and_refunds_land_in_the_members_day(client, runtime, park):
    m = member_at(runtime, park, "13700000009", None)
    runtime.clock = lambda: datetime(2026, 6, 15, 23, 30, tzinfo=SHANGHAI)  # late evening in Shanghai
    cashier = park.headers(park.coffee_cashier_key)
    lines = [{"sku": "LATTE", "category": "drinks", "qty": 2, "unit_price": 3_200}]
    for order_no in ("N-1", "N-2"):
        r = client.post("/v1/checkout/commit", headers=cashier, json={
            "order_no": order_no, "member": {"member_id": m}, "lines": lines,
            "payment": {"channel": "wechat", "amount": 6_400}})
        assert r.status_code == 200, r.text
    runtime.clock = lambda: datetime(2026, 6, 17, 10, tzinfo=SHANGHAI)
    r = client.post("/v1/checkout/refund", headers=cashier,
                    json={"order_no": "N-2", "refund_no": "R-1", "lines": [{"line_no": 1, "qty": 1}]})
    assert r.status_code == 200, r.text
    with runtime.transaction() as tx:
        days = tx.session.execute(select(ActivityDay.day, ActivityDay.spend_fen, ActivityDay.points_earned,
                                         ActivityDay.purchases, ActivityDay.visited)
                                  .where(ActivityDay.member_id == m)).all()
    # both sales on 15 June local time (15:30 UTC); the refund netted there, not on the 17th
    assert [tuple(d) for d in days] == [(date(2026, 6, 15), 6_400 * 2 - 3_200, 64 * 2 - 32, 2, 1)]
