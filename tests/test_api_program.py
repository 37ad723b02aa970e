"""Operators read, change and try out the program over the API."""

from __future__ import annotations

from sqlalchemy import func, select

from liutong.program.models import ProgramVersion
from tests.conftest import key

SATURDAY = "2026-11-21T14:00:00+08:00"
TUESDAY = "2026-11-24T14:00:00+08:00"
SAMPLE = [{"sku": "T-ADULT", "category": "ticket", "amount": 12000, "merchant": "tickets", "venue": "park",
           "format": "theme_park"}]


def test_a_new_tenant_starts_with_the_default_program_as_version_1(client, world):
    r = client.get("/v1/program", headers=world.headers())
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == 1
    assert [t["name"] for t in body["document"]["tiers"]] == ["普通会员", "银卡", "金卡", "钻石卡"]
    assert {c["code"] for c in body["document"]["earn"]["campaigns"]} == {"weekend-x2", "member-day-x5"}


def test_an_operator_creates_a_weekend_triple_campaign_and_the_preview_reflects_it(client, world, runtime):
    current = client.get("/v1/program", headers=world.headers()).json()
    document = current["document"]
    document["earn"]["campaigns"] = [{
        "code": "weekend-x3", "name": "周末三倍", "window": {"weekdays": [6, 7]}, "effect": "multiplier",
        "multiplier": "3"}]
    r = client.put("/v1/program", json={"document": document, "note": "双十一周末三倍积分"},
                   headers=world.headers(idem=key()))
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    preview = client.post("/v1/program/earn-preview", json={"lines": SAMPLE, "tier_code": "gold", "at": SATURDAY},
                          headers=world.headers()).json()
    assert preview["program_version"] == 2
    assert preview["explanation"] == "基础积分 120 + 周末三倍 240 + 金卡1.5倍 60"
    versions = client.get("/v1/program/versions", headers=world.headers()).json()
    assert [v["version"] for v in versions] == [2, 1]
    # the old version stays as it was
    old = client.get("/v1/program/versions/1", headers=world.headers()).json()
    assert {c["code"] for c in old["document"]["earn"]["campaigns"]} == {"weekend-x2", "member-day-x5"}


def test_a_draft_is_previewed_without_publishing_anything(client, world, runtime):
    document = client.get("/v1/program", headers=world.headers()).json()["document"]
    document["earn"]["base_rates"][0]["points_per_yuan"] = "3"
    preview = client.post("/v1/program/earn-preview",
                          json={"lines": SAMPLE, "at": TUESDAY, "draft": document}, headers=world.headers()).json()
    assert preview == {"program_version": None, "points": 360, "growth": 120, "explanation": "基础积分 360",
                       "parts": [{"rule": "base", "label": "基础积分", "points": 360}], "excluded_lines": []}
    with runtime.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(ProgramVersion).where(
            ProgramVersion.tenant_id == world.tenant_id)) == 1


def test_publishing_is_idempotent_and_a_broken_program_changes_nothing(client, world):
    document = client.get("/v1/program", headers=world.headers()).json()["document"]
    k = key()
    first = client.put("/v1/program", json={"document": document, "note": "重新发布"}, headers=world.headers(idem=k))
    again = client.put("/v1/program", json={"document": document, "note": "重新发布"}, headers=world.headers(idem=k))
    assert first.json() == again.json()
    document["tiers"][1]["rank"] = 0
    bad = client.put("/v1/program", json={"document": document, "note": "错误"}, headers=world.headers(idem=key()))
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_request"
    assert client.get("/v1/program", headers=world.headers()).json()["version"] == 2


def test_an_analyst_may_read_and_preview_but_not_publish(client, world):
    document = client.get("/v1/program", headers=world.headers(world.analyst_key)).json()["document"]
    r = client.put("/v1/program", json={"document": document, "note": "x"},
                   headers=world.headers(world.analyst_key, idem=key()))
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    r = client.post("/v1/program/earn-preview", json={"lines": SAMPLE, "at": TUESDAY},
                    headers=world.headers(world.analyst_key))
    assert r.status_code == 200 and r.json()["points"] == 120


def test_an_unknown_version_is_not_found(client, world):
    r = client.get("/v1/program/versions/99", headers=world.headers())
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
