"""The claims catalogue (issue 5): every claim Yiwang can release, where it comes from,
how sensitive it is (PIPL Art. 28: sensitive personal information), which scopes carry
it, and what it means in Chinese and English; plus the derived claims, computed at
release time from the verified identity and never stored. Pure: no Flask, no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from realname.idnumbers import ResidentId, age_on, mask_id_number


class Sensitivity(StrEnum):
    ORDINARY = "ordinary"  # reveals nothing about the person by itself (a flag, a level)
    PERSONAL = "personal"  # personal information (PIPL Art. 4)
    SENSITIVE = "sensitive"  # sensitive personal information (PIPL Art. 28): separate consent every time


class Source(StrEnum):
    ACCOUNT = "account"
    REALNAME = "realname"  # the registry-verified identity
    LEGAL_PERSON = "legal_person"
    SESSION = "session"  # this login (certificate issuer, acting agent)


@dataclass(frozen=True)
class Claim:
    name: str
    source: Source
    sensitivity: Sensitivity
    scopes: tuple[str, ...]
    zh: str
    en: str
    derived: bool = False


CATALOGUE: dict[str, Claim] = {c.name: c for c in (
    Claim("name", Source.REALNAME, Sensitivity.PERSONAL, ("profile",), "姓名", "Full name"),
    Claim("preferred_username", Source.ACCOUNT, Sensitivity.PERSONAL, ("profile",), "用户名", "Username"),
    Claim("gender", Source.REALNAME, Sensitivity.PERSONAL, ("profile",), "性别", "Gender", derived=True),
    Claim("birthdate", Source.REALNAME, Sensitivity.PERSONAL, ("profile",), "出生日期", "Date of birth",
          derived=True),
    Claim("updated_at", Source.ACCOUNT, Sensitivity.ORDINARY, ("profile",), "资料更新时间", "Profile last updated"),
    Claim("phone_number", Source.ACCOUNT, Sensitivity.PERSONAL, ("phone",), "手机号码", "Mobile phone number"),
    Claim("phone_number_verified", Source.ACCOUNT, Sensitivity.ORDINARY, ("phone",), "手机号是否已验证",
          "Whether the phone number was verified"),
    Claim("realname_level", Source.REALNAME, Sensitivity.ORDINARY, ("realname",), "实名认证等级",
          "Identity assurance level"),
    Claim("realname_verified", Source.REALNAME, Sensitivity.ORDINARY, ("realname",), "是否已实名认证",
          "Whether the identity was verified against the registry", derived=True),
    Claim("id_number_masked", Source.REALNAME, Sensitivity.PERSONAL, ("realname",), "身份证号（部分隐藏）",
          "ID number with birth date and sequence hidden", derived=True),
    Claim("age_over_18", Source.REALNAME, Sensitivity.ORDINARY, ("realname",), "是否年满 18 周岁",
          "Whether the person is 18 or older", derived=True),
    Claim("age_over_60", Source.REALNAME, Sensitivity.ORDINARY, ("realname",), "是否年满 60 周岁",
          "Whether the person is 60 or older", derived=True),
    Claim("region_code", Source.REALNAME, Sensitivity.PERSONAL, ("realname",), "户籍地区划代码",
          "Administrative region code of the ID number", derived=True),
    Claim("id_number", Source.REALNAME, Sensitivity.SENSITIVE, ("id_number",), "完整身份证号码",
          "Full resident ID number"),
    Claim("uscc", Source.LEGAL_PERSON, Sensitivity.ORDINARY, ("legal_person",), "统一社会信用代码",
          "Unified Social Credit Code"),
    Claim("legal_person_name", Source.LEGAL_PERSON, Sensitivity.ORDINARY, ("legal_person",), "单位名称",
          "Organisation name"),
    Claim("cert_issuer", Source.SESSION, Sensitivity.ORDINARY, ("legal_person",), "证书颁发机构",
          "Certificate authority of this login"),
    Claim("act", Source.SESSION, Sensitivity.ORDINARY, ("legal_person",), "经办人", "Agent acting for the organisation"),
)}

# Where the person's region is not a mainland administrative region.
_PERMIT_REGIONS = {"810000": "HK", "820000": "MO", "830000": "TW"}


def claims_for_scopes(scopes: list[str] | tuple[str, ...] | set[str]) -> set[str]:
    wanted = set(scopes)
    return {c.name for c in CATALOGUE.values() if wanted & set(c.scopes)}


def sensitive(names: set[str]) -> set[str]:
    return {n for n in names if n in CATALOGUE and CATALOGUE[n].sensitivity is Sensitivity.SENSITIVE}


def derived_claims(rid: ResidentId | None, *, level: str | None, today: date) -> dict[str, Any]:
    """Claims computed from the verified identity at release time (never stored).

    ``age_over_*`` use completed years on ``today`` (a 29 February birthday is reached on
    1 March in common years); ``region_code`` is the number's first six digits (for
    residence permits 810000/820000/830000: Hong Kong, Macao, Taiwan)."""
    if rid is None:
        return {"realname_verified": False, "realname_level": level or "cn-l0"}
    age = age_on(rid.birth_date, today)
    return {
        "realname_verified": True,
        "realname_level": level,
        "id_number_masked": mask_id_number(rid.number),
        "age_over_18": age >= 18,
        "age_over_60": age >= 60,
        "gender": rid.sex,
        "birthdate": rid.birth_date.isoformat(),
        "region_code": rid.region_code,
    }
