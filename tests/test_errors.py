"""Every error has a stable code, a status and a message in Chinese and English."""

from __future__ import annotations

import re

from liutong.errors import LiutongError, catalogue


def test_every_error_code_is_unique_snake_case_with_both_messages():
    errors = catalogue()
    assert len(errors) >= 25
    for code, cls in errors.items():
        assert re.fullmatch(r"[a-z][a-z_]+", code), code
        assert cls.zh and cls.en and cls.zh != cls.en, code
        assert re.search(r"[\u4e00-\u9fff]", cls.zh), f"{code} has no Chinese message"
        assert 400 <= cls.status < 500, code


def test_malformed_payload_errors_are_422_and_broken_rules_are_not():
    errors = catalogue()
    for code in ("invalid_request", "invalid_phone", "invalid_plate", "invalid_id_card", "idempotency_key_required"):
        assert errors[code].status == 422
    for code in ("insufficient_balance", "duplicate_identity", "idempotency_conflict", "unbalanced_entry"):
        assert errors[code].status in (400, 409)


def test_a_remembered_error_is_rebuilt_with_its_code_and_data():
    err = LiutongError.rebuild("insufficient_balance", {"available": 5, "requested": 9})
    assert err.code == "insufficient_balance"
    assert "5" in err.message("zh") and "9" in err.message("en")


def test_unknown_tenant_or_missing_key_over_http_is_a_coded_401(client):
    for headers in ({}, {"Authorization": "Bearer lt_nope_nope"}, {"Authorization": "Basic abc"}):
        r = client.get("/v1/tenant", headers=headers)
        assert r.status_code == 401
        body = r.json()["error"]
        assert body["code"] == "not_authenticated"
        assert body["message_zh"] and body["message_en"]


def test_health_and_the_openapi_document_are_served(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/v1/members" in spec["paths"] and "/v1/members/{member_id}/history" in spec["paths"]
    docs = client.get("/docs").text
    assert "/static/swagger/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower() and "https://" not in docs


def test_platform_staff_act_inside_a_tenant_they_name_and_an_unknown_tenant_is_a_coded_404(client, runtime, world):
    from liutong.organisation import service as org
    from liutong.organisation.models import Role, Tenant
    from liutong.organisation.schemas import ApiKeyCreate
    from tests.conftest import key

    with runtime.transaction() as tx:
        platform = org.issue_api_key(tx, tenant_id=None, key=key(),
                                     data=ApiKeyCreate(name="support", role=Role.platform_admin)).key
        code = tx.session.get(Tenant, world.tenant_id).code
    auth = {"Authorization": f"Bearer {platform}"}
    assert client.get("/v1/merchants", headers={**auth, "X-Liutong-Tenant": code}).status_code == 200
    r = client.get("/v1/merchants", headers={**auth, "X-Liutong-Tenant": "no-such-group"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "tenant_not_found"
    # without naming a tenant, platform staff have no tenant to act in
    assert client.get("/v1/merchants", headers=auth).json()["error"]["code"] == "permission_denied"
    # a tenant's own key cannot be pointed at another tenant
    r = client.get("/v1/merchants", headers={**world.headers(), "X-Liutong-Tenant": "no-such-group"})
    assert r.status_code == 404
