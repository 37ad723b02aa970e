"""Who is calling, and what their role lets them do.

API keys look like ``lt_<prefix>_<secret>``: the prefix finds the row, the secret is compared
with its stored SHA-256 in constant time. A key is bound to a tenant (platform keys are not),
and merchant and cashier keys to one merchant (and, for a terminal, to that terminal).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from liutong.errors import NotAuthenticated, PermissionDenied
from liutong.organisation.models import ApiKey, Role

if TYPE_CHECKING:
    from liutong.bootstrap import Tx


class Permission(StrEnum):
    platform_tenants = "platform.tenants"
    org_read = "org.read"
    org_write = "org.write"
    staff_write = "staff.write"
    members_read = "members.read"
    members_write = "members.write"
    members_reveal = "members.reveal"
    members_merge = "members.merge"
    ledger_read = "ledger.read"
    ledger_adjust = "ledger.adjust"
    program_write = "program.write"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.platform_admin: frozenset(P),
    Role.operator_admin: frozenset(P) - {P.platform_tenants},
    Role.operator_analyst: frozenset({P.org_read, P.members_read, P.ledger_read}),
    Role.merchant_manager: frozenset({P.org_read, P.members_read, P.members_write, P.ledger_read}),
    Role.cashier: frozenset({P.members_read, P.members_write, P.ledger_read}),
}
MERCHANT_ROLES = frozenset({Role.merchant_manager, Role.cashier})


@dataclass(frozen=True)
class Principal:
    key_id: int | None
    role: Role
    tenant_id: int | None
    merchant_id: int | None = None
    terminal_id: int | None = None
    name: str = ""

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}:{self.name}" if self.key_id else f"cli:{self.name or 'system'}"

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(permission=permission.value)

    def require_tenant(self) -> int:
        if self.tenant_id is None:
            raise PermissionDenied(permission="tenant")
        return self.tenant_id


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_material() -> tuple[str, str, str]:
    """(prefix, secret, the full key to hand out once)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return prefix, secret, f"lt_{prefix}_{secret}"


def hash_secret(secret: str) -> str:
    return _hash(secret)


def authenticate(tx: Tx, raw: str | None) -> Principal:
    if not raw:
        raise NotAuthenticated()
    token = raw.removeprefix("Bearer ").strip()
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "lt":
        raise NotAuthenticated()
    _, prefix, secret = parts
    key = tx.session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, _hash(secret)):
        raise NotAuthenticated()
    now = tx.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 300:
        # coarse on purpose: a busy terminal must not turn every request into a write
        tx.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return Principal(key_id=key.id, role=Role(key.role), tenant_id=key.tenant_id, merchant_id=key.merchant_id,
                     terminal_id=key.terminal_id, name=key.name)


def hash_password(password: str) -> str:
    """scrypt (n=2**14, r=8, p=1) with a random salt, stored as ``scrypt$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    scheme, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)
