"""The members API as a front desk, a POS and the operator's back office use it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

import liutong.models  # noqa: F401  (every table in the metadata, for the clear-text scan)
from liutong.db import metadata
from liutong.ledger.models import Account
from liutong.ledger.verify import verify
from liutong.members.models import Member, MemberIdentity
from liutong.organisation.models import AuditRecord
from tests.conftest import build_world, key, register

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PHONE = "13800138000"
ID_CARD = "11010519491231002X"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def _post(client, world, path, body, *, api_key=None, idem=None, lang=None):
    return client.post(path, json=body, headers=world.headers(api_key, idem=idem or key(), lang=lang))


def _get(client, world, path, *, api_key=None, params=None):
    return client.get(path, params=params, headers=world.headers(api_key))


def _error(resp, status, code):
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code, err
    assert err["message_zh"] and err["message_en"]
    return err


def _register(client, world, phone, *, api_key=None, idem=None, **extra):
    resp = _post(client, world, "/v1/members", {"phone": phone, **extra}, api_key=api_key, idem=idem)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _lookup(client, world, kind, value, api_key=None):
    return _get(client, world, "/v1/members/lookup", params={"kind": kind, "value": value}, api_key=api_key)


def _grant(client, world, member_id, points, *, expires_at=None, issuer=None, memo="补发积分"):
    body = {"points": points, "issuer_entity_id": issuer or world.park_entity, "memo": memo}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    resp = _post(client, world, f"/v1/members/{member_id}/points/grants", body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _status(client, world, member_id, status, *, api_key=None):
    return _post(client, world, f"/v1/members/{member_id}/status", {"status": status, "reason": "测试"},
                 api_key=api_key)


def _counts(runtime):
    with runtime.transaction() as tx:
        return {t.name: tx.session.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


def _audits(runtime, world, action, subject_id):
    with runtime.transaction() as tx:
        return tx.session.scalars(
            select(AuditRecord).where(AuditRecord.tenant_id == world.tenant_id, AuditRecord.action == action,
                                      AuditRecord.subject_id == subject_id).order_by(AuditRecord.id)
        ).all()


def _as_bytes(value) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).encode()
    return str(value).encode()


@pytest.fixture
def other(runtime):
    with runtime.transaction() as tx:
        return build_world(tx)


# --- registration and lookup --------------------------------------------------------------------------------


def test_a_member_registers_with_a_phone_typed_any_way_and_is_shown_masked(client, world):
    member = _register(client, world, "+86 138-0013-8000", name="张三")
    assert member["phone"] == "138****8000"
    assert member["name"] == "张*"
    assert member["status"] == "active" and member["revealed"] is False
    assert member["member_no"] == f"{member['id']:010d}"
    (phone,) = member["identities"]
    assert (phone["kind"], phone["masked"], phone["is_primary"], phone["value"]) == ("phone", "138****8000", True, None)
    assert PHONE not in json.dumps(member)

    # the same number typed on a full-width keyboard is the same number
    found = _lookup(client, world, "phone", "１３８ ００１３ ８０００")
    assert found.status_code == 200, found.text
    assert found.json()["id"] == member["id"]
    _error(_post(client, world, "/v1/members", {"phone": "１３８００１３８０００"}), 409, "duplicate_identity")

    other = _register(client, world, "＋８６ １３９－００１３－９０００", name="欧阳娜娜")
    assert (other["phone"], other["name"]) == ("139****9000", "欧**娜")
    assert _lookup(client, world, "phone", "13900139000").json()["id"] == other["id"]


def test_a_member_is_found_by_every_identity(client, world):
    member = _register(client, world, PHONE, name="张三", identities=[
        {"kind": "card", "value": "VIP-0001 2345"},
        {"kind": "wechat_openid", "value": OPENID},
        {"kind": "plate", "value": "粤BD12345"},
        {"kind": "id_card", "value": ID_CARD},
    ])
    masked = {i["kind"]: i["masked"] for i in member["identities"]}
    assert masked == {"phone": "138****8000", "card": "*******2345", "wechat_openid": "*" * 24 + "eS6o",
                      "plate": "粤B·****45", "id_card": "110***********002X"}

    for kind, typed in [
        ("phone", "+86 138 0013 8000"),
        ("card", "vip0001-2345"),
        ("wechat_openid", OPENID),
        ("plate", "粤b.d12345"),          # new-energy plate, lower case, with a dot
        ("plate", "粤b·D 12345"),
        ("id_card", "11010519491231002x"),
    ]:
        found = _lookup(client, world, kind, typed)
        assert found.status_code == 200, (kind, typed, found.text)
        assert found.json()["id"] == member["id"], (kind, typed)

    # a cashier at the POS finds the member too
    assert _lookup(client, world, "plate", "粤BD12345", api_key=world.coffee_cashier_key).json()["id"] == member["id"]
    _error(_lookup(client, world, "plate", "粤BD54321"), 404, "member_not_found")
    _error(_lookup(client, world, "phone", "13900000000"), 404, "member_not_found")
    # an openid is matched exactly: case matters there
    _error(_lookup(client, world, "wechat_openid", OPENID.lower()), 404, "member_not_found")


def test_the_id_card_is_kept_only_as_a_hash_and_no_table_holds_personal_data_in_clear(client, world, runtime):
    member = _register(client, world, "+86 138-0013-8000", name="张三", identities=[
        {"kind": "card", "value": "VIP00012345"},
        {"kind": "wechat_openid", "value": OPENID},
        {"kind": "plate", "value": "粤BD12345"},
        {"kind": "id_card", "value": ID_CARD},
    ], consents=[{"purpose": "marketing_sms", "granted": True}])
    revealed = _get(client, world, f"/v1/members/{member['id']}", params={"reveal": "true"}).json()
    values = {i["kind"]: i["value"] for i in revealed["identities"]}
    assert values["phone"] == PHONE and values["plate"] == "粤BD12345"
    assert values["id_card"] is None  # a hash cannot be revealed

    with runtime.transaction() as tx:
        rows = tx.session.execute(
            select(MemberIdentity.kind, MemberIdentity.value_enc, MemberIdentity.blind_index)
            .where(MemberIdentity.member_id == member["id"])
        ).all()
        by_kind = {r.kind: r for r in rows}
        assert set(by_kind) == {"phone", "card", "wechat_openid", "plate", "id_card"}
        assert by_kind["id_card"].value_enc is None
        assert all(r.value_enc is not None for k, r in by_kind.items() if k != "id_card")

        secrets = [PHONE.encode(), ID_CARD.encode(), ID_CARD.lower().encode(), "张三".encode(),
                   "粤BD12345".encode(), OPENID.encode(), b"VIP00012345"]
        scanned = 0
        for table in metadata.sorted_tables:
            for row in tx.session.execute(select(table)):
                blob = b"\x00".join(_as_bytes(v) for v in row)
                scanned += 1
                leaked = [s.decode() for s in secrets if s in blob]
                assert not leaked, (table.name, leaked)
        member_row = tx.session.get(Member, member["id"])
        assert member_row.name_enc is not None and "张三".encode() not in member_row.name_enc
    assert scanned > 20


@pytest.mark.parametrize("body,code", [
    ({"phone": "12345"}, "invalid_phone"),
    ({"phone": "02887654321"}, "invalid_phone"),
    ({"phone": "138001380001"}, "invalid_phone"),
    ({"phone": "13800138000", "identities": [{"kind": "plate", "value": "浙I12345"}]}, "invalid_plate"),
    ({"phone": "13800138000", "identities": [{"kind": "plate", "value": "粤BD1234X5"}]}, "invalid_plate"),
    ({"phone": "13800138000", "identities": [{"kind": "id_card", "value": "110105194912310021"}]}, "invalid_id_card"),
    ({"phone": "13800138000", "identities": [{"kind": "id_card", "value": "11010519491331002X"}]}, "invalid_id_card"),
    ({"phone": "13800138000", "identities": [{"kind": "wechat_openid", "value": "bad id!"}]}, "invalid_identity"),
])
def test_malformed_identities_are_refused_and_nothing_is_stored(client, world, runtime, body, code):
    before = _counts(runtime)
    _error(_post(client, world, "/v1/members", body), 422, code)
    assert _counts(runtime) == before


def test_binding_a_malformed_identity_stores_nothing(client, world, runtime):
    member = _register(client, world, PHONE)
    before = _counts(runtime)
    _error(_post(client, world, f"/v1/members/{member['id']}/identities", {"kind": "plate", "value": "浙A1234"}), 422,
           "invalid_plate")
    _error(_post(client, world, f"/v1/members/{member['id']}/identities", {"kind": "phone", "value": "1380013800"}),
           422, "invalid_phone")
    _error(_post(client, world, f"/v1/members/{member['id']}/identities", {"kind": "id_card", "value": "110105"}),
           422, "invalid_id_card")
    assert _counts(runtime) == before


def test_a_failed_registration_does_not_use_up_its_key(client, world):
    k = key()
    _error(_post(client, world, "/v1/members", {"phone": "12345"}, idem=k), 422, "invalid_phone")
    # a malformed number is not remembered against the key: the corrected retry with it registers
    member = _post(client, world, "/v1/members", {"phone": PHONE}, idem=k)
    assert member.status_code == 201, member.text


def test_an_identity_belongs_to_one_member_only(client, world, runtime):
    first = _register(client, world, PHONE)
    before = _counts(runtime)
    err = _error(_post(client, world, "/v1/members", {"phone": "138 0013 8000", "name": "冒名"}), 409,
                 "duplicate_identity")
    assert err["data"]["kind_code"] == "phone"
    assert _counts(runtime) == before

    second = _register(client, world, "13900139000")
    bound = _post(client, world, f"/v1/members/{first['id']}/identities", {"kind": "plate", "value": "浙A12345"})
    assert bound.status_code == 200, bound.text
    assert "浙A·***45" in [i["masked"] for i in bound.json()["identities"]]
    before = _counts(runtime)
    _error(_post(client, world, f"/v1/members/{second['id']}/identities", {"kind": "plate", "value": "浙a·12345"}),
           409, "duplicate_identity")
    assert _counts(runtime) == before
    assert _lookup(client, world, "plate", "浙A12345").json()["id"] == first["id"]
    assert [i["kind"] for i in _get(client, world, f"/v1/members/{second['id']}").json()["identities"]] == ["phone"]


def test_identities_are_unbound_but_the_last_phone_stays(client, world, runtime):
    runtime.clock = lambda: T0
    member = _register(client, world, PHONE, identities=[{"kind": "plate", "value": "浙A12345"}])
    mid = member["id"]
    ids = {i["kind"]: i["id"] for i in member["identities"]}
    code = _post(client, world, f"/v1/members/{mid}/code", {}).json()["code"]

    def unbind(identity_id, member_id=mid):
        return client.delete(f"/v1/members/{member_id}/identities/{identity_id}", headers=world.headers(idem=key()))

    _error(unbind(ids["phone"]), 409, "last_phone_identity")
    unbound = unbind(ids["plate"])
    assert unbound.status_code == 200, unbound.text
    assert [i["kind"] for i in unbound.json()["identities"]] == ["phone"]
    _error(_lookup(client, world, "plate", "浙A12345"), 404, "member_not_found")
    # a code on screen from before stops working once an identity is unbound
    _error(_post(client, world, "/v1/member-codes/resolve", {"code": code}), 400, "member_code_invalid")

    added = _post(client, world, f"/v1/members/{mid}/identities", {"kind": "phone", "value": "13900139000"})
    assert added.status_code == 200, added.text
    remaining = unbind(ids["phone"]).json()
    assert remaining["phone"] == "139****9000"
    assert [(i["kind"], i["is_primary"]) for i in remaining["identities"]] == [("phone", True)]  # promoted
    _error(_lookup(client, world, "phone", PHONE), 404, "member_not_found")

    someone = _register(client, world, "13700137000")
    _error(unbind(someone["identities"][0]["id"]), 404, "not_found")  # not this member's identity
    assert _lookup(client, world, "phone", "13700137000").json()["id"] == someone["id"]


def test_an_identity_may_be_used_again_in_another_tenant(client, world, other):
    mine = _register(client, world, PHONE)
    theirs = _register(client, other, PHONE)
    assert mine["id"] != theirs["id"]
    assert _lookup(client, world, "phone", PHONE).json()["id"] == mine["id"]
    assert _lookup(client, other, "phone", PHONE).json()["id"] == theirs["id"]


def test_unknown_and_foreign_members_are_not_found(client, world, other, runtime):
    _error(_get(client, world, "/v1/members/987654321"), 404, "member_not_found")
    with runtime.transaction() as tx:
        foreign = register(tx, other, "13700137000", name="外人").id
    assert _get(client, other, f"/v1/members/{foreign}").status_code == 200
    _error(_get(client, world, f"/v1/members/{foreign}"), 404, "member_not_found")
    _error(_get(client, world, f"/v1/members/{foreign}", params={"reveal": "true"}), 404, "member_not_found")
    _error(_lookup(client, world, "phone", "13700137000"), 404, "member_not_found")
    _error(client.patch(f"/v1/members/{foreign}", json={"name": "改名"}, headers=world.headers(idem=key())), 404,
           "member_not_found")
    _error(_status(client, world, foreign, "frozen"), 404, "member_not_found")
    _error(_post(client, world, f"/v1/members/{foreign}/code", {}), 404, "member_not_found")
    _error(_get(client, world, f"/v1/members/{foreign}/balances"), 404, "member_not_found")
    _error(_get(client, world, f"/v1/members/{foreign}/consents"), 404, "member_not_found")
    _error(_get(client, world, f"/v1/members/{foreign}/history"), 404, "member_not_found")
    mine = _register(client, world, PHONE)
    _error(_post(client, world, "/v1/members/merge",
                 {"source_member_id": foreign, "target_member_id": mine["id"], "reason": "跨租户"}), 404,
           "member_not_found")
    assert _get(client, other, f"/v1/members/{foreign}").json()["status"] == "active"


# --- revealing personal data -------------------------------------------------------------------------------


def test_revealing_personal_data_is_for_operator_admins_and_is_audited(client, world, runtime):
    member = _register(client, world, "+86 138-0013-8000", name="张三")
    assert _audits(runtime, world, "member.reveal", member["id"]) == []

    shown = _get(client, world, f"/v1/members/{member['id']}", params={"reveal": "true"})
    assert shown.status_code == 200, shown.text
    assert (shown.json()["phone"], shown.json()["name"], shown.json()["revealed"]) == (PHONE, "张三", True)
    (audit,) = _audits(runtime, world, "member.reveal", member["id"])
    assert audit.subject_type == "member"
    assert audit.actor.startswith("key:") and audit.actor.endswith(":operator_admin")

    for api_key in (world.analyst_key, world.coffee_cashier_key, world.coffee_manager_key):
        _error(_get(client, world, f"/v1/members/{member['id']}", params={"reveal": "true"}, api_key=api_key), 403,
               "permission_denied")
        masked = _get(client, world, f"/v1/members/{member['id']}", api_key=api_key)
        assert masked.status_code == 200, masked.text
        assert (masked.json()["phone"], masked.json()["name"], masked.json()["revealed"]) == ("138****8000", "张*",
                                                                                           False)
    assert len(_audits(runtime, world, "member.reveal", member["id"])) == 1


# --- profile, consent, status ------------------------------------------------------------------------------


def test_a_member_updates_their_profile(client, world, runtime):
    member = _register(client, world, PHONE, name="张三")
    body = {"name": "李四", "gender": "female", "birthday": "1990-05-17", "region": "330100"}
    _error(client.patch(f"/v1/members/{member['id']}", json=body, headers=world.headers()), 422,
           "idempotency_key_required")
    k = key()
    updated = client.patch(f"/v1/members/{member['id']}", json=body, headers=world.headers(idem=k))
    assert updated.status_code == 200, updated.text
    got = updated.json()
    assert (got["name"], got["gender"], got["birthday"], got["region"]) == ("李*", "female", "1990-05-17", "330100")
    assert got["phone"] == "138****8000"
    replay = client.patch(f"/v1/members/{member['id']}", json=body, headers=world.headers(idem=k))
    assert replay.json() == got
    assert len(_audits(runtime, world, "member.update", member["id"])) == 1

    # fields left out stay as they were
    partial = client.patch(f"/v1/members/{member['id']}", json={"region": "浙江省杭州市"}, headers=world.headers(idem=key()))
    assert (partial.json()["region"], partial.json()["birthday"], partial.json()["gender"]) == (
        "浙江省杭州市", "1990-05-17", "female")
    revealed = _get(client, world, f"/v1/members/{member['id']}", params={"reveal": "true"}).json()
    assert revealed["name"] == "李四"
    with runtime.transaction() as tx:
        assert tx.session.get(Member, member["id"]).birthday == date(1990, 5, 17)

    _error(client.patch(f"/v1/members/{member['id']}", json={"gender": "other"}, headers=world.headers(idem=key())),
           422, "invalid_request")


def test_consent_is_recorded_and_withdrawn_with_history(client, world):
    member = _register(client, world, PHONE, consents=[
        {"purpose": "marketing_sms", "granted": True, "channel": "front_desk", "notice_version": "2026-01"},
        {"purpose": "personalisation", "granted": True, "channel": "front_desk", "notice_version": "2026-01"},
    ])
    path = f"/v1/members/{member['id']}/consents"
    k = key()
    withdrawal = {"purpose": "marketing_sms", "granted": False, "channel": "wechat_mini", "notice_version": "2026-10"}
    withdrawn = _post(client, world, path, withdrawal, idem=k)
    assert withdrawn.status_code == 200, withdrawn.text
    assert _post(client, world, path, withdrawal, idem=k).json() == withdrawn.json()
    again = _post(client, world, path, {"purpose": "share_with_merchants", "granted": True})
    assert again.status_code == 200, again.text

    state = _get(client, world, path).json()
    current = {c["purpose"]: (c["granted"], c["channel"]) for c in state["current"]}
    assert current == {"marketing_sms": (False, "wechat_mini"), "personalisation": (True, "front_desk"),
                       "share_with_merchants": (True, "api")}
    assert [(h["purpose"], h["granted"]) for h in state["history"]] == [
        ("marketing_sms", True), ("personalisation", True), ("marketing_sms", False), ("share_with_merchants", True)]
    assert [c["purpose"] for c in state["current"]] == sorted(current)

    _error(_post(client, world, path, {"purpose": "telepathy", "granted": True}), 422, "invalid_request")


def test_member_status_moves_along_allowed_paths_only(client, world, runtime):
    member = _register(client, world, PHONE)
    mid = member["id"]
    for status in ("frozen", "active", "closed"):
        resp = _status(client, world, mid, status)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == status
    assert [a.data["to"] for a in _audits(runtime, world, "member.status", mid)] == ["frozen", "active", "closed"]

    err = _error(_status(client, world, mid, "active"), 409, "invalid_status_change")
    assert (err["data"]["from_status"], err["data"]["to_status"]) == ("closed", "active")
    assert _get(client, world, f"/v1/members/{mid}").json()["status"] == "closed"
    _error(client.patch(f"/v1/members/{mid}", json={"name": "复活"}, headers=world.headers(idem=key())), 409,
           "member_not_active")

    other = _register(client, world, "13900139000")
    _error(_status(client, world, other["id"], "merged"), 422, "invalid_request")
    for api_key in (world.analyst_key, world.coffee_cashier_key):
        _error(_status(client, world, other["id"], "frozen", api_key=api_key), 403, "permission_denied")
    assert _get(client, world, f"/v1/members/{other['id']}").json()["status"] == "active"


@pytest.mark.parametrize("method,path,body", [
    ("post", "/v1/members", {"phone": PHONE}),
    ("patch", "/v1/members/{id}", {"region": "330100"}),
    ("post", "/v1/members/{id}/identities", {"kind": "card", "value": "VIP42"}),
    ("post", "/v1/members/{id}/status", {"status": "frozen", "reason": "风控"}),
    ("post", "/v1/members/{id}/consents", {"purpose": "marketing_sms", "granted": True}),
    ("post", "/v1/members/{id}/points/grants", {"points": 10, "issuer_entity_id": 0, "memo": "补发"}),
    ("post", "/v1/members/merge", {"source_member_id": 0, "target_member_id": 0, "reason": "重复"}),
])
def test_every_member_write_needs_an_idempotency_key(client, world, runtime, method, path, body):
    member = _register(client, world, "13900139000")
    before = _counts(runtime)
    resp = client.request(method.upper(), path.format(id=member["id"]), json=body, headers=world.headers())
    _error(resp, 422, "idempotency_key_required")
    assert _counts(runtime) == before


# --- member codes ------------------------------------------------------------------------------------------


def test_a_member_code_resolves_at_the_pos_while_it_is_fresh(client, world, runtime):
    runtime.clock = lambda: T0
    member = _register(client, world, PHONE, name="张三")
    issued = _post(client, world, f"/v1/members/{member['id']}/code", {})
    assert issued.status_code == 200, issued.text
    code = issued.json()
    lifetime = datetime.fromisoformat(code["expires_at"]) - datetime.fromisoformat(code["issued_at"])
    assert lifetime == timedelta(seconds=60)

    def resolve():
        return _post(client, world, "/v1/member-codes/resolve", {"code": code["code"]},
                     api_key=world.coffee_cashier_key)

    got = resolve()
    assert got.status_code == 200, got.text
    assert (got.json()["id"], got.json()["phone"], got.json()["name"]) == (member["id"], "138****8000", "张*")
    runtime.clock = lambda: T0 + timedelta(seconds=59)
    assert resolve().json()["id"] == member["id"]
    runtime.clock = lambda: T0 + timedelta(minutes=2)
    _error(resolve(), 400, "member_code_expired")
    # a fresh code works again
    code = _post(client, world, f"/v1/members/{member['id']}/code", {}).json()
    assert resolve().json()["id"] == member["id"]


def test_a_forged_member_code_is_refused(client, world, runtime, other):
    runtime.clock = lambda: T0
    member = _register(client, world, PHONE)
    victim = _register(client, world, "13900139000")
    code = _post(client, world, f"/v1/members/{member['id']}/code", {}).json()["code"]
    prefix, mid, epoch, issued, sig = code.split(".")
    forged = [
        f"{prefix}.{victim['id']}.{epoch}.{issued}.{sig}",            # someone else's id under my signature
        f"{prefix}.{mid}.{epoch}.{int(issued) + 600}.{sig}",          # stretched lifetime
        f"{prefix}.{mid}.{epoch}.{issued}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",
        "LT1.1.0.0.AAAA",
        "not a code",
    ]
    for bad in forged:
        _error(_post(client, world, "/v1/member-codes/resolve", {"code": bad}), 400, "member_code_invalid")
    # a genuine code of this tenant means nothing in another tenant
    _error(_post(client, other, "/v1/member-codes/resolve", {"code": code}), 400, "member_code_invalid")
    assert _post(client, world, "/v1/member-codes/resolve", {"code": code}).json()["id"] == member["id"]


def test_freezing_a_member_stops_the_code_on_screen(client, world, runtime):
    runtime.clock = lambda: T0
    member = _register(client, world, PHONE)
    old = _post(client, world, f"/v1/members/{member['id']}/code", {}).json()["code"]
    assert _status(client, world, member["id"], "frozen").status_code == 200
    _error(_post(client, world, "/v1/member-codes/resolve", {"code": old}), 400, "member_code_invalid")
    _error(_post(client, world, f"/v1/members/{member['id']}/code", {}), 409, "member_not_active")
    assert _status(client, world, member["id"], "active").status_code == 200
    # unfreezing does not bring the old code back
    _error(_post(client, world, "/v1/member-codes/resolve", {"code": old}), 400, "member_code_invalid")
    new = _post(client, world, f"/v1/members/{member['id']}/code", {}).json()["code"]
    assert _post(client, world, "/v1/member-codes/resolve", {"code": new}).json()["id"] == member["id"]


# --- merging ----------------------------------------------------------------------------------------------


def test_merging_two_members_moves_everything_to_the_target(client, world, runtime):
    runtime.clock = lambda: T0
    target = _register(client, world, PHONE, name="张三", identities=[{"kind": "card", "value": "VIP0001"}])
    source = _register(client, world, "13900139000", name="张三", identities=[
        {"kind": "plate", "value": "粤BD12345"}, {"kind": "wechat_openid", "value": OPENID}])
    t_grant = _grant(client, world, target["id"], 100, expires_at=T0 + timedelta(days=200))
    s_grant = _grant(client, world, source["id"], 300, expires_at=T0 + timedelta(days=90), issuer=world.hotel_entity)
    s_grant2 = _grant(client, world, source["id"], 20, expires_at=T0 + timedelta(days=300))
    source_page = _get(client, world, f"/v1/members/{source['id']}/history").json()
    source_history = [i["posting_id"] for i in source_page["items"]]
    assert len(source_history) == 2

    k = key()
    body = {"source_member_id": source["id"], "target_member_id": target["id"], "reason": "同一人两个账号"}
    merged = _post(client, world, "/v1/members/merge", body, idem=k)
    assert merged.status_code == 200, merged.text
    result = merged.json()
    assert (result["source_member_id"], result["identities_moved"], result["lots_moved"]) == (source["id"], 3, 2)
    assert len(result["entry_ids"]) == 1
    assert result["target"]["id"] == target["id"]
    assert result["target"]["phone"] == "138****8000"  # the target keeps its own primary phone
    assert sorted(i["kind"] for i in result["target"]["identities"]) == [
        "card", "phone", "phone", "plate", "wechat_openid"]
    assert [i["is_primary"] for i in result["target"]["identities"] if i["kind"] == "phone"] == [True, False]

    # a replay answers the same and merges nothing twice
    assert _post(client, world, "/v1/members/merge", body, idem=k).json() == result

    tombstone = _get(client, world, f"/v1/members/{source['id']}").json()
    assert (tombstone["status"], tombstone["merged_into_id"]) == ("merged", target["id"])
    assert tombstone["identities"] == []

    balances = _get(client, world, f"/v1/members/{target['id']}/balances").json()
    assert balances["points"] == 420
    assert _get(client, world, f"/v1/members/{source['id']}/balances").json()["points"] == 0
    lots = _get(client, world, f"/v1/members/{target['id']}/lots").json()
    assert [(lot["remaining"], lot["issuer_entity_id"]) for lot in lots] == [
        (300, world.hotel_entity), (100, world.park_entity), (20, world.park_entity)]
    assert {lot["id"] for lot in lots} == {g["lots"][0]["lot_id"] for g in (t_grant, s_grant, s_grant2)}
    assert _get(client, world, f"/v1/members/{source['id']}/lots").json() == []

    history = _get(client, world, f"/v1/members/{target['id']}/history", params={"limit": 200}).json()
    seen = {i["posting_id"] for i in history["items"]}
    assert set(source_history) <= seen
    assert {s_grant["entry_id"], s_grant2["entry_id"], t_grant["entry_id"], *result["entry_ids"]} == {
        i["entry_id"] for i in history["items"]}

    for kind, value in (("phone", "139 0013 9000"), ("plate", "粤BD12345"), ("wechat_openid", OPENID)):
        assert _lookup(client, world, kind, value).json()["id"] == target["id"], kind

    (audit,) = _audits(runtime, world, "member.merge", target["id"])
    assert audit.id == result["audit_id"]
    assert (audit.data["source_member_id"], audit.data["reason"]) == (source["id"], "同一人两个账号")

    # the merged member can spend what it brought along
    spent = _post(client, world, f"/v1/members/{target['id']}/points/deductions", {"points": 350, "memo": "兑换"})
    assert spent.status_code == 201, spent.text
    assert _get(client, world, f"/v1/members/{target['id']}/balances").json()["points"] == 70

    with runtime.transaction() as tx:
        checks = verify(tx.session, world.tenant_id)
        assert checks and all(c.ok for c in checks), [(c.name, c.violations) for c in checks if not c.ok]
        source_accounts = tx.session.scalars(select(Account.balance).where(
            Account.tenant_id == world.tenant_id, Account.owner_type == "member",
            Account.owner_id == source["id"])).all()
        assert source_accounts and set(source_accounts) == {0}

    # a tombstone can be merged no more and shows no code
    again = _post(client, world, "/v1/members/merge", {**body, "reason": "再来一次"})
    _error(again, 409, "cannot_merge")
    _error(_post(client, world, f"/v1/members/{source['id']}/code", {}), 409, "member_not_active")
    assert len(_audits(runtime, world, "member.merge", target["id"])) == 1


def test_a_member_merged_earlier_follows_its_survivor_into_the_next_merge(client, world, runtime):
    runtime.clock = lambda: T0
    first = _register(client, world, "13700137000")
    middle = _register(client, world, "13900139000")
    last = _register(client, world, PHONE)
    oldest = _grant(client, world, first["id"], 40)
    for source, target in ((first, middle), (middle, last)):
        resp = _post(client, world, "/v1/members/merge",
                     {"source_member_id": source["id"], "target_member_id": target["id"], "reason": "重复"})
        assert resp.status_code == 200, resp.text
    for m in (first, middle):
        got = _get(client, world, f"/v1/members/{m['id']}").json()
        assert (got["status"], got["merged_into_id"]) == ("merged", last["id"])
    assert _lookup(client, world, "phone", "13700137000").json()["id"] == last["id"]
    assert _get(client, world, f"/v1/members/{last['id']}/balances").json()["points"] == 40
    history = _get(client, world, f"/v1/members/{last['id']}/history", params={"limit": 200}).json()["items"]
    assert oldest["entry_id"] in {i["entry_id"] for i in history}
    with runtime.transaction() as tx:
        assert all(c.ok for c in verify(tx.session, world.tenant_id))


def test_a_member_code_issued_before_a_merge_stops_working(client, world, runtime):
    runtime.clock = lambda: T0
    target = _register(client, world, PHONE)
    source = _register(client, world, "13900139000")
    codes = {m["id"]: _post(client, world, f"/v1/members/{m['id']}/code", {}).json()["code"] for m in (target, source)}
    merged = _post(client, world, "/v1/members/merge",
                   {"source_member_id": source["id"], "target_member_id": target["id"], "reason": "重复"})
    assert merged.status_code == 200, merged.text
    for code in codes.values():
        _error(_post(client, world, "/v1/member-codes/resolve", {"code": code}), 400, "member_code_invalid")


def test_a_member_cannot_be_merged_into_itself(client, world, runtime):
    member = _register(client, world, PHONE)
    _grant(client, world, member["id"], 50)
    before = _counts(runtime)
    err = _error(_post(client, world, "/v1/members/merge",
                       {"source_member_id": member["id"], "target_member_id": member["id"], "reason": "手滑"}),
                 409, "cannot_merge")
    assert err["message_en"].startswith("These members cannot be merged")
    assert _counts(runtime) == before
    assert _get(client, world, f"/v1/members/{member['id']}").json()["status"] == "active"


def test_only_an_operator_admin_merges_members(client, world):
    a, b = _register(client, world, PHONE), _register(client, world, "13900139000")
    body = {"source_member_id": a["id"], "target_member_id": b["id"], "reason": "重复"}
    for api_key in (world.analyst_key, world.coffee_manager_key, world.coffee_cashier_key):
        _error(_post(client, world, "/v1/members/merge", body, api_key=api_key), 403, "permission_denied")
    assert _get(client, world, f"/v1/members/{a['id']}").json()["status"] == "active"


# --- balances, lots and history -------------------------------------------------------------------------------


def test_balances_lots_and_history_page_through_every_posting(client, world, runtime):
    runtime.clock = lambda: T0
    member = _register(client, world, PHONE)
    mid = member["id"]
    late = _grant(client, world, mid, 100, expires_at=T0 + timedelta(days=300), memo="生日礼")
    soon = _grant(client, world, mid, 200, expires_at=T0 + timedelta(days=20), memo="投诉补偿")
    middle = _grant(client, world, mid, 50, expires_at=T0 + timedelta(days=100), issuer=world.hotel_entity)
    spent = _post(client, world, f"/v1/members/{mid}/points/deductions", {"points": 120, "memo": "兑换饮品"})
    assert spent.status_code == 201, spent.text
    default_expiry = _grant(client, world, mid, 7)

    balances = _get(client, world, f"/v1/members/{mid}/balances").json()
    assert (balances["points"], balances["points_pending"], balances["points_expiring_30d"]) == (237, 0, 80)

    lots = _get(client, world, f"/v1/members/{mid}/lots").json()
    assert [lot["id"] for lot in lots] == [g["lots"][0]["lot_id"] for g in (soon, middle, late, default_expiry)]
    assert [lot["remaining"] for lot in lots] == [80, 50, 100, 7]
    expiries = [datetime.fromisoformat(lot["expires_at"]) for lot in lots]
    assert expiries == sorted(expiries)
    assert expiries[-1].replace(tzinfo=UTC) == datetime(2027, 3, 1, 9, 30, tzinfo=UTC)  # 12 months by default

    everything = _get(client, world, f"/v1/members/{mid}/history", params={"limit": 200}).json()
    assert everything["next_cursor"] is None
    assert len(everything["items"]) == 5
    assert [i["entry_id"] for i in everything["items"]] == [
        default_expiry["entry_id"], spent.json()["entry_id"], middle["entry_id"], soon["entry_id"], late["entry_id"]]
    assert [i["amount"] for i in everything["items"]] == [7, -120, 50, 200, 100]

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = _get(client, world, f"/v1/members/{mid}/history", params=params)
        assert page.status_code == 200, page.text
        pages.append([i["posting_id"] for i in page.json()["items"]])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "the cursor never ends"
    assert [len(p) for p in pages] == [2, 2, 1]
    flat = [pid for page in pages for pid in page]
    assert len(flat) == len(set(flat))
    assert flat == [i["posting_id"] for i in everything["items"]]

    _error(_get(client, world, f"/v1/members/{mid}/history", params={"cursor": "garbage!"}), 422, "invalid_request")
    _error(_get(client, world, f"/v1/members/{mid}/history", params={"limit": 0}), 422, "invalid_request")


def test_deducting_more_points_than_the_balance_is_refused(client, world, runtime):
    member = _register(client, world, PHONE)
    _grant(client, world, member["id"], 300)
    before = _counts(runtime)
    k = key()
    err = _error(_post(client, world, f"/v1/members/{member['id']}/points/deductions",
                       {"points": 1000, "memo": "超额兑换"}, idem=k, lang="en"), 409, "insufficient_balance")
    assert err["data"] == {"available": 300, "requested": 1000}
    assert err["message"] == "Insufficient balance: 300 available, 1000 requested"
    assert err["message_zh"] == "余额不足：可用 300，需要 1000"
    after = _counts(runtime)
    assert {t: n for t, n in after.items() if t != "idempotency_keys"} == {
        t: n for t, n in before.items() if t != "idempotency_keys"}
    assert _get(client, world, f"/v1/members/{member['id']}/balances").json()["points"] == 300

    # the key keeps failing the same way after a top-up
    _grant(client, world, member["id"], 5000)
    again = _error(_post(client, world, f"/v1/members/{member['id']}/points/deductions",
                         {"points": 1000, "memo": "超额兑换"}, idem=k), 409, "insufficient_balance")
    assert again["data"] == {"available": 300, "requested": 1000}
    assert _get(client, world, f"/v1/members/{member['id']}/balances").json()["points"] == 5300


def test_a_client_key_can_never_collide_with_the_keys_a_merge_derives(client, world, runtime):
    runtime.clock = lambda: T0
    target = _register(client, world, PHONE)
    source = _register(client, world, "13900139001")
    grant = {"points": 10, "issuer_entity_id": world.park_entity, "memo": "补发积分",
             "expires_at": (T0 + timedelta(days=30)).isoformat()}
    # keys in the system's reserved space are refused at the edge
    reserved = _post(client, world, f"/v1/members/{source['id']}/points/grants", grant, idem="~merge:abc:POINTS")
    assert reserved.status_code == 422 and reserved.json()["error"]["code"] == "idempotency_key_required"
    # a look-alike client key does not block the merge that follows
    assert _post(client, world, f"/v1/members/{source['id']}/points/grants", grant, idem="merge:abc:POINTS").status_code == 201
    merged = _post(client, world, "/v1/members/merge", {"source_member_id": source["id"],
                                                        "target_member_id": target["id"], "reason": "同一人"}, idem="abc")
    assert merged.status_code == 200, merged.text
