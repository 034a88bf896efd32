"""Chinese name normalisation for registry matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realname.names import InvalidNameError, mask_name, normalize_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("张三", "张三"),
        (" 王 小明 ", "王小明"),
        ("买买提•艾力", "买买提·艾力"),  # bullet → middle dot
        ("阿依古丽・买买提", "阿依古丽·买买提"),  # katakana middle dot
        ("阿依古丽．买买提", "阿依古丽·买买提"),  # full-width full stop used as a dot
        ("𠀋一", "𠀋一"),  # extension B ideograph
    ],
)
def test_normalisation(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [("", "empty"), ("  ", "empty"), ("Zhang San", "characters"),
                                             ("张·", "characters"), ("·张", "characters"), ("张··三", "characters"),
                                             ("张3", "characters"), ("张" * 51, "too_long")])
def test_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNameError) as exc:
        normalize_name(raw)
    assert exc.value.reason == reason


@given(st.text(max_size=60))
def test_never_crashes_and_is_idempotent(text: str) -> None:
    try:
        once = normalize_name(text)
    except InvalidNameError:
        return
    assert normalize_name(once) == once


def test_mask() -> None:
    assert mask_name("张三") == "张*" and mask_name("买买提·艾力") == "买*****"
