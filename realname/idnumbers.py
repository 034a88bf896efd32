"""Resident identity numbers (GB 11643-1999) and the residence-permit numbers of Hong
Kong, Macao and Taiwan residents (same structure and checksum, regions 810000 / 820000 /
830000). Pure: no Flask, no database.

Structure: 6-digit administrative region, 8-digit birth date, 3-digit sequence (odd =
male), 1 check character (ISO 7064 MOD 11-2, ``X`` for 10). Legacy 15-digit numbers
(GB 11643-1989: 2-digit year, no check character) are upgraded to 18 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# GB 11643-1999 §8.2 / ISO 7064 MOD 11-2: weight of position i is 2^(17-i) mod 11.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
PERMIT_REGIONS = {"810000": "hk", "820000": "mo", "830000": "tw"}
_EIGHTEEN = re.compile(r"^\d{17}[\dX]$")
_FIFTEEN = re.compile(r"^\d{15}$")
# A sanity bound only: GB 11643-1999 itself uses a birth date of 1880 in its example.
_MIN_BIRTH = date(1800, 1, 1)


class InvalidIdNumberError(ValueError):
    """The text is not a valid identity number; ``reason`` says which rule failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ResidentId:
    number: str  # 18 characters, check character upper-case
    region_code: str
    birth_date: date
    sequence: str
    sex: str  # "male" | "female"
    kind: str  # "resident" | "hk" | "mo" | "tw"
    upgraded_from_15: bool = False

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


def check_character(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def upgrade_15(number15: str) -> str:
    """GB 11643-1999 Appendix: insert the century "19" and append the check character."""
    first17 = number15[:6] + "19" + number15[6:]
    return first17 + check_character(first17)


def _birth_date(digits: str) -> date:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise InvalidIdNumberError("birth_date") from None


def parse_id_number(text: str, *, today: date) -> ResidentId:
    """Validate and normalise (``x`` → ``X``, 15 → 18 digits). Raises
    ``InvalidIdNumberError`` with reason ``format``, ``region``, ``birth_date`` or
    ``checksum``. Unknown or abolished region codes are accepted: old numbers stay valid
    after administrative changes."""
    raw = text.strip().replace(" ", "").upper()
    upgraded = False
    if _FIFTEEN.match(raw):
        raw = upgrade_15(raw)
        upgraded = True
    if not _EIGHTEEN.match(raw):
        raise InvalidIdNumberError("format")
    region = raw[:6]
    # Region codes start with 1-8 (GB/T 2260 top-level codes); 0 and 9 never occur.
    if region[0] in "09":
        raise InvalidIdNumberError("region")
    birth = _birth_date(raw[6:14])
    if birth > today or birth < _MIN_BIRTH:
        raise InvalidIdNumberError("birth_date")
    if raw[17] != check_character(raw[:17]):
        raise InvalidIdNumberError("checksum")
    return ResidentId(
        number=raw,
        region_code=region,
        birth_date=birth,
        sequence=raw[14:17],
        sex="male" if int(raw[16]) % 2 == 1 else "female",
        kind=PERMIT_REGIONS.get(region, "resident"),
        upgraded_from_15=upgraded,
    )


def check_id_number(text: str, *, today: date) -> bool:
    try:
        parse_id_number(text, today=today)
    except InvalidIdNumberError:
        return False
    return True


def mask_id_number(number: str) -> str:
    """Region (6) and last 4 shown, the birth date and sequence hidden:
    ``110105********002X``. Never show an identity number whole outside an audited
    reveal."""
    if len(number) != 18:
        return "*" * len(number)
    return number[:6] + "*" * 8 + number[14:]


def age_on(birth: date, day: date) -> int:
    """Completed years on ``day``; a 29 February birthday counts from 1 March in common
    years (the person has not had the birthday until the day after 28 February)."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years
