"""Unified Social Credit Code (统一社会信用代码, GB 32100-2015) and the embedded
organisation code (GB 11714-1997). Pure.

Deviation from "common has no business meaning" (DESIGN.md §2): both realname/ and
certificates/ need this rule and neither may import the other, so it lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# GB 32100-2015 §4: 31 characters, no I, O, Z, S, V.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {c: i for i, c in enumerate(ALPHABET)}
# §5.1: weight of position i (1-based) is 3^(i-1) mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC = re.compile(rf"^[{ALPHABET}]{{18}}$")
# GB 11714-1997: 8 body characters (digits or upper-case letters) + check.
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG = re.compile(r"^[0-9A-Z]{8}[0-9X]$")


class InvalidUsccError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Uscc:
    code: str
    registration_authority: str  # position 1
    entity_type: str  # position 2
    region_code: str  # positions 3-8
    organization_code: str  # positions 9-17 (GB 11714)


def uscc_check_character(first17: str) -> str:
    total = sum(_VALUES[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_code_check_character(body8: str) -> str:
    # GB 11714 §5: C9 = 11 - (Σ value × weight mod 11); 10 → X, 11 → 0. Letters count
    # as A=10 … Z=35.
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    c9 = 11 - total % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


def normalize_org_code(text: str) -> str:
    return text.strip().upper().replace("-", "")


def check_org_code(text: str) -> bool:
    code = normalize_org_code(text)
    return bool(_ORG.match(code)) and code[8] == org_code_check_character(code[:8])


def parse_uscc(text: str) -> Uscc:
    """Validate a USCC. Raises ``InvalidUsccError`` with reason ``format``,
    ``checksum`` or ``organization_code``."""
    code = text.strip().upper()
    if not _USCC.match(code):
        raise InvalidUsccError("format")
    if code[17] != uscc_check_character(code[:17]):
        raise InvalidUsccError("checksum")
    if not code[2:8].isdigit():
        raise InvalidUsccError("format")
    org = code[8:17]
    if not check_org_code(org):
        raise InvalidUsccError("organization_code")
    return Uscc(code, code[0], code[1], code[2:8], org)


def check_uscc(text: str) -> bool:
    try:
        parse_uscc(text)
    except InvalidUsccError:
        return False
    return True
