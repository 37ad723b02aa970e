"""Stored value over HTTP: a desk recharges, finance cashes out, members read their statement,
the group reads what each issuer owes. Malformed requests are 422; broken rules have codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from liutong.storedvalue import service as sv
from tests.conftest import build_world, key, register

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def member(runtime, world):
    runtime.clock = lambda: NOW
    with runtime.transaction() as tx:
        return register(tx, world, "13300133000").id


def _recharge(client, world, member_id, amount, *, reference=None, idem=None, api_key=None, issuer=None):
    body = {"amount": amount, "issuer_entity_id": issuer or world.park_entity, "channel": "wechat",
            "reference": reference or f"wx-{key()}"}
    return client.post(f"/v1/members/{member_id}/stored-value/recharges", json=body,
                       headers=world.headers(api_key, idem=idem or key()))


def _cash_out(client, world, member_id, principal=None, *, api_key=None):
    body = {"channel": "wechat", "reference": f"wxr-{key()}", "reason": "会员退卡",
            **({"principal": principal} if principal is not None else {})}
    return client.post(f"/v1/members/{member_id}/stored-value/cash-outs", json=body,
                       headers=world.headers(api_key, idem=key()))


def _error(resp, status, code):
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code, body
    assert body["message_zh"] and body["message_en"]
    return body


def test_a_desk_recharges_100_and_the_member_gets_20_bonus(client, world, member):
    r = _recharge(client, world, member, 10_000, api_key=world.operator_key)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["amount"], body["bonus"], body["bonus_rule"]) == (10_000, 2_000, "充100送20")
    held = client.get(f"/v1/members/{member}/stored-value", headers=world.headers()).json()
    assert (held["principal"], held["bonus"], held["bonus_spendable"]) == (10_000, 2_000, 2_000)
    assert held["holdings"] == [{"issuer_entity_id": world.park_entity, "principal": 10_000, "bonus": 2_000}]


def test_a_replayed_recharge_answers_the_same_and_posts_nothing(client, world, member):
    idem = key()
    first = _recharge(client, world, member, 10_000, reference="wx-77", idem=idem)
    again = _recharge(client, world, member, 10_000, reference="wx-77", idem=idem)
    assert again.status_code == 201 and again.json() == first.json()
    _error(_recharge(client, world, member, 10_000, reference="wx-77"), 409, "payment_already_recharged")
    _error(_recharge(client, world, member, 20_000, reference="wx-78", idem=idem), 409, "idempotency_conflict")
    assert client.get(f"/v1/members/{member}/stored-value", headers=world.headers()).json()["principal"] == 10_000


@pytest.mark.parametrize("body", [
    {"amount": 0, "channel": "wechat", "reference": "x"},
    {"amount": "一百", "channel": "wechat", "reference": "x"},
    {"amount": 10_000, "channel": "", "reference": "x"},
    {"amount": 10_000, "channel": "we chat", "reference": "x"},
    {"amount": 10_000, "reference": "x"},
    {"amount": 10_000, "channel": "wechat", "reference": "x" * 65},
])
def test_malformed_recharges_are_422_and_change_nothing(client, world, member, body):
    r = client.post(f"/v1/members/{member}/stored-value/recharges",
                    json={"issuer_entity_id": world.park_entity, **body}, headers=world.headers(idem=key()))
    _error(r, 422, "invalid_request")
    assert client.get(f"/v1/members/{member}/stored-value", headers=world.headers()).json()["principal"] == 0


def test_a_write_without_an_idempotency_key_is_422(client, world, member):
    r = client.post(f"/v1/members/{member}/stored-value/recharges", headers=world.headers(),
                    json={"amount": 10_000, "issuer_entity_id": world.park_entity, "channel": "wechat",
                          "reference": "wx-1"})
    _error(r, 422, "idempotency_key_required")


def test_business_rules_answer_with_their_own_codes(client, world, member):
    assert _recharge(client, world, member, 450_000).status_code == 201
    over = _error(_recharge(client, world, member, 50_001), 409, "stored_value_cap_exceeded")
    assert over["data"] == {"max_principal": 500_000, "held": 450_000, "room": 50_000}
    assert "50000" in over["message_en"]
    _error(_recharge(client, world, member, 99), 409, "recharge_out_of_range")
    _error(_cash_out(client, world, member, 450_001), 409, "insufficient_balance")


def test_another_tenants_member_or_entity_is_not_found(client, world, member, runtime):
    with runtime.transaction() as tx:
        other = build_world(tx)
        stranger = register(tx, other, "13300133001").id
    _error(_recharge(client, world, stranger, 10_000), 404, "member_not_found")
    _error(_recharge(client, world, member, 10_000, issuer=other.park_entity), 400, "invalid_reference")
    _error(client.get(f"/v1/members/{stranger}/stored-value/statement", headers=world.headers()), 404,
           "member_not_found")


def test_finance_cashes_out_principal_and_the_bonus_goes_pro_rata(client, world, member):
    _recharge(client, world, member, 10_000)
    r = _cash_out(client, world, member, 5_000)
    assert r.status_code == 201, r.text
    assert (r.json()["principal"], r.json()["bonus_forfeited"]) == (5_000, 1_000)
    rest = _cash_out(client, world, member).json()
    assert (rest["principal"], rest["bonus_forfeited"], rest["principal_after"], rest["bonus_after"]) == (5_000, 1_000,
                                                                                                        0, 0)
    _error(_cash_out(client, world, member), 409, "nothing_to_cash_out")


def test_a_cashier_may_recharge_but_not_cash_out(client, world, member):
    r = _recharge(client, world, member, 10_000, api_key=world.coffee_cashier_key)
    assert r.status_code == 201, r.text
    _error(_cash_out(client, world, member, api_key=world.coffee_cashier_key), 403, "permission_denied")


def test_a_member_statement_pages_newest_first_with_running_balances(client, world, member, runtime):
    _recharge(client, world, member, 10_000)
    with runtime.transaction() as tx:
        paid = sv.pay(tx, tenant_id=world.tenant_id, member_id=member, merchant_id=world.park_tickets, amount=3_501,
                      order_ref="POS-1", key=key())
        sv.refund_payment(tx, tenant_id=world.tenant_id, payment_id=paid.payment_id, amount=1_000, refund_ref="RF-1",
                          key=key())
    first = client.get(f"/v1/members/{member}/stored-value/statement?limit=2", headers=world.headers()).json()
    assert [(i["kind"], i["principal_after"], i["bonus_after"]) for i in first["items"]] == [
        ("sv_refund", 7_915, 1_584), ("sv_pay", 7_082, 1_417)]
    rest = client.get(f"/v1/members/{member}/stored-value/statement?limit=2&cursor={first['next_cursor']}",
                      headers=world.headers()).json()
    assert [i["kind"] for i in rest["items"]] == ["sv_recharge"] and rest["next_cursor"] is None
    _error(client.get(f"/v1/members/{member}/stored-value/statement?cursor=nonsense", headers=world.headers()), 422,
           "invalid_request")
    _error(client.get(f"/v1/members/{member}/stored-value/statement?limit=0", headers=world.headers()), 422,
           "invalid_request")


def test_the_group_reads_outstanding_principal_per_issuer_and_merchants_may_not(client, world, member):
    _recharge(client, world, member, 10_000, issuer=world.park_entity)
    _recharge(client, world, member, 30_000, issuer=world.hotel_entity)
    report = client.get("/v1/stored-value/outstanding", headers=world.headers(world.analyst_key)).json()
    assert {r["entity_code"]: (r["principal"], r["bonus"]) for r in report["rows"]} == {
        "park": (10_000, 2_000), "hotel": (30_000, 2_000), "mall": (0, 0)}
    assert (report["principal"], report["bonus"]) == (40_000, 4_000)
    _error(client.get("/v1/stored-value/outstanding", headers=world.headers(world.coffee_manager_key)), 403,
           "permission_denied")


def test_a_cashier_can_tell_a_member_what_a_recharge_would_bring(client, world, member):
    r = client.get("/v1/stored-value/recharge-preview?amount=10000", headers=world.headers(world.coffee_cashier_key))
    assert r.status_code == 200, r.text
    assert (r.json()["bonus"], r.json()["bonus_rule"]) == (2_000, "充100送20")
    _error(client.get("/v1/stored-value/recharge-preview?amount=-1", headers=world.headers()), 422, "invalid_request")


def test_the_openapi_document_lists_the_stored_value_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/members/{member_id}/stored-value/recharges", "/v1/members/{member_id}/stored-value/cash-outs",
            "/v1/members/{member_id}/stored-value/statement", "/v1/stored-value/outstanding"} <= set(paths)
