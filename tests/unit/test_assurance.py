"""Choosing the emitted ``acr`` (idp/assurance.py; DESIGN.md §5, OIDC Core §2 acr,
§5.5.1.1 essential acr): requested levels are minimums, never a silently lower level."""

from __future__ import annotations

import pytest

from idp.assurance import LEVELS, UnknownLevelError, choose_acr, rank


@pytest.mark.parametrize("session,requested,expected", [
    # Nothing (known) requested: the session's own level.
    ("cn-l0", [], "cn-l0"),
    ("cn-l2", [], "cn-l2"),
    ("cn-l2", ["urn:unknown:level"], "cn-l2"),
    # A minimum the session meets: the requested value (not a higher one than asked).
    ("cn-l0", ["cn-l0"], "cn-l0"),
    ("cn-l3", ["cn-l1"], "cn-l1"),
    ("cn-l4", ["cn-l4"], "cn-l4"),
    # Several acceptable values: the highest one the session meets.
    ("cn-l2", ["cn-l1", "cn-l2", "cn-l3"], "cn-l2"),
    ("cn-l3", ["cn-l3", "cn-l1"], "cn-l3"),
    ("cn-l4", ["cn-l0", "cn-l2"], "cn-l2"),
    ("cn-l2", ["urn:unknown", "cn-l1"], "cn-l1"),
    # Unmet: None, which the caller turns into an error or a step-up.
    ("cn-l0", ["cn-l1"], None),
    ("cn-l2", ["cn-l3", "cn-l4"], None),
    ("cn-l3", ["cn-l4"], None),
])
def test_choose_acr(session, requested, expected):
    assert choose_acr(session, requested) == expected


def test_never_lower_than_requested():
    for have in LEVELS:
        for want in LEVELS:
            got = choose_acr(have, [want])
            if rank(have) >= rank(want):
                assert got == want
            else:
                assert got is None


def test_levels_are_ordered():
    assert [rank(level) for level in LEVELS] == list(range(len(LEVELS)))
    with pytest.raises(UnknownLevelError):
        rank("cn-l9")
