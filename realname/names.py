"""Chinese personal names: normalisation and limits for registry matching. Pure.

Names are compared after NFKC (full-width forms become half-width), with every variant
of the middle dot used in transliterated minority and foreign names (·, •, ‧, ・, ．, .)
replaced by U+00B7, and spaces removed.
"""

from __future__ import annotations

import re
import unicodedata

MIDDLE_DOT = "\u00b7"
_DOTS = "\u00b7\u2022\u2027\u30fb\uff65\u2219\u22c5\u0387\u318d."
_DOT_RE = re.compile(f"[{re.escape(_DOTS)}]")
# CJK Unified Ideographs and extensions A-I, compatibility ideographs, and 〇.
_CJK = (
    "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ebef\U0002ebf0-\U0002ee5f\U00030000-\U000323af"
)
_NAME = re.compile(rf"^[{_CJK}](?:[{_CJK}]|{MIDDLE_DOT}(?=[{_CJK}]))*$")
MAX_LENGTH = 50


class InvalidNameError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_name(text: str) -> str:
    """Normalise a name for storage and registry matching; raise ``InvalidNameError``
    (reason ``empty``, ``too_long`` or ``characters``)."""
    value = unicodedata.normalize("NFKC", text)
    value = _DOT_RE.sub(MIDDLE_DOT, value)
    value = "".join(value.split())
    if not value:
        raise InvalidNameError("empty")
    if len(value) > MAX_LENGTH:
        raise InvalidNameError("too_long")
    if not _NAME.match(value):
        raise InvalidNameError("characters")
    return value


def mask_name(name: str) -> str:
    """Show the first character only: 张三 → 张*, 买买提·艾力 → 买*****."""
    return name[:1] + "*" * (len(name) - 1) if name else ""
