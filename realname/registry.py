"""Registry adapters: check a name and an ID number (二要素), optionally with a mobile
number (三要素), against an authoritative source.

- ``local``: the ``realname_registry`` table (loaded from CSV), for development, tests and
  offline deployments.
- ``http``: a JSON-over-HTTPS verification service, requests signed with HMAC-SHA-256
  over a shared key, bounded timeouts and retries, and a circuit breaker so a failing
  registry costs nothing but a fast ``unavailable``.

Adapters never raise for registry trouble: every failure is ``UNAVAILABLE`` (fail closed:
nothing is verified that was not confirmed).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.crypto import KeyedHasher, constant_time_equals, random_token

from .models import RegistryRecord

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_FOUND = "not_found"
    DECEASED = "deceased"
    UNAVAILABLE = "unavailable"


class RegistryAdapter(Protocol):
    name: str

    def verify(self, name: str, id_number: str) -> Outcome:
        """Both arguments already normalised (names.normalize_name, idnumbers)."""
        ...

    def verify_phone(self, name: str, id_number: str, phone: str) -> Outcome:
        """三要素: name + ID number + the mobile number registered with a carrier."""
        ...


def registry_name_hash(hasher: KeyedHasher, name: str, id_number: str) -> str:
    # Bound to the number, so equal names of different people hash differently.
    return hasher.digest("registry-name", f"{id_number}\x00{name}")


def registry_phone_hash(hasher: KeyedHasher, phone: str, id_number: str) -> str:
    return hasher.digest("registry-phone", f"{id_number}\x00{phone}")


class LocalRegistry:
    """Reads ``realname_registry``: one indexed look-up by the number's blind index, so
    the cost does not grow with the table (B-tree, O(log n))."""

    name = "local"

    def __init__(self, session: Session, hasher: KeyedHasher) -> None:
        self._session = session
        self._hasher = hasher

    def _row(self, id_number: str) -> RegistryRecord | None:
        index = self._hasher.digest("id-number", id_number)
        return self._session.scalars(select(RegistryRecord).where(RegistryRecord.id_index == index)).first()

    def verify(self, name: str, id_number: str) -> Outcome:
        row = self._row(id_number)
        if row is None:
            return Outcome.NOT_FOUND
        if not constant_time_equals(row.name_hash, registry_name_hash(self._hasher, name, id_number)):
            return Outcome.MISMATCH
        return Outcome.DECEASED if row.deceased else Outcome.MATCH

    def verify_phone(self, name: str, id_number: str, phone: str) -> Outcome:
        row = self._row(id_number)  # one look-up serves both checks
        if row is None:
            return Outcome.NOT_FOUND
        if not constant_time_equals(row.name_hash, registry_name_hash(self._hasher, name, id_number)):
            return Outcome.MISMATCH
        if row.deceased:
            return Outcome.DECEASED
        if row.phone_hash is None:
            return Outcome.MISMATCH
        expected = registry_phone_hash(self._hasher, phone, id_number)
        return Outcome.MATCH if constant_time_equals(row.phone_hash, expected) else Outcome.MISMATCH


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; while open every call fails fast;
    after ``cooldown`` seconds one trial call is let through (half-open)."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, now: Callable[[], float] = time.monotonic) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._now = now
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._now() - self._opened_at >= self._cooldown:
                self._opened_at = self._now()  # one trial per cooldown
                return True
            return False

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures, self._opened_at = 0, None
                return
            self._failures += 1
            if self._failures >= self._threshold:
                self._opened_at = self._now()

    @property
    def open(self) -> bool:
        return self._opened_at is not None


@dataclass(frozen=True)
class HttpRegistryConfig:
    url: str
    key_id: str
    key: bytes
    timeout: float = 3.0
    retries: int = 1
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


class HttpRegistry:
    """Protocol (ours, documented in the README): ``POST {url}`` with JSON
    ``{"name", "id_number", "phone"?, "request_id"}``, headers ``X-Yiwang-Key-Id``,
    ``X-Yiwang-Timestamp`` and ``X-Yiwang-Signature`` = hex HMAC-SHA-256 over
    ``timestamp + "." + body``; the answer is JSON ``{"result": "match" | "mismatch" |
    "not_found" | "deceased"}``. Anything else (timeouts, 5xx, malformed JSON, unknown
    results) is ``UNAVAILABLE``. Optional mutual TLS with a client certificate."""

    name = "http"

    def __init__(self, config: HttpRegistryConfig, breaker: CircuitBreaker | None = None) -> None:
        self._c = config
        self._breaker = breaker or CircuitBreaker()
        self._ssl = None
        if config.url.startswith("https://"):
            ctx = ssl.create_default_context(cafile=config.ca_file)
            if config.client_cert:
                ctx.load_cert_chain(config.client_cert, config.client_key)
            self._ssl = ctx

    def _call(self, payload: dict[str, str]) -> Outcome:
        if not self._breaker.allow():
            return Outcome.UNAVAILABLE
        body = json.dumps(payload, ensure_ascii=False).encode()
        for attempt in range(self._c.retries + 1):
            ts = str(int(time.time()))
            sig = hmac.new(self._c.key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            req = urllib.request.Request(  # noqa: S310 - configured http(s) URL only
                self._c.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "X-Yiwang-Key-Id": self._c.key_id,
                    "X-Yiwang-Timestamp": ts,
                    "X-Yiwang-Signature": sig,
                },
            )
            try:
                with urllib.request.urlopen(req, timeout=self._c.timeout, context=self._ssl) as resp:  # noqa: S310
                    raw = resp.read(65536)
                data = json.loads(raw)
                outcome = Outcome(data["result"]) if isinstance(data, dict) else None
                if outcome is None or outcome is Outcome.UNAVAILABLE:
                    raise ValueError("unexpected result")
                self._breaker.record(True)
                return outcome
            except urllib.error.HTTPError as exc:
                log.warning("registry http error", extra={"status": exc.code, "error": "http"})
                if exc.code < 500:
                    break  # a 4xx will not get better by retrying
            except (urllib.error.URLError, TimeoutError, OSError, ValueError, KeyError) as exc:
                log.warning("registry call failed", extra={"error": type(exc).__name__})
            if attempt < self._c.retries:
                time.sleep(min(0.2 * (attempt + 1), 1.0))
        self._breaker.record(False)
        return Outcome.UNAVAILABLE

    def verify(self, name: str, id_number: str) -> Outcome:
        return self._call({"name": name, "id_number": id_number, "request_id": random_token(12)})

    def verify_phone(self, name: str, id_number: str, phone: str) -> Outcome:
        return self._call({"name": name, "id_number": id_number, "phone": phone, "request_id": random_token(12)})
