import logging

from liutong.kit.logmask import PersonalDataFilter, mask_text


def test_phone_and_id_numbers_are_masked_in_log_lines():
    assert mask_text("GET /v1/members/lookup?kind=phone&value=13812345678") == \
        "GET /v1/members/lookup?kind=phone&value=138****5678"
    assert mask_text("tel +86 138-1234-5678 ok") == "tel 138****5678 ok"
    assert mask_text("id 11010519491231002X") == "id 110***********002X"
    assert mask_text("order 2026112312345678901 amount 13800") == "order 2026112312345678901 amount 13800"


def test_the_filter_rewrites_records_that_carry_personal_data(caplog):
    logger = logging.getLogger("liutong.test.mask")
    handler = logging.Handler()
    seen = []
    handler.emit = lambda record: seen.append(record.getMessage())
    handler.addFilter(PersonalDataFilter())
    logger.addHandler(handler)
    try:
        logger.warning("member %s called", "13912345678")
    finally:
        logger.removeHandler(handler)
    assert seen == ["member 139****5678 called"]
