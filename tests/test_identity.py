import pytest

from liutong.errors import InvalidIdCard, InvalidIdentity, InvalidPhone, InvalidPlate
from liutong.kit.crypto import mask_name, mask_phone
from liutong.members.identity import is_new_energy_plate, mask, normalise, normalise_id_card, normalise_phone, normalise_plate
from liutong.members.models import IdentityKind


@pytest.mark.parametrize("raw", ["13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678",
                                 "008613812345678", "8613812345678", "１３８１２３４５６７８"])
def test_mobile_numbers_are_normalised_from_every_way_people_type_them(raw):
    assert normalise_phone(raw) == "13812345678"


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "138123456789", "02887654321", "abc", ""])
def test_malformed_mobile_numbers_are_refused(raw):
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


@pytest.mark.parametrize("raw,expected", [
    ("浙A12345", "浙A12345"),
    ("浙a·12345", "浙A12345"),
    ("沪B 8K9Z2", "沪B8K9Z2"),
    ("粤B D12345", "粤BD12345"),   # new-energy small car
    ("京A12345D", "京A12345D"),    # new-energy large vehicle
    ("苏E1234学", "苏E1234学"),
])
def test_car_plates_are_normalised_including_new_energy_plates(raw, expected):
    assert normalise_plate(raw) == expected


def test_new_energy_plates_are_recognised():
    assert is_new_energy_plate("粤BD12345")
    assert not is_new_energy_plate("浙A12345")


@pytest.mark.parametrize("raw", ["浙I12345", "AB12345", "浙A1234", "浙AD1234X5", "X浙A12345"])
def test_malformed_plates_are_refused(raw):
    with pytest.raises(InvalidPlate):
        normalise_plate(raw)


def test_id_cards_need_a_valid_birth_date_and_check_digit():
    assert normalise_id_card("11010519491231002x") == "11010519491231002X"
    for bad in ("110105194912310021", "11010519491331002X", "1101051949123100", "abcdefghijklmnopqr"):
        with pytest.raises(InvalidIdCard):
            normalise_id_card(bad)


def test_other_identities_are_checked_for_shape():
    assert normalise(IdentityKind.card, "vip-0001 2345") == "VIP00012345"
    assert normalise(IdentityKind.wechat_openid, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    with pytest.raises(InvalidIdentity):
        normalise(IdentityKind.wechat_openid, "bad id!")


def test_personal_data_is_masked_the_way_mainland_screens_show_it():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask(IdentityKind.plate, "浙A12345") == "浙A·***45"
    assert mask(IdentityKind.id_card, "11010519491231002X") == "110***********002X"
