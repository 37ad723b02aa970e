"""Normalising and validating the ways a member is recognised. Pure functions.

Input arrives from POS keyboards, Excel exports and WeChat: full-width digits (１３８…),
spaces and dashes, a +86 prefix, lower-case plates with a middle dot. Each normaliser returns
the one canonical form that the blind index is computed from, or raises a coded error.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from liutong.errors import InvalidIdCard, InvalidIdentity, InvalidPhone, InvalidPlate
from liutong.kit.crypto import mask_phone, mask_plate, mask_tail
from liutong.members.models import IdentityKind

_SEPARATORS = re.compile(r"[\s\-·•・.()（）]+")
_PHONE = re.compile(r"1[3-9]\d{9}")

#: Province abbreviations on mainland plates, plus 使 (embassy) and 领 (consulate).
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领"
_LETTER = "A-HJ-NP-Z"  # I and O are not used on plates
_ORDINARY_PLATE = re.compile(rf"[{PROVINCES}][{_LETTER}][{_LETTER}0-9]{{4}}[{_LETTER}0-9挂学警港澳]")
# New-energy plates (8 characters): small cars D/F then a letter or digit then 4 digits;
# large vehicles 5 digits then D/F.
_NEW_ENERGY_PLATE = re.compile(rf"[{PROVINCES}][{_LETTER}](?:[DF][{_LETTER}0-9]\d{{4}}|\d{{5}}[DF])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_OPENID = re.compile(r"[A-Za-z0-9_\-]{6,64}")
_CARD = re.compile(r"[A-Z0-9]{4,32}")


def _clean(raw: str) -> str:
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).strip()


def normalise_phone(raw: str) -> str:
    """'+86 138-1234-5678' / '１３８１２３４５６７８' → '13812345678'."""
    value = _clean(str(raw)).removeprefix("+")
    for prefix in ("0086", "86"):
        if len(value) == 11 + len(prefix) and value.startswith(prefix):
            value = value[len(prefix):]
    if not _PHONE.fullmatch(value):
        raise InvalidPhone()
    return value


def normalise_plate(raw: str) -> str:
    """'浙a·12345' → '浙A12345'; new-energy '粤B D12345' → '粤BD12345'."""
    value = _clean(str(raw)).upper()
    if not (_ORDINARY_PLATE.fullmatch(value) or _NEW_ENERGY_PLATE.fullmatch(value)):
        raise InvalidPlate()
    return value


def is_new_energy_plate(plate: str) -> bool:
    return bool(_NEW_ENERGY_PLATE.fullmatch(plate))


def normalise_id_card(raw: str) -> str:
    """18-digit resident ID: valid birth date and ISO 7064 MOD 11-2 check digit; x → X."""
    value = _clean(str(raw)).upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        raise InvalidIdCard()
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdCard() from None
    if born.year < 1900:
        raise InvalidIdCard()
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17]:
        raise InvalidIdCard()
    return value


def normalise(kind: IdentityKind, raw: str) -> str:
    if kind is IdentityKind.phone:
        return normalise_phone(raw)
    if kind is IdentityKind.plate:
        return normalise_plate(raw)
    if kind is IdentityKind.id_card:
        return normalise_id_card(raw)
    if kind is IdentityKind.card:
        value = _clean(str(raw)).upper()
        if not _CARD.fullmatch(value):
            raise InvalidIdentity(kind=kind.value)
        return value
    value = unicodedata.normalize("NFKC", str(raw)).strip()
    if not _OPENID.fullmatch(value):
        raise InvalidIdentity(kind=kind.value)
    return value


def mask(kind: IdentityKind, normalised: str) -> str:
    if kind is IdentityKind.phone:
        return mask_phone(normalised)
    if kind is IdentityKind.plate:
        return mask_plate(normalised)
    if kind is IdentityKind.id_card:
        return normalised[:3] + "*" * 11 + normalised[-4:]
    return mask_tail(normalised)


LABELS_ZH = {
    IdentityKind.phone: "手机号",
    IdentityKind.card: "会员卡号",
    IdentityKind.wechat_openid: "微信 openid",
    IdentityKind.wechat_unionid: "微信 unionid",
    IdentityKind.plate: "车牌号",
    IdentityKind.id_card: "身份证号",
}
