"""The member registration form and the founding application: their vocabularies (GB/T 3304
ethnic groups, education levels, political status) and validation, shared by the worker pages,
the Mini Program and the roster import."""

from __future__ import annotations

import re
from datetime import date

from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.idnumbers import IdNumber, parse_credit_code, parse_id_number

ETHNICITIES = tuple((
    "汉族 蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 "
    "白族 土家族 哈尼族 哈萨克族 傣族 黎族 傈僳族 佤族 畲族 高山族 拉祜族 水族 "
    "东乡族 纳西族 景颇族 柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 毛南族 "
    "仡佬族 锡伯族 阿昌族 普米族 塔吉克族 怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 "
    "保安族 裕固族 京族 塔塔尔族 独龙族 鄂伦春族 赫哲族 门巴族 珞巴族 基诺族 "
).split())  # the 56 groups of GB/T 3304, in its order
EDUCATION = ("小学及以下", "初中", "高中", "中专", "大专", "本科", "硕士研究生", "博士研究生")
POLITICAL_STATUS = ("中共党员", "中共预备党员", "共青团员", "民主党派", "无党派人士", "群众")
HOUSEHOLD_TYPES = ("城镇", "农村")
EMPLOYER_MAX = 100   # characters, the form and the roster import alike
JOB_MAX = 50

# Names as on the ID card: Chinese characters (with the middle dot of minority names) or letters.
_NAME = re.compile(r"^[\u3400-\u9fff\U00020000-\U0002ebef·•A-Za-z ]{2,30}$")


def clean_name(raw: object) -> str:
    name = re.sub(r"\s+", " ", str(raw or "")).strip().replace("•", "·")
    if not _NAME.match(name):
        raise InvalidInput("请填写与身份证一致的姓名（2–30 个字）", code="name_invalid")
    return name


def _choice(raw: object, allowed: tuple[str, ...], label: str, *, required: bool) -> str | None:
    value = str(raw or "").strip()
    if not value and not required:
        return None
    if value not in allowed:
        raise InvalidInput(f"请从列表中选择{label}", code="form_invalid")
    return value


def _text(raw: object, label: str, limit: int, *, required: bool) -> str | None:
    value = str(raw or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"请填写{label}", code="form_invalid")
        return None
    if len(value) > limit:
        raise InvalidInput(f"{label}不能超过 {limit} 个字", code="form_invalid")
    return value


def clean_member_form(body: dict, today: date) -> tuple[str, IdNumber, dict]:
    """(name, parsed ID number, the non-sensitive fields) of a join application."""
    name = clean_name(body.get("name"))
    ident = parse_id_number(str(body.get("id_number", "")), today)
    migrant = body.get("migrant_worker", False)
    if not isinstance(migrant, bool):
        raise InvalidInput("是否农民工应为是或否", code="form_invalid")
    form = {
        "ethnicity": _choice(body.get("ethnicity"), ETHNICITIES, "民族", required=True),
        "education": _choice(body.get("education"), EDUCATION, "学历", required=True),
        "political_status": _choice(body.get("political_status"), POLITICAL_STATUS, "政治面貌",
                                    required=True),
        "household_type": _choice(body.get("household_type"), HOUSEHOLD_TYPES, "户籍类型", required=True),
        "migrant_worker": migrant,
        "employer": _text(body.get("employer"), "工作单位", EMPLOYER_MAX, required=True),
        "job": _text(body.get("job"), "职务/岗位", JOB_MAX, required=False),
    }
    return name, ident, form


def clean_founding_form(body: dict) -> dict:
    headcount = body.get("headcount")
    if not isinstance(headcount, int) or isinstance(headcount, bool) or not 1 <= headcount <= 1_000_000:
        raise InvalidInput("请填写单位职工人数", code="form_invalid")
    union_name = _text(body.get("union_name"), "工会名称", 60, required=True)
    if not union_name.endswith(("工会", "工会委员会", "工会联合会")):
        raise InvalidInput("工会名称应以“工会”或“工会委员会”结尾，如“××有限公司工会”", code="form_invalid")
    return {
        "union_name": union_name,
        "credit_code": parse_credit_code(str(body.get("credit_code", ""))),
        "employer_name": _text(body.get("employer_name"), "单位名称", EMPLOYER_MAX, required=True),
        "region_code": _text(body.get("region_code"), "所在地区", 6, required=True),
        "organiser_name": clean_name(body.get("organiser_name")),
        "headcount": headcount,
        # 25 or more members: a committee is required; fewer may elect an organiser (组织员)
        "form_of_union": "工会委员会" if headcount >= 25 else "工会委员会或组织员",
    }
