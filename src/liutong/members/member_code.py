"""The rotating member code shown as a QR code in the member centre.

``LT1.<member id>.<epoch>.<issued at>.<signature>``, signed with HMAC-SHA256 under a key
derived for this purpose only. A POS resolves it back to the member while it is fresh
(``member_code_ttl_seconds``, default 60 s, plus a small clock skew). A screenshot replayed
after that, a code whose member has since bumped ``code_epoch`` (lost phone, merge, closure)
and any altered or forged code are rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from liutong.errors import MemberCodeExpired, MemberCodeInvalid

PREFIX = "LT1"
CLOCK_SKEW_SECONDS = 5


@dataclass(frozen=True)
class MemberCode:
    code: str
    member_id: int
    issued_at: datetime
    expires_at: datetime


def _signature(key: bytes, tenant_id: int, member_id: int, epoch: int, issued: int) -> str:
    msg = f"{tenant_id}.{member_id}.{epoch}.{issued}".encode()
    digest = hmac.new(key, msg, hashlib.sha256).digest()[:15]
    return base64.b32encode(digest).decode().rstrip("=")


def issue(key: bytes, *, tenant_id: int, member_id: int, epoch: int, now: datetime, ttl: int) -> MemberCode:
    issued = int(now.timestamp())
    sig = _signature(key, tenant_id, member_id, epoch, issued)
    code = f"{PREFIX}.{member_id}.{epoch}.{issued}.{sig}"
    return MemberCode(
        code=code,
        member_id=member_id,
        issued_at=datetime.fromtimestamp(issued, now.tzinfo),
        expires_at=datetime.fromtimestamp(issued + ttl, now.tzinfo),
    )


@dataclass(frozen=True)
class ParsedCode:
    member_id: int
    epoch: int
    issued: int
    signature: str


def parse(code: str) -> ParsedCode:
    parts = code.strip().split(".")
    if len(parts) != 5 or parts[0] != PREFIX or not all(p.isdigit() for p in parts[1:4]):
        raise MemberCodeInvalid()
    return ParsedCode(member_id=int(parts[1]), epoch=int(parts[2]), issued=int(parts[3]), signature=parts[4])


def verify(key: bytes, parsed: ParsedCode, *, tenant_id: int, current_epoch: int, now: datetime, ttl: int) -> None:
    """Raise unless ``parsed`` is authentic, of the member's current epoch and still fresh."""
    expected = _signature(key, tenant_id, parsed.member_id, parsed.epoch, parsed.issued)
    if not hmac.compare_digest(expected, parsed.signature) or parsed.epoch != current_epoch:
        raise MemberCodeInvalid()
    age = now.timestamp() - parsed.issued
    if age < -CLOCK_SKEW_SECONDS:
        raise MemberCodeInvalid()
    if age > ttl + CLOCK_SKEW_SECONDS:
        raise MemberCodeExpired()
