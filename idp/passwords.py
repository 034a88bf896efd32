"""Password hashing (argon2id, OWASP parameters) and the password policy
(OWASP ASVS 5 §6.2 / NIST SP 800-63B §3.1.1.2: length, no truncation, common-password list)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from common.errors import ValidationError

MIN_LENGTH = 8
# Long passphrases are accepted; the cap only bounds hashing cost per request.
MAX_LENGTH = 1024


class WeakPasswordError(ValidationError):
    code = "weak_password"
    public_message = "The password does not meet the password policy."


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("data") / "common-passwords.txt"
    return frozenset(
        line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    )


def validate_password(password: str, *, context: tuple[str, ...] = ()) -> None:
    """Raise ``WeakPasswordError`` naming the rule the password breaks."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError("too short", public_message=f"The password needs at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError("too long", public_message=f"The password may have at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _common_passwords() or any(c and lowered == c.lower() for c in context):
        raise WeakPasswordError(
            "common password", public_message="This password is too common; choose another."
        )


class PasswordHasher:
    """argon2id with m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet)."""

    def __init__(self, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1) -> None:
        self._argon = _Argon2(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the account does not exist, so unknown users cost as much
        # time as wrong passwords (no user enumeration by timing).
        self._dummy = self._argon.hash("yiwang-dummy-password")

    def hash(self, password: str) -> str:
        return self._argon.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._argon.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._argon.check_needs_rehash(stored)
