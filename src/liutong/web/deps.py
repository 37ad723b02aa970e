"""What every endpoint shares: the unit of work with the caller's identity, and the key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Header, Request
from fastapi.security import HTTPBearer

from liutong.bootstrap import Tx
from liutong.kit.idempotency import check_key
from liutong.organisation.auth import Permission, Principal, authenticate
from liutong.organisation.service import act_in_tenant

#: Platform staff name the tenant they act in; every other key is bound to its own tenant.
TENANT_HEADER = "x-liutong-tenant"

#: Declares the bearer scheme in the OpenAPI document; authentication itself happens in
#: ``api_call`` inside the request's transaction.
bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer lt_<prefix>_<secret>`")


@contextmanager
def api_call(request: Request, permission: Permission) -> Iterator[tuple[Tx, Principal]]:
    """One transaction for the whole request: authenticate, authorise, then the service."""
    with request.app.state.runtime.transaction() as tx:
        principal = authenticate(tx, request.headers.get("authorization"))
        tenant_code = request.headers.get(TENANT_HEADER)
        if tenant_code:
            principal = act_in_tenant(tx, principal, tenant_code)
        principal.require(permission)
        yield tx, principal


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", description="每个写请求唯一 / unique per write")] = None,
) -> str:
    return check_key(key)


