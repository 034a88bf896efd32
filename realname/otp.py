"""One-time codes sent by SMS (phone verification, second factor): six digits,
single use, short-lived, attempt-limited, resend-throttled (OWASP ASVS 5 §6.6).

Codes live in the shared store as keyed hashes with their expiry and attempt count;
expiry is checked against the injected clock as well as by the store's TTL.
"""

from __future__ import annotations

import json
import secrets

from common.clock import Clock
from common.crypto import KeyedHasher, constant_time_equals
from common.errors import DomainError
from common.store import Store

CODE_TTL = 300
MAX_ATTEMPTS = 5
RESEND_INTERVAL = 60
DAILY_LIMIT = 10


class OtpThrottledError(DomainError):
    code = "otp_throttled"
    public_message = "Too many codes were requested. Please wait before asking for another."
    status_code = 429


class OneTimeCodeService:
    def __init__(self, *, store: Store, clock: Clock, hasher: KeyedHasher) -> None:
        self._store = store
        self._clock = clock
        self._hasher = hasher

    def _key(self, purpose: str, target: str) -> str:
        return "otp:" + self._hasher.digest("otp-target", f"{purpose}\x00{target}")

    def issue(self, purpose: str, target: str) -> str:
        """A new code for (purpose, target), replacing any earlier one. Raises
        ``OtpThrottledError`` within ``RESEND_INTERVAL`` of the last code or past
        ``DAILY_LIMIT`` codes a day for the target."""
        key = self._key(purpose, target)
        if not self._store.set_if_absent(key + ":resend", b"1", RESEND_INTERVAL):
            raise OtpThrottledError("resend interval")
        if self._store.incr(key + ":day", 86400) > DAILY_LIMIT:
            raise OtpThrottledError("daily limit")
        code = f"{secrets.randbelow(10**6):06d}"
        record = {
            "hash": self._hasher.digest("otp-code", f"{key}\x00{code}"),
            "expires_at": self._clock.timestamp() + CODE_TTL,
            "attempts": 0,
        }
        self._store.set(key, json.dumps(record).encode(), CODE_TTL)
        return code

    def verify(self, purpose: str, target: str, code: str) -> bool:
        """True once for the right code within its lifetime; every wrong try counts and
        the code dies after ``MAX_ATTEMPTS`` wrong tries."""
        key = self._key(purpose, target)
        raw = self._store.get(key)
        if raw is None:
            return False
        record = json.loads(raw)
        if record["expires_at"] <= self._clock.timestamp() or record["attempts"] >= MAX_ATTEMPTS:
            self._store.delete(key)
            return False
        expected = self._hasher.digest("otp-code", f"{key}\x00{code.strip()}")
        if constant_time_equals(expected, record["hash"]):
            # Single use: only the caller that takes the record out wins.
            return self._store.consume(key) is not None
        record["attempts"] += 1
        ttl = max(1, record["expires_at"] - self._clock.timestamp())
        if record["attempts"] >= MAX_ATTEMPTS:
            self._store.delete(key)
        else:
            self._store.set(key, json.dumps(record).encode(), ttl)
        return False
