"""Input rules of the re-identification tool (issue 5): a reason and a requester
reference with every call, and only ``sub`` values this provider can have issued."""

from __future__ import annotations

import pytest

from idp.errors import ReidentificationRequestError
from idp.reidentification import LawfulRequest, validate_subject


def test_reason_length_bounds_after_trimming() -> None:
    assert LawfulRequest.parse("  " + "r" * 10 + "\n", "PSB/1").reason == "r" * 10
    assert len(LawfulRequest.parse("r" * 500, "PSB/1").reason) == 500
    for bad in ("r" * 9, "r" * 501, " " * 20, "r" * 9 + " " * 5):
        with pytest.raises(ReidentificationRequestError):
            LawfulRequest.parse(bad, "PSB/1")


def test_text_is_nfc_normalised_and_multiline_reasons_are_allowed() -> None:
    decomposed = "Cafe\u0301 fraud case\nsecond line"
    assert LawfulRequest.parse(decomposed, "PSB/1").reason == "Café fraud case\nsecond line"


@pytest.mark.parametrize("requester", ["ab", "x" * 121, "PSB\x00/1", "PSB/13800138000", "ID 11010519491231002X",
                                       "case 110105491231002"])
def test_requester_reference_is_short_and_not_personal_data(requester: str) -> None:
    with pytest.raises(ReidentificationRequestError):
        LawfulRequest.parse("A lawful reason text", requester)


def test_requester_reference_may_carry_case_numbers() -> None:
    ref = "北京市公安局/京公（2025）1234567号"
    assert LawfulRequest.parse("A lawful reason text", ref).requested_by == ref


def test_subject_shape() -> None:
    sub = "Qm9yaW5nIGJ1dCB2YWxpZCBzdWJqZWN0IGlkZW50aWY"
    assert len(sub) == 43 and validate_subject(f" {sub} ") == sub
    for bad in ("", "short", sub + "x", sub[:-1] + "=", "110105194912310021" + "a" * 25):
        with pytest.raises(ReidentificationRequestError):
            validate_subject(bad)
