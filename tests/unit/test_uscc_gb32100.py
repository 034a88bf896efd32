"""Unified Social Credit Code (GB 32100-2015) and organisation code (GB 11714-1997)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certificates.uscc import (
    ALPHABET,
    InvalidUsccError,
    check_org_code,
    check_uscc,
    org_code_check_character,
    parse_uscc,
    uscc_check_character,
)


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L"])
def test_published_codes(code: str) -> None:
    parsed = parse_uscc(code)
    assert parsed.code == code and parsed.organization_code == code[8:17]


def test_lower_case_is_normalised() -> None:
    assert parse_uscc("91350100m000100y43").code == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y4", "format"),
        ("91350100M000100Y4I", "format"),  # I is not in the alphabet
        ("91350100M000100Y44", "checksum"),
        # A letter in the region code (positions 3-8), with a correct check character.
        ("9135A100M000100Y4" + uscc_check_character("9135A100M000100Y4"), "format"),
    ],
)
def test_invalid(code: str, reason: str) -> None:
    with pytest.raises(InvalidUsccError) as exc:
        parse_uscc(code)
    assert exc.value.reason == reason


def test_embedded_organisation_code_is_checked() -> None:
    body = "91350100M000100Y"  # org code M000100Y + wrong check char 5
    first17 = body[:8] + "M000100Y5"
    code = first17 + uscc_check_character(first17)
    with pytest.raises(InvalidUsccError) as exc:
        parse_uscc(code)
    assert exc.value.reason == "organization_code"


def test_organisation_code_check() -> None:
    assert check_org_code("M000100Y4") and check_org_code("m000100y-4")
    assert not check_org_code("M000100Y5") and not check_org_code("M000100Y")
    assert org_code_check_character("60003734") == "1"


# Positions 9-17 must also be USCC characters (no I, O, Z, S, V).
org_bodies = st.from_regex(rf"^[{ALPHABET}]{{8}}$", fullmatch=True)
prefixes = st.from_regex(rf"^[{ALPHABET}]{{2}}[0-9]{{6}}$", fullmatch=True)


def build(prefix: str, body: str) -> str:
    org = body + org_code_check_character(body)
    first17 = prefix + org
    return first17 + uscc_check_character(first17)


@given(prefixes, org_bodies)
def test_generated_codes_are_valid(prefix: str, body: str) -> None:
    assert check_uscc(build(prefix, body))


@given(prefixes, org_bodies, st.integers(min_value=0, max_value=17), st.sampled_from(ALPHABET))
@settings(max_examples=300)
def test_single_substitution_detected(prefix: str, body: str, pos: int, char: str) -> None:
    # Weights 3^(i-1) mod 31 are never 0 mod the prime 31: every single error changes S.
    code = build(prefix, body)
    if code[pos] == char:
        return
    assert not check_uscc(code[:pos] + char + code[pos + 1:])


@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text: str) -> None:
    assert check_uscc(text) in (True, False)
