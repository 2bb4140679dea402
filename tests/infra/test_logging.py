"""Log lines never carry a whole phone number or resident ID number."""

from __future__ import annotations

from wxbackend.infra.logging import mask
from wxbackend.infra.pii import mask_id_number, mask_phone

ID_NUMBER = "51010519900307123X"


def test_ids_and_phones_in_log_text_are_masked_as_the_pages_mask_them() -> None:
    line = mask(f"certify {ID_NUMBER} from 13800138000, order 12345678901234567890")
    assert ID_NUMBER not in line and "13800138000" not in line
    assert mask_id_number(ID_NUMBER) in line and mask_phone("13800138000") in line
    assert "12345678901234567890" in line  # longer digit runs are not ID numbers


def test_phones_written_any_way_are_masked() -> None:
    for written in ("+8613812345678", "8613812345678", "008613812345678", "138-1234-5678",
                    "138 1234 5678", "+86 138 1234 5678"):
        line = mask(f"sending a code to {written} now")
        assert "1234" not in line and "138****5678" in line, (written, line)


def test_structured_fields_are_masked(caplog) -> None:
    import json
    import logging

    from wxbackend.infra.logging import JsonFormatter, MaskingFilter
    record = logging.makeLogRecord({
        "msg": "certify", "levelno": logging.INFO, "levelname": "INFO",
        "phone": "138 1234 5678", "id_number": ID_NUMBER, "mobile": 13812345678,
        "form": {"contacts": ["+8613812345678"], "status": 200}})
    assert MaskingFilter().filter(record)
    line = JsonFormatter().format(record)
    assert ID_NUMBER not in line and "1234" not in line.replace(mask_id_number(ID_NUMBER), "")
    entry = json.loads(line)
    assert entry["phone"] == entry["mobile"] == "138****5678"
    assert entry["id_number"] == mask_id_number(ID_NUMBER)
    assert entry["form"] == {"contacts": ["+86138****5678"], "status": 200}
