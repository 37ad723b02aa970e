"""The organisation API as an operator, a merchant, a cashier and the platform use it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from liutong.organisation.models import ApiKey, LegalEntity, Role, VenueFormat
from tests.conftest import build_world, key


def _post(client, world, path, body, *, api_key=None, idem=None, lang=None):
    return client.post(path, json=body, headers=world.headers(api_key, idem=idem or key(), lang=lang))


def _get(client, world, path, *, api_key=None, lang=None):
    return client.get(path, headers=world.headers(api_key, lang=lang))


def _error(resp, status, code):
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code, err
    return err


def _ids(resp):
    assert resp.status_code == 200, resp.text
    return [row["id"] for row in resp.json()]


def _all_counts(runtime):
    import liutong.models  # noqa: F401  (every table in the metadata)
    from liutong.db import metadata

    with runtime.transaction() as tx:
        return {t.name: tx.session.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


def _count(runtime, model, **where):
    with runtime.transaction() as tx:
        stmt = select(func.count()).select_from(model)
        for column, value in where.items():
            stmt = stmt.where(getattr(model, column) == value)
        return tx.session.scalar(stmt)


@pytest.fixture
def platform_key(runtime):
    from liutong.organisation.schemas import ApiKeyCreate
    from liutong.organisation.service import issue_api_key

    with runtime.transaction() as tx:
        return issue_api_key(tx, tenant_id=None, data=ApiKeyCreate(name="platform", role=Role.platform_admin),
                             key=key()).key


@pytest.fixture
def other(runtime):
    """A second tenant on the same platform, set up the same way."""
    with runtime.transaction() as tx:
        return build_world(tx)


# --- setting up a resort ----------------------------------------------------------------------------


def test_an_operator_sets_up_a_resort_over_the_api(client, world):
    entity = _post(client, world, "/v1/entities",
                   {"code": "resort", "name": "度假区酒店管理有限公司", "credit_code": "91330100MA2B3C4D5E"})
    assert entity.status_code == 201, entity.text
    entity = entity.json()
    assert entity["credit_code"] == "91330100MA2B3C4D5E"

    venues = {}
    for fmt in VenueFormat:
        resp = _post(client, world, "/v1/venues",
                     {"code": f"v-{fmt.value}", "name": f"业态 {fmt.value}", "format": fmt.value,
                      "entity_id": entity["id"]})
        assert resp.status_code == 201, resp.text
        assert resp.json()["format"] == fmt.value
        venues[fmt.value] = resp.json()["id"]

    hotel = _post(client, world, "/v1/merchants",
                  {"code": "grand-hotel", "name": "湖畔大酒店", "mode": "self_operated", "entity_id": entity["id"],
                   "venue_id": venues["hotel"]})
    tenant_shop = _post(client, world, "/v1/merchants",
                        {"code": "tea-house", "name": "茶馆（联营）", "mode": "third_party",
                         "entity_id": world.mall_entity, "venue_id": venues["dining"]})
    assert (hotel.status_code, tenant_shop.status_code) == (201, 201), (hotel.text, tenant_shop.text)
    assert (hotel.json()["mode"], tenant_shop.json()["mode"]) == ("self_operated", "third_party")

    store = _post(client, world, "/v1/stores",
                  {"code": "hotel-lobby", "name": "大堂", "merchant_id": hotel.json()["id"]})
    assert store.status_code == 201, store.text
    terminals = {}
    for kind in ("pos", "gate", "front_desk", "parking_gate"):
        resp = _post(client, world, "/v1/terminals", {"code": f"lobby-{kind}", "kind": kind,
                                                      "store_id": store.json()["id"]})
        assert resp.status_code == 201, resp.text
        # the merchant of a terminal is its store's merchant, not something the caller says
        assert resp.json()["merchant_id"] == hotel.json()["id"]
        terminals[kind] = resp.json()["id"]

    staff = _post(client, world, "/v1/staff",
                  {"username": "lobby.manager", "display_name": "王经理", "password": "correct horse battery",
                   "role": "merchant_manager", "merchant_id": hotel.json()["id"]})
    assert staff.status_code == 201, staff.text
    assert staff.json()["merchant_id"] == hotel.json()["id"] and staff.json()["active"] is True
    assert "password" not in staff.text and "scrypt" not in staff.text

    pos_key = _post(client, world, "/v1/api-keys",
                    {"name": "大堂 POS", "role": "cashier", "terminal_id": terminals["pos"]})
    assert pos_key.status_code == 201, pos_key.text
    assert pos_key.json()["merchant_id"] == hotel.json()["id"]
    assert pos_key.json()["terminal_id"] == terminals["pos"]

    assert entity["id"] in _ids(_get(client, world, "/v1/entities"))
    assert set(venues.values()) <= set(_ids(_get(client, world, "/v1/venues")))
    assert {hotel.json()["id"], tenant_shop.json()["id"]} <= set(_ids(_get(client, world, "/v1/merchants")))
    assert store.json()["id"] in _ids(_get(client, world, "/v1/stores"))
    assert set(terminals.values()) <= set(_ids(_get(client, world, "/v1/terminals")))
    assert pos_key.json()["id"] in _ids(_get(client, world, "/v1/api-keys"))
    assert _get(client, world, "/v1/merchants/%d" % hotel.json()["id"]).json() == hotel.json()


# --- idempotency ------------------------------------------------------------------------------------------


def _valid_bodies(world):
    return {
        "/v1/entities": {"code": "new-co", "name": "新公司"},
        "/v1/venues": {"code": "new-venue", "name": "新场馆", "format": "theatre", "entity_id": world.park_entity},
        "/v1/merchants": {"code": "new-shop", "name": "新商户", "mode": "third_party",
                          "entity_id": world.mall_entity, "venue_id": world.mall_venue},
        "/v1/stores": {"code": "new-store", "name": "新门店", "merchant_id": world.mall_coffee},
        "/v1/terminals": {"code": "new-pos", "kind": "pos", "store_id": world.coffee_store},
        "/v1/staff": {"username": "new.staff", "display_name": "新员工", "password": "long enough password",
                      "role": "operator_analyst"},
        "/v1/api-keys": {"name": "报表", "role": "operator_analyst"},
    }


@pytest.mark.parametrize("path", ["/v1/entities", "/v1/venues", "/v1/merchants", "/v1/stores", "/v1/terminals",
                                  "/v1/staff", "/v1/api-keys"])
def test_every_organisation_write_needs_an_idempotency_key(client, world, path):
    body = _valid_bodies(world)[path]
    missing = client.post(path, json=body, headers=world.headers())
    err = _error(missing, 422, "idempotency_key_required")
    assert err["message_zh"] and err["message_en"]
    too_long = client.post(path, json=body, headers=world.headers(idem="k" * 129))
    _error(too_long, 422, "idempotency_key_required")
    # the same body with a key goes through: only the key was missing
    assert _post(client, world, path, body).status_code == 201


def test_creating_a_tenant_needs_an_idempotency_key_too(client, world, platform_key):
    body = {"code": "new-tenant", "name": "新租户"}
    _error(client.post("/v1/tenants", json=body, headers=world.headers(platform_key)), 422, "idempotency_key_required")
    assert _post(client, world, "/v1/tenants", body, api_key=platform_key).status_code == 201


def test_a_replayed_key_returns_the_same_answer_and_creates_nothing_twice(client, world, runtime):
    k = key()
    body = {"code": "replayed", "name": "重放公司"}
    before = _count(runtime, LegalEntity, tenant_id=world.tenant_id)
    first = _post(client, world, "/v1/entities", body, idem=k)
    again = _post(client, world, "/v1/entities", body, idem=k)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert _count(runtime, LegalEntity, tenant_id=world.tenant_id) == before + 1

    k = key()
    body = {"code": "replayed-shop", "name": "重放商户", "mode": "third_party", "entity_id": world.mall_entity,
            "venue_id": world.mall_venue}
    first = _post(client, world, "/v1/merchants", body, idem=k)
    again = _post(client, world, "/v1/merchants", body, idem=k)
    assert again.json() == first.json()
    assert [m["code"] for m in _get(client, world, "/v1/merchants").json()].count("replayed-shop") == 1


def test_the_same_key_with_another_body_is_a_conflict(client, world, runtime):
    k = key()
    assert _post(client, world, "/v1/entities", {"code": "first", "name": "第一"}, idem=k).status_code == 201
    before = _count(runtime, LegalEntity, tenant_id=world.tenant_id)
    _error(_post(client, world, "/v1/entities", {"code": "second", "name": "第二"}, idem=k), 409,
           "idempotency_conflict")
    # the same key for another kind of write is a conflict as well
    _error(_post(client, world, "/v1/venues", {"code": "second", "name": "第二", "format": "mall",
                                               "entity_id": world.mall_entity}, idem=k), 409, "idempotency_conflict")
    assert _count(runtime, LegalEntity, tenant_id=world.tenant_id) == before
    assert "second" not in [v["code"] for v in _get(client, world, "/v1/venues").json()]


def test_idempotency_keys_are_kept_per_tenant(client, world, other):
    k = key()
    body = {"code": "shared-code", "name": "同名公司"}
    mine = _post(client, world, "/v1/entities", body, idem=k)
    theirs = _post(client, other, "/v1/entities", body, idem=k)
    assert mine.status_code == theirs.status_code == 201
    # the other tenant gets its own entity, not a replay of ours
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["id"] in _ids(_get(client, other, "/v1/entities"))
    assert theirs.json()["id"] not in _ids(_get(client, world, "/v1/entities"))


# --- API keys and authentication ----------------------------------------------------------------------------


def test_a_new_api_key_is_shown_once_and_then_authenticates(client, world, runtime):
    k = key()
    issued = _post(client, world, "/v1/api-keys", {"name": "BI 报表", "role": "operator_analyst"}, idem=k)
    assert issued.status_code == 201, issued.text
    new_key = issued.json()["key"]
    assert new_key.startswith(f"lt_{issued.json()['prefix']}_")

    replay = _post(client, world, "/v1/api-keys", {"name": "BI 报表", "role": "operator_analyst"}, idem=k)
    assert replay.status_code == 201
    assert replay.json()["id"] == issued.json()["id"]
    assert replay.json()["key"] is None
    assert _count(runtime, ApiKey, tenant_id=world.tenant_id, name="BI 报表") == 1
    listed = {row["id"]: row for row in _get(client, world, "/v1/api-keys").json()}
    assert listed[issued.json()["id"]]["key"] is None
    with runtime.transaction() as tx:  # only the hash of the secret is kept
        row = tx.session.get(ApiKey, issued.json()["id"])
        assert new_key.split("_", 2)[2] not in row.secret_hash

    me = _get(client, world, "/v1/tenant", api_key=new_key)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == world.tenant_id
    # it carries the role it was issued with: an analyst
    _error(_post(client, world, "/v1/entities", {"code": "nope", "name": "不行"}, api_key=new_key), 403,
           "permission_denied")


@pytest.mark.parametrize("authorization", [
    None,
    "",
    "Bearer ",
    "Bearer not-a-key",
    "Bearer lt_000000000000_doesnotexist",
    "wrong-secret",
])
def test_a_request_without_a_valid_key_is_not_authenticated(client, world, authorization):
    if authorization == "wrong-secret":
        prefix = world.operator_key.split("_", 2)[1]
        authorization = f"Bearer lt_{prefix}_{'x' * 43}"
    headers = {} if authorization is None else {"Authorization": authorization}
    err = _error(client.get("/v1/merchants", headers=headers), 401, "not_authenticated")
    assert err["message_zh"] and err["message_en"]
    write = client.post("/v1/entities", json={"code": "x", "name": "x"}, headers={**headers, "Idempotency-Key": key()})
    _error(write, 401, "not_authenticated")


# --- tenant and merchant scoping ------------------------------------------------------------------------------


def test_another_tenants_records_are_never_visible(client, world, other):
    _error(_get(client, world, f"/v1/merchants/{other.mall_coffee}"), 404, "not_found")
    assert _get(client, other, f"/v1/merchants/{other.mall_coffee}").status_code == 200
    assert not set(_ids(_get(client, world, "/v1/merchants"))) & {other.mall_coffee, other.mall_noodles,
                                                                 other.park_tickets}
    assert other.park_entity not in _ids(_get(client, world, "/v1/entities"))
    assert other.coffee_store not in _ids(_get(client, world, "/v1/stores"))
    assert other.coffee_terminal not in _ids(_get(client, world, "/v1/terminals"))
    assert _get(client, world, "/v1/tenant").json()["id"] == world.tenant_id


@pytest.mark.parametrize("path,body", [
    ("/v1/venues", lambda w, o: {"code": "x-venue", "name": "越界", "format": "hotel", "entity_id": o.park_entity}),
    ("/v1/merchants", lambda w, o: {"code": "x-shop", "name": "越界", "mode": "third_party",
                                    "entity_id": w.mall_entity, "venue_id": o.mall_venue}),
    ("/v1/merchants", lambda w, o: {"code": "x-shop", "name": "越界", "mode": "third_party",
                                    "entity_id": o.mall_entity, "venue_id": w.mall_venue}),
    ("/v1/stores", lambda w, o: {"code": "x-store", "name": "越界", "merchant_id": o.mall_coffee}),
    ("/v1/terminals", lambda w, o: {"code": "x-pos", "kind": "pos", "store_id": o.coffee_store}),
    ("/v1/api-keys", lambda w, o: {"name": "越界", "role": "merchant_manager", "merchant_id": o.mall_coffee}),
    ("/v1/api-keys", lambda w, o: {"name": "越界", "role": "cashier", "terminal_id": o.coffee_terminal}),
    ("/v1/staff", lambda w, o: {"username": "x.staff", "display_name": "越界", "password": "long enough pw",
                                "role": "merchant_manager", "merchant_id": o.mall_coffee}),
])
def test_a_reference_to_another_tenant_is_invalid(client, world, other, runtime, path, body):
    before = _all_counts(runtime)
    err = _error(_post(client, world, path, body(world, other)), 400, "invalid_reference")
    assert err["message_zh"] and err["message_en"]
    assert _all_counts(runtime) == before
    listing = {"/v1/venues": "/v1/venues", "/v1/merchants": "/v1/merchants", "/v1/stores": "/v1/stores",
               "/v1/terminals": "/v1/terminals"}.get(path)
    if listing:
        assert not [r for r in _get(client, world, listing).json() if r["code"].startswith("x-")]


def test_a_merchant_manager_sees_only_its_own_merchant(client, world):
    coffee = world.coffee_manager_key
    assert _ids(_get(client, world, "/v1/merchants", api_key=coffee)) == [world.mall_coffee]
    assert _ids(_get(client, world, "/v1/stores", api_key=coffee)) == [world.coffee_store]
    assert _ids(_get(client, world, "/v1/terminals", api_key=coffee)) == [world.coffee_terminal]
    assert {k["merchant_id"] for k in _get(client, world, "/v1/api-keys", api_key=coffee).json()} == {world.mall_coffee}
    assert _get(client, world, f"/v1/merchants/{world.mall_coffee}", api_key=coffee).status_code == 200
    _error(_get(client, world, f"/v1/merchants/{world.mall_noodles}", api_key=coffee), 404, "not_found")
    _error(_get(client, world, f"/v1/merchants/{world.park_tickets}", api_key=coffee), 404, "not_found")

    noodles = world.noodles_manager_key
    assert _ids(_get(client, world, "/v1/merchants", api_key=noodles)) == [world.mall_noodles]
    noodle_stores = _get(client, world, "/v1/stores", api_key=noodles).json()
    assert [s["merchant_id"] for s in noodle_stores] == [world.mall_noodles]
    assert _ids(_get(client, world, "/v1/terminals", api_key=noodles)) == []

    # the operator sees all three merchants
    everyone = set(_ids(_get(client, world, "/v1/merchants")))
    assert {world.mall_coffee, world.mall_noodles, world.park_tickets} <= everyone
    # a merchant manager does not set up the organisation
    _error(_post(client, world, "/v1/stores", {"code": "coffee-2", "name": "二号店", "merchant_id": world.mall_coffee},
                 api_key=coffee), 403, "permission_denied")


def test_a_cashier_cannot_create_merchants(client, world, runtime):
    body = {"code": "cashier-shop", "name": "收银员开的店", "mode": "third_party", "entity_id": world.mall_entity,
            "venue_id": world.mall_venue}
    before = _all_counts(runtime)
    _error(_post(client, world, "/v1/merchants", body, api_key=world.coffee_cashier_key), 403, "permission_denied")
    assert _all_counts(runtime) == before
    _error(_get(client, world, "/v1/merchants", api_key=world.coffee_cashier_key), 403, "permission_denied")
    assert "cashier-shop" not in [m["code"] for m in _get(client, world, "/v1/merchants").json()]


def test_an_analyst_reads_but_does_not_write(client, world, runtime):
    analyst = world.analyst_key
    for path in ("/v1/entities", "/v1/venues", "/v1/merchants", "/v1/stores", "/v1/terminals", "/v1/api-keys",
                 "/v1/tenant"):
        assert _get(client, world, path, api_key=analyst).status_code == 200, path
    before = _all_counts(runtime)
    for path, body in _valid_bodies(world).items():
        _error(_post(client, world, path, body, api_key=analyst), 403, "permission_denied")
    assert _all_counts(runtime) == before
    assert "new-co" not in [e["code"] for e in _get(client, world, "/v1/entities").json()]


def test_only_a_platform_admin_creates_tenants(client, world, platform_key):
    body = {"code": "lakeside", "name": "湖滨文旅"}
    for api_key in (world.operator_key, world.analyst_key, world.coffee_manager_key, world.coffee_cashier_key):
        _error(_post(client, world, "/v1/tenants", body, api_key=api_key), 403, "permission_denied")

    k = key()
    created = _post(client, world, "/v1/tenants", body, api_key=platform_key, idem=k)
    assert created.status_code == 201, created.text
    assert (created.json()["code"], created.json()["timezone"]) == ("lakeside", "Asia/Shanghai")
    assert _post(client, world, "/v1/tenants", body, api_key=platform_key, idem=k).json() == created.json()
    _error(_post(client, world, "/v1/tenants", {"code": "lakeside", "name": "另一个"}, api_key=platform_key), 409,
           "duplicate_code")
    # the platform key is bound to no tenant, so it cannot act inside one
    _error(_get(client, world, "/v1/tenant", api_key=platform_key), 403, "permission_denied")


def test_an_operator_cannot_mint_a_platform_key(client, world, runtime):
    before = _count(runtime, ApiKey, role="platform_admin")
    _error(_post(client, world, "/v1/api-keys", {"name": "提权", "role": "platform_admin"}), 403, "permission_denied")
    assert _count(runtime, ApiKey, role="platform_admin") == before


def test_merchant_keys_must_name_their_merchant(client, world):
    _error(_post(client, world, "/v1/api-keys", {"name": "无主", "role": "merchant_manager"}), 400,
           "invalid_reference")
    # a terminal of coffee cannot be given to a noodles key
    _error(_post(client, world, "/v1/api-keys", {"name": "错配", "role": "cashier", "merchant_id": world.mall_noodles,
                                                 "terminal_id": world.coffee_terminal}), 400, "invalid_reference")
    # operator-wide roles are not bound to a merchant
    _error(_post(client, world, "/v1/api-keys", {"name": "错配", "role": "operator_analyst",
                                                 "merchant_id": world.mall_coffee}), 400, "invalid_reference")


# --- malformed payloads, languages, duplicates --------------------------------------------------------------


@pytest.mark.parametrize("path,body,field", [
    ("/v1/venues", lambda w: {"code": "casino", "name": "赌场", "format": "casino", "entity_id": w.park_entity},
     "format"),
    ("/v1/entities", lambda w: {"code": "my park", "name": "空格"}, "code"),
    ("/v1/entities", lambda w: {"code": "", "name": "空"}, "code"),
    ("/v1/entities", lambda w: {"code": "bad-credit", "name": "信用代码", "credit_code": "123"}, "credit_code"),
    ("/v1/merchants", lambda w: {"code": "no-venue", "name": "缺字段", "mode": "third_party",
                                 "entity_id": w.mall_entity}, "venue_id"),
    ("/v1/merchants", lambda w: {"code": "bad-mode", "name": "模式", "mode": "franchise",
                                 "entity_id": w.mall_entity, "venue_id": w.mall_venue}, "mode"),
    ("/v1/stores", lambda w: {"name": "无编码", "merchant_id": w.mall_coffee}, "code"),
    ("/v1/terminals", lambda w: {"code": "kiosk", "kind": "kiosk", "store_id": w.coffee_store}, "kind"),
    ("/v1/staff", lambda w: {"username": "short.pw", "display_name": "短密码", "password": "1234",
                             "role": "operator_analyst"}, "password"),
    ("/v1/api-keys", lambda w: {"name": "无角色"}, "role"),
])
def test_malformed_payloads_are_refused_in_both_languages(client, world, path, body, field):
    zh = _error(_post(client, world, path, body(world)), 422, "invalid_request")
    assert zh["message"] == zh["message_zh"]
    assert zh["message_zh"].startswith("请求格式不正确") and field in zh["message_zh"]
    assert zh["message_en"].startswith("The request is malformed") and field in zh["message_en"]
    assert [f["loc"] for f in zh["data"]["fields"]] == [["body", field]]

    en = _error(_post(client, world, path, body(world), lang="en-US,en;q=0.9"), 422, "invalid_request")
    assert en["message"] == en["message_en"] == zh["message_en"]
    assert en["message_zh"] == zh["message_zh"]


def test_domain_errors_speak_the_callers_language(client, world):
    body = {"code": "park", "name": "重复"}
    zh = _error(_post(client, world, "/v1/entities", body), 409, "duplicate_code")
    en = _error(_post(client, world, "/v1/entities", body, lang="en"), 409, "duplicate_code")
    assert zh["message"] == zh["message_zh"] == "编码 park 已存在"
    assert en["message"] == en["message_en"] == "The code park is already in use"
    explicit_zh = _error(_post(client, world, "/v1/entities", body, lang="zh-CN"), 409, "duplicate_code")
    assert explicit_zh["message"] == "编码 park 已存在"


@pytest.mark.parametrize("path,body", [
    ("/v1/entities", lambda w: {"code": "park", "name": "另一个乐园公司"}),
    ("/v1/venues", lambda w: {"code": "mall", "name": "另一个商场", "format": "mall", "entity_id": w.mall_entity}),
    ("/v1/merchants", lambda w: {"code": "coffee", "name": "另一家咖啡", "mode": "third_party",
                                 "entity_id": w.mall_entity, "venue_id": w.mall_venue}),
    ("/v1/stores", lambda w: {"code": "coffee-1", "name": "重复门店", "merchant_id": w.mall_noodles}),
    ("/v1/terminals", lambda w: {"code": "coffee-pos-1", "kind": "pos", "store_id": w.coffee_store}),
])
def test_duplicate_codes_are_refused(client, world, path, body):
    before = _get(client, world, path).json()
    err = _error(_post(client, world, path, body(world)), 409, "duplicate_code")
    assert err["data"]["value"] == body(world)["code"]
    assert _get(client, world, path).json() == before


def test_codes_are_unique_within_a_tenant_only(client, world, other):
    # the second tenant was built with the very same codes; a new one can be used by both
    assert _post(client, world, "/v1/entities", {"code": "both", "name": "甲"}).status_code == 201
    assert _post(client, other, "/v1/entities", {"code": "both", "name": "乙"}).status_code == 201
    _error(_post(client, world, "/v1/entities", {"code": "both", "name": "甲二"}), 409, "duplicate_code")


def test_a_staff_username_is_taken_once(client, world):
    body = {"username": "front.desk", "display_name": "前台", "password": "long enough password",
            "role": "operator_analyst"}
    assert _post(client, world, "/v1/staff", body).status_code == 201
    _error(_post(client, world, "/v1/staff", body), 409, "duplicate_code")
