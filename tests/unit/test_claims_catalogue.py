"""The claims catalogue and derived claims at their boundaries (issue 5)."""

from __future__ import annotations

from datetime import date

import pytest

from idp.catalogue import CATALOGUE, Sensitivity, claims_for_scopes, derived_claims, sensitive
from realname.idnumbers import check_character, parse_id_number


def rid(region: str, birth: date, seq: int = 12):
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return parse_id_number(first17 + check_character(first17), today=date(2100, 1, 1))


def test_every_claim_is_described_in_both_languages_with_a_scope():
    for claim in CATALOGUE.values():
        assert claim.zh and claim.en and claim.scopes, claim.name


def test_the_full_id_number_is_the_only_sensitive_claim_and_has_its_own_scope():
    assert sensitive(set(CATALOGUE)) == {"id_number"}
    assert CATALOGUE["id_number"].scopes == ("id_number",)
    assert "id_number" not in claims_for_scopes(["openid", "profile", "realname", "phone", "legal_person"])
    assert CATALOGUE["age_over_18"].sensitivity is Sensitivity.ORDINARY


@pytest.mark.parametrize(
    ("birth", "today", "over18"),
    [
        (date(2008, 11, 25), date(2026, 11, 25), True),  # 18 exactly today
        (date(2008, 11, 26), date(2026, 11, 25), False),  # 18 tomorrow
        (date(2008, 2, 29), date(2026, 2, 28), False),  # leap-day birth, common year: not yet
        (date(2008, 2, 29), date(2026, 3, 1), True),
        (date(2004, 2, 29), date(2022, 2, 28), False),
        (date(2004, 2, 29), date(2022, 3, 1), True),
    ],
)
def test_age_over_18_at_the_boundary(birth, today, over18):
    assert derived_claims(rid("110105", birth), level="cn-l1", today=today)["age_over_18"] is over18


def test_age_over_60_and_other_derived_claims():
    person = rid("440305", date(1966, 11, 25), seq=13)
    claims = derived_claims(person, level="cn-l2", today=date(2026, 11, 25))
    assert claims["age_over_60"] is True and claims["age_over_18"] is True
    assert claims["gender"] == "male" and claims["birthdate"] == "1966-11-25"
    assert claims["region_code"] == "440305"
    assert claims["id_number_masked"] == "440305********013" + person.number[-1]
    assert claims["realname_verified"] is True and claims["realname_level"] == "cn-l2"
    younger = derived_claims(rid("440305", date(1966, 11, 26)), level="cn-l1", today=date(2026, 11, 25))
    assert younger["age_over_60"] is False


@pytest.mark.parametrize("region", ["810000", "820000", "830000"])
def test_residence_permits(region):
    claims = derived_claims(rid(region, date(1990, 1, 1), seq=22), level="cn-l1", today=date(2026, 11, 25))
    assert claims["region_code"] == region and claims["gender"] == "female"


def test_unverified_accounts_get_only_the_flags():
    assert derived_claims(None, level="cn-l0", today=date(2026, 11, 25)) == {
        "realname_verified": False, "realname_level": "cn-l0"}
