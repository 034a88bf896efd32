"""Synthetic registry records: valid, deterministic, and unique at any count."""

from __future__ import annotations

from datetime import date

from realname.idnumbers import check_id_number
from realname.importer import synthetic_rows
from realname.names import normalize_name

TODAY = date(2026, 11, 25)


def test_records_are_valid_unique_and_deterministic():
    rows = list(synthetic_rows(50_000, seed=7, today=TODAY))
    numbers = [r.id_number for r in rows]
    assert len(set(numbers)) == 50_000  # unique by construction, no dedupe set
    assert all(check_id_number(n, today=TODAY) for n in numbers[:2000])
    assert all(normalize_name(r.name) == r.name for r in rows[:2000])
    assert [r.id_number for r in synthetic_rows(100, seed=7, today=TODAY)] == numbers[:100]
    assert [r.id_number for r in synthetic_rows(100, seed=8, today=TODAY)] != numbers[:100]
