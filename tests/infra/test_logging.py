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
