"""Server-side SSO sessions in the shared store.

The browser holds only a random cookie value; the store key is its keyed hash, so a
store dump cannot be replayed as cookies. ``sid`` is a separate random value that goes
into ID tokens and logout tokens (OIDC Front-/Back-Channel Logout §2) without exposing
the cookie. Idle timeout via the store TTL, absolute timeout via ``created_at``.

Each account has an index of its sids (a store set, ``sso-account:<id>``), so
administrators can list and end a person's sessions (issue 6) without scanning the
store. The set is maintained when a session starts and ends; its expiry is renewed to
the absolute session lifetime at every start, so it outlives each of its sessions and
vanishes after the last one. Entries of sessions that expired on their own are pruned
when the index is read.
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
    # Issue 17: factors enrolled in this session (RFC 8176 names). They never raise this
    # session's amr/acr: a session cannot vouch for an authenticator it added itself.
    enrolled: list[str] = field(default_factory=list)


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

    @staticmethod
    def _index(account_id: int) -> str:
        return f"sso-account:{account_id}"

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
        self._store.add_member(self._index(account_id), session.sid, self._s.session_max_ttl)
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
        if self._expired(session, now):
            self._store.delete(key, f"sso-sid:{session.sid}")
            self._store.remove_members(self._index(session.account_id), session.sid)
            return None
        if now - session.last_seen >= _TOUCH_INTERVAL:
            session.last_seen = now
            self._save(key, session)
        return session

    def _expired(self, session: SsoSession, now: int) -> bool:
        return now >= session.created_at + self._s.session_max_ttl or now >= session.last_seen + self._s.session_idle_ttl

    def reauthenticate(self, cookie: str | None, *, add_amr: list[str], acr: str) -> tuple[str, SsoSession] | None:
        """A further authentication in the same session (step-up, password change): the
        methods are added (see ``renew``). None when there is no live session."""
        current = self.get(cookie)
        if current is None:
            return None
        return self.renew(cookie, amr=list(dict.fromkeys([*current.amr, *add_amr])), acr=acr, fresh=False)

    def renew(self, cookie: str | None, *, amr: list[str], acr: str, context: dict[str, Any] | None = None,
              fresh: bool = True) -> tuple[str, SsoSession] | None:
        """The same account authenticated again in this session: the authentication time
        moves to now, ``amr``/``acr`` are set, and the cookie value is replaced (no
        fixation across re-authentication). The ``sid`` and the session's clients stay, so
        relying parties keep one session to log out (issue 11). A ``fresh`` login also
        replaces the context and forgets the factors enrolled in the session (this
        authentication proved them, issue 17). None when there is no live session."""
        current = self.get(cookie)
        if current is None:
            return None
        self._store.delete(self._key(cookie or ""))
        now = self._clock.timestamp()
        current.auth_time = now
        current.last_seen = now
        current.amr = list(amr)
        current.acr = acr
        if fresh:
            current.context = dict(context or {})
            current.enrolled = []
        new_cookie = random_token(32)
        self._save(self._key(new_cookie), current)
        return new_cookie, current

    def mark_enrolled(self, cookie: str | None, factor: str) -> SsoSession | None:
        """Record that ``factor`` was enrolled in this session (issue 17); None when
        there is no live session."""
        current = self.get(cookie)
        if current is None:
            return None
        if factor not in current.enrolled:
            current.enrolled.append(factor)
            self._save(self._key(cookie or ""), current)
        return current

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
        self._store.remove_members(self._index(session.account_id), session.sid)
        return session

    def end_by_sid(self, sid: str) -> SsoSession | None:
        key = self._store.consume(f"sso-sid:{sid}")
        if key is None:
            return None
        raw = self._store.consume(key.decode())
        session = SsoSession(**json.loads(raw)) if raw else None
        if session is not None:
            self._store.remove_members(self._index(session.account_id), sid)
        return session

    # -- per account (administration) ------------------------------------------------

    def of_account(self, account_id: int) -> list[SsoSession]:
        """The account's live sessions, oldest first, in two store round trips after the
        index read. Index entries whose session is gone or expired are pruned."""
        index = self._index(account_id)
        sids = sorted(self._store.members(index))
        if not sids:
            return []
        keys = self._store.get_many(*(f"sso-sid:{sid}" for sid in sids))
        live = [(sid, key.decode()) for sid, key in zip(sids, keys, strict=True) if key is not None]
        raws = self._store.get_many(*(key for _, key in live)) if live else []
        now = self._clock.timestamp()
        out: list[SsoSession] = []
        stale = [sid for sid, key in zip(sids, keys, strict=True) if key is None]
        for (sid, _), raw in zip(live, raws, strict=True):
            session = SsoSession(**json.loads(raw)) if raw is not None else None
            # The account check guards against a sid reused by another account's index.
            if session is None or session.account_id != account_id or self._expired(session, now):
                stale.append(sid)
                continue
            out.append(session)
        if stale:
            self._store.remove_members(index, *stale)
        return sorted(out, key=lambda s: (s.created_at, s.sid))

    def end_of_account(self, account_id: int, sid: str) -> SsoSession | None:
        """End one session if it is the account's (None otherwise: nothing ends)."""
        if sid not in {s.sid for s in self.of_account(account_id)}:
            return None
        return self.end_by_sid(sid)

    def end_all_of_account(self, account_id: int) -> list[SsoSession]:
        """End every live session of the account; returns them (for logout notifications)."""
        ended = [self.end_by_sid(s.sid) for s in self.of_account(account_id)]
        return [s for s in ended if s is not None]
