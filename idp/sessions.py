"""Server-side SSO sessions in the shared store.

The browser holds only a random cookie value; the store key is its keyed hash, so a
store dump cannot be replayed as cookies. ``sid`` is a separate random value that goes
into ID tokens and logout tokens (OIDC Front-/Back-Channel Logout §2) without exposing
the cookie. Idle timeout via the store TTL, absolute timeout via ``created_at``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from common.clock import Clock
from common.crypto import KeyedHasher, random_token
from common.store import Store

from .settings import IdpSettings

# Refresh the idle timer at most this often, so busy pages do not write on every request.
_TOUCH_INTERVAL = 60


@dataclass
class SsoSession:
    sid: str
    account_id: int
    subject_seed: str
    auth_time: int
    amr: list[str]
    acr: str
    created_at: int
    last_seen: int
    # Clients that received tokens in this session: they are told about logout.
    clients: list[str] = field(default_factory=list)
    # What this login established beyond the account: for a certificate login the CA
    # ({"cert_issuer": {"name", "province"}}). Never personal data.
    context: dict[str, Any] = field(default_factory=dict)


class SessionService:
    def __init__(self, *, store: Store, clock: Clock, hasher: KeyedHasher, settings: IdpSettings) -> None:
        self._store = store
        self._clock = clock
        self._hasher = hasher
        self._s = settings

    def _key(self, cookie: str) -> str:
        return "sso:" + self._hasher.digest("sso-cookie", cookie)

    def _ttl(self, session: SsoSession) -> int:
        now = self._clock.timestamp()
        return max(1, min(self._s.session_idle_ttl, session.created_at + self._s.session_max_ttl - now))

    def _save(self, key: str, session: SsoSession) -> None:
        ttl = self._ttl(session)
        self._store.set(key, json.dumps(asdict(session)).encode(), ttl)
        self._store.set(f"sso-sid:{session.sid}", key.encode(), ttl)

    def create(
        self, *, account_id: int, subject_seed: str, amr: list[str], acr: str, context: dict[str, Any] | None = None
    ) -> tuple[str, SsoSession]:
        """Start a new session (a new cookie value every login: no session fixation,
        OWASP ASVS 5 §7.2.4). Returns (cookie value, session)."""
        now = self._clock.timestamp()
        cookie = random_token(32)
        session = SsoSession(
            sid=random_token(16),
            account_id=account_id,
            subject_seed=subject_seed,
            auth_time=now,
            amr=list(amr),
            acr=acr,
            created_at=now,
            last_seen=now,
            context=dict(context or {}),
        )
        self._save(self._key(cookie), session)
        return cookie, session

    def get(self, cookie: str | None) -> SsoSession | None:
        if not cookie or len(cookie) > 128:
            return None
        key = self._key(cookie)
        raw = self._store.get(key)
        if raw is None:
            return None
        session = SsoSession(**json.loads(raw))
        now = self._clock.timestamp()
        if now >= session.created_at + self._s.session_max_ttl or now >= session.last_seen + self._s.session_idle_ttl:
            self._store.delete(key, f"sso-sid:{session.sid}")
            return None
        if now - session.last_seen >= _TOUCH_INTERVAL:
            session.last_seen = now
            self._save(key, session)
        return session

    def reauthenticate(self, cookie: str | None, *, add_amr: list[str], acr: str) -> tuple[str, SsoSession] | None:
        """A further authentication in the same session (second factor, step-up): the
        authentication time moves to now, the methods are added, and the cookie value is
        replaced (no fixation across re-authentication). The ``sid`` stays, so relying
        parties keep one session to log out. None when there is no live session."""
        current = self.get(cookie)
        if current is None:
            return None
        self._store.delete(self._key(cookie or ""))
        now = self._clock.timestamp()
        current.auth_time = now
        current.last_seen = now
        current.amr = list(dict.fromkeys([*current.amr, *add_amr]))
        current.acr = acr
        new_cookie = random_token(32)
        self._save(self._key(new_cookie), current)
        return new_cookie, current

    def add_client(self, sid: str, client_id: str) -> None:
        key = self._store.get(f"sso-sid:{sid}")
        if key is None:
            return
        raw = self._store.get(key.decode())
        if raw is None:
            return
        session = SsoSession(**json.loads(raw))
        if client_id not in session.clients:
            session.clients.append(client_id)
            self._save(key.decode(), session)

    def end(self, cookie: str | None) -> SsoSession | None:
        """End the session behind a cookie; returns it (for logout notifications)."""
        if not cookie or len(cookie) > 128:
            return None
        key = self._key(cookie)
        raw = self._store.consume(key)
        if raw is None:
            return None
        session = SsoSession(**json.loads(raw))
        self._store.delete(f"sso-sid:{session.sid}")
        return session

    def end_by_sid(self, sid: str) -> SsoSession | None:
        key = self._store.consume(f"sso-sid:{sid}")
        if key is None:
            return None
        raw = self._store.consume(key.decode())
        return SsoSession(**json.loads(raw)) if raw else None
