from datetime import UTC, datetime, timedelta

import pytest

from liutong.errors import MemberCodeExpired, MemberCodeInvalid
from liutong.members import member_code

KEY = b"k" * 32
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _issue(epoch=0, now=NOW):
    return member_code.issue(KEY, tenant_id=1, member_id=42, epoch=epoch, now=now, ttl=60)


def _verify(code, *, now=NOW, epoch=0, tenant_id=1):
    member_code.verify(KEY, member_code.parse(code), tenant_id=tenant_id, current_epoch=epoch, now=now, ttl=60)


def test_a_fresh_code_resolves_to_its_member():
    code = _issue()
    assert member_code.parse(code.code).member_id == 42
    _verify(code.code, now=NOW + timedelta(seconds=59))


def test_a_screenshot_replayed_after_the_code_expired_is_refused():
    code = _issue()
    with pytest.raises(MemberCodeExpired):
        _verify(code.code, now=NOW + timedelta(seconds=90))


@pytest.mark.parametrize("tamper", [
    lambda c: c.replace(".42.", ".43."),          # another member
    lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # forged signature
    lambda c: "LT1.42.0.x.y",                     # garbage
    lambda c: c.replace("LT1", "LT2"),
])
def test_forged_or_altered_codes_are_refused(tamper):
    with pytest.raises(MemberCodeInvalid):
        _verify(tamper(_issue().code))


def test_codes_from_another_tenant_or_an_old_epoch_are_refused():
    code = _issue().code
    with pytest.raises(MemberCodeInvalid):
        _verify(code, tenant_id=2)
    with pytest.raises(MemberCodeInvalid):
        _verify(code, epoch=1)


def test_a_code_from_the_future_is_refused():
    with pytest.raises(MemberCodeInvalid):
        _verify(_issue(now=NOW + timedelta(minutes=5)).code)
