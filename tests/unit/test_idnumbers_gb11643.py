"""Resident identity numbers, GB 11643-1999 (and the HK/Macao/Taiwan residence permits)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realname.idnumbers import (
    InvalidIdNumberError,
    age_on,
    check_character,
    check_id_number,
    mask_id_number,
    parse_id_number,
    upgrade_15,
)

TODAY = date(2026, 11, 25)


def make(region: str, birth: date, seq: int) -> str:
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


# Published vectors: GB 11643-1999's own examples.
@pytest.mark.parametrize(
    ("number", "sex", "birth"),
    [("11010519491231002X", "female", date(1949, 12, 31)), ("440524188001010014", "male", date(1880, 1, 1))],
)
def test_standard_examples(number: str, sex: str, birth: date) -> None:
    parsed = parse_id_number(number, today=TODAY)
    assert parsed.sex == sex and parsed.birth_date == birth and parsed.kind == "resident"


def test_lower_case_x_is_accepted_and_stored_upper_case() -> None:
    assert parse_id_number("11010519491231002x", today=TODAY).number == "11010519491231002X"


def test_fifteen_digit_numbers_are_upgraded() -> None:
    # GB 11643-1999 appendix: 15-digit numbers gain "19" and a check character.
    parsed = parse_id_number("110105491231002", today=TODAY)
    assert parsed.number == "11010519491231002X" and parsed.upgraded_from_15
    assert upgrade_15("110105491231002") == "11010519491231002X"


@pytest.mark.parametrize(("region", "kind"), [("810000", "hk"), ("820000", "mo"), ("830000", "tw")])
def test_residence_permits(region: str, kind: str) -> None:
    assert parse_id_number(make(region, date(1990, 5, 17), 123), today=TODAY).kind == kind


def test_unknown_or_abolished_region_codes_are_accepted() -> None:
    # 512501 (Sichuan, abolished 1997) and 999999-like unused codes under 1-8.
    assert check_id_number(make("512501", date(1980, 2, 29), 11), today=TODAY)
    assert check_id_number(make("876543", date(1980, 3, 1), 11), today=TODAY)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("11010519491231002", "format"),
        ("1101051949123100XX", "format"),
        ("11010519491231002Y", "format"),
        ("01010519491231002X", "region"),
        ("110105194902300021", "birth_date"),  # 30 February
        ("11010519491231002-", "format"),
        ("11010519491231002 1", "checksum"),  # spaces are dropped, then the check fails
        ("110105194912310021", "checksum"),
    ],
)
def test_invalid_numbers_name_the_rule(number: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumberError) as exc:
        parse_id_number(number, today=TODAY)
    assert exc.value.reason == reason


def test_birth_date_in_the_future_is_refused() -> None:
    with pytest.raises(InvalidIdNumberError) as exc:
        parse_id_number(make("110105", TODAY + timedelta(days=1), 1), today=TODAY)
    assert exc.value.reason == "birth_date"
    assert check_id_number(make("110105", TODAY, 1), today=TODAY)


regions = st.from_regex(r"^[1-8][0-9]{5}$", fullmatch=True)
births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
seqs = st.integers(min_value=0, max_value=999)


@given(regions, births, seqs)
def test_every_well_formed_number_parses_back(region: str, birth: date, seq: int) -> None:
    number = make(region, birth, seq)
    parsed = parse_id_number(number, today=TODAY)
    assert parsed.number == number and parsed.birth_date == birth and parsed.region_code == region
    assert parsed.sex == ("male" if seq % 2 else "female")


@given(regions, births, seqs, st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
@settings(max_examples=300)
def test_any_single_substitution_is_detected(region: str, birth: date, seq: int, pos: int, char: str) -> None:
    # ISO 7064 MOD 11-2 detects every single-character error.
    number = make(region, birth, seq)
    if number[pos] == char or (pos < 17 and char == "X"):
        return
    altered = number[:pos] + char + number[pos + 1:]
    assert not check_id_number(altered, today=TODAY)


@given(st.text(max_size=40))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        parse_id_number(text, today=TODAY)
    except InvalidIdNumberError:
        pass


@given(regions, births, seqs)
def test_mask_hides_birth_date_and_sequence(region: str, birth: date, seq: int) -> None:
    number = make(region, birth, seq)
    masked = mask_id_number(number)
    assert masked[:6] == region and masked[-4:] == number[-4:] and f"{birth:%Y%m%d}" not in masked
    assert masked[6:14] == "*" * 8


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (date(2008, 11, 25), date(2026, 11, 25), 18),  # 18 exactly today
        (date(2008, 11, 26), date(2026, 11, 25), 17),
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # leap-day birth, common year
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
    ],
)
def test_age_at_boundaries(birth: date, day: date, age: int) -> None:
    assert age_on(birth, day) == age
