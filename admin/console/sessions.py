"""Console sessions: server-side records in the shared store behind their own cookie,
separate from the citizen SSO session (OWASP ASVS 5 §7: short idle timeout, absolute
lifetime, a new id at every login, server-side logout). No Flask here."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from common.clock import Clock
from common.crypto import KeyedHasher, random_token
from common.store import Store

# Policy: administrators are logged out after 15 idle minutes and after 8 hours in any
# case (ASVS 5 §7.3.1 / §7.3.2 for high-value applications).
IDLE_TIMEOUT = 900
ABSOLUTE_TIMEOUT = 8 * 3600


@dataclass
class ConsoleSession:
    account_id: int
    csrf: str
    created_at: int
    auth_time: int
    amr: list[str]
    last_seen: int = 0
    locale: str | None = None


class ConsoleSessionStore:
    """Console sessions keyed by a keyed hash of the cookie value (a store dump does not
    yield usable cookies)."""

    def __init__(self, *, store: Store, clock: Clock, hasher: KeyedHasher) -> None:
        self._store = store
        self._clock = clock
        self._hasher = hasher

    def _key(self, cookie: str) -> str:
        return "console-session:" + self._hasher.digest("console-session", cookie)

    def create(self, *, account_id: int, auth_time: int, amr: list[str], locale: str | None) -> tuple[str, ConsoleSession]:
        """A new session with a new id and a new CSRF token; returns (cookie value, session)."""
        cookie = random_token(32)
        now = self._clock.timestamp()
        session = ConsoleSession(account_id=account_id, csrf=random_token(24), created_at=now, auth_time=auth_time,
                                 amr=amr, last_seen=now, locale=locale)
        self._save(cookie, session)
        return cookie, session

    def get(self, cookie: str | None) -> ConsoleSession | None:
        """The live session for ``cookie``, its idle timer restarted; None when unknown,
        idle too long or past its absolute lifetime."""
        if not cookie or len(cookie) > 64:
            return None
        raw = self._store.get(self._key(cookie))
        if raw is None:
            return None
        session = ConsoleSession(**json.loads(raw))
        now = self._clock.timestamp()
        # The store's TTL enforces the idle timeout too; the clock check makes it exact
        # and independent of the store's own clock.
        if now - session.created_at >= ABSOLUTE_TIMEOUT or now - session.last_seen >= IDLE_TIMEOUT:
            self._store.delete(self._key(cookie))
            return None
        session.last_seen = now
        self._save(cookie, session)
        return session

    def save(self, cookie: str, session: ConsoleSession) -> None:
        self._save(cookie, session)

    def end(self, cookie: str | None) -> None:
        if cookie and len(cookie) <= 64:
            self._store.delete(self._key(cookie))

    def _save(self, cookie: str, session: ConsoleSession) -> None:
        left = ABSOLUTE_TIMEOUT - (self._clock.timestamp() - session.created_at)
        self._store.set(self._key(cookie), json.dumps(asdict(session)).encode(), max(1, min(IDLE_TIMEOUT, left)))
