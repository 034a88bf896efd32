"""One-time codes sent by SMS (phone verification, second factor): six digits,
single use, short-lived, attempt-limited, resend-throttled (OWASP ASVS 5 §6.6), and every
send throttled per destination phone and per client IP (issue 17, ASVS 5 §2.4).

Codes live in the shared store as keyed hashes with their expiry and attempt count;
expiry is checked against the injected clock as well as by the store's TTL. Phone numbers
and IPs appear in store keys only as keyed hashes.
"""

from __future__ import annotations

import json
import logging
import secrets

from common.clock import Clock
from common.crypto import KeyedHasher, constant_time_equals
from common.errors import DomainError
from common.store import Store
from common.throttle import Throttle

log = logging.getLogger("yiwang.realname")

CODE_TTL = 300
MAX_ATTEMPTS = 5
RESEND_INTERVAL = 60
DAILY_LIMIT = 10
IP_HOURLY_LIMIT = 50


class OtpThrottledError(DomainError):
    code = "otp_throttled"
    public_message = "Too many codes were requested. Please wait before asking for another."
    status_code = 429


class OneTimeCodeService:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        hasher: KeyedHasher,
        max_per_phone_day: int = DAILY_LIMIT,
        max_per_ip_hour: int = IP_HOURLY_LIMIT,
    ) -> None:
        self._store = store
        self._clock = clock
        self._hasher = hasher
        self._limits = Throttle(store=store, clock=clock)
        self._max_per_phone_day = max_per_phone_day
        self._max_per_ip_hour = max_per_ip_hour

    def _key(self, purpose: str, target: str) -> str:
        return "otp:" + self._hasher.digest("otp-target", f"{purpose}\x00{target}")

    def _refuse(self, limit: str) -> OtpThrottledError:
        # One public message whichever limit was hit; the log says which (never the phone).
        log.info("sms code refused", extra={"limit": limit})
        return OtpThrottledError(limit)

    def issue(self, purpose: str, target: str, *, phone: str, client_ip: str) -> str:
        """A new code for (purpose, target), to be sent to ``phone``, replacing any
        earlier one for the target. Raises ``OtpThrottledError`` — nothing sent, no code
        replaced — when the client IP has had ``max_per_ip_hour`` codes this hour, within
        ``RESEND_INTERVAL`` of the last code to the phone or to the target, or past
        ``max_per_phone_day`` codes a day to the phone or ``DAILY_LIMIT`` for the target.

        Policy (issue 17): the phone limits count every purpose and attempt (a new
        registration attempt is a new target, so per-target limits alone let anyone
        flood a number); the per-target limits stay for a target whose phone changed.
        A request refused for the IP or an interval uses up no daily or hourly budget, so
        hammering the button does not lock the citizen out for the day."""
        key = self._key(purpose, target)
        phone_key = "otp-send:phone:" + self._hasher.digest("otp-phone", phone)
        ip_key = "otp-send:ip:" + self._hasher.digest("otp-ip", client_ip)
        # IP first, so requests from a throttled IP touch no phone's counters.
        if self._limits.count(ip_key, 3600) >= self._max_per_ip_hour:
            raise self._refuse("ip hourly")
        if not self._limits.reserve(phone_key + ":resend", RESEND_INTERVAL):
            raise self._refuse("phone interval")
        if not self._limits.reserve(key + ":resend", RESEND_INTERVAL):
            raise self._refuse("target interval")
        if self._limits.hit(phone_key + ":day", 86400) > self._max_per_phone_day:
            raise self._refuse("phone daily")
        if self._limits.hit(key + ":day", 86400) > DAILY_LIMIT:
            raise self._refuse("target daily")
        # Counted again atomically: concurrent requests cannot overshoot the peek above.
        if self._limits.hit(ip_key, 3600) > self._max_per_ip_hour:
            raise self._refuse("ip hourly")
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
